"""Door clients: validated, stored, every change audited with old and new values and never
a secret; the directory finds a client by system id, extension and keyword."""
from __future__ import annotations

import json

import pytest

from sms.door.clients import Client, ClientError, add_client, audit_trail, change_client, load_all


def test_add_change_and_audit(door):
    """A change is stored and audited as [old, new]; the audit names only the env variable."""
    door.add()
    door.db.run_sync(change_client, "wuhan-loans", {"daily_quota": 5, "enabled": False},
                     "ops-li", 1.0)
    client = door.db.run_sync(load_all)["wuhan-loans"]
    assert client.daily_quota == 5 and not client.enabled
    add, change = door.db.run_sync(audit_trail, "wuhan-loans")
    assert (add["action"], change["action"], change["actor"]) == ("add", "change", "ops-li")
    assert json.loads(change["detail"]) == {"daily_quota": [100_000, 5], "enabled": [True, False]}
    assert "DOOR_WUHAN_LOANS" in add["detail"] and "secret-for-tests" not in add["detail"]


@pytest.mark.parametrize("fields, field", [
    ({"name": "Bad Name"}, "name"),
    ({"secret_env": "lower"}, "secret_env"),
    ({"classes": ("spam",)}, "classes"),
    ({"ip_allow": ("10.0.0.300/8",)}, "ip_allow"),
    ({"source_exts": ("1a",)}, "source_exts"),
    ({"keywords": ("two words",)}, "keywords"),
    ({"callback_url": "ftp://x"}, "callback_url"),
])
def test_bad_definitions_name_their_field(door, fields, field):
    """Each invalid field is refused with its name, and nothing is stored."""
    base = dict(name="ok", center="demo", secret_env="DOOR_OK", system_id="ok")
    with pytest.raises(ClientError, match=field):
        door.db.run_sync(add_client, Client(**{**base, **fields}), "t", 0.0)
    assert door.db.run_sync(load_all) == {}


def test_a_changed_name_or_unknown_field_is_refused(door):
    """The name is the key: it cannot be changed; unknown fields are named."""
    door.add()
    with pytest.raises(ClientError, match="name"):
        door.db.run_sync(change_client, "wuhan-loans", {"name": "x"}, "t", 0.0)
    with pytest.raises(ClientError, match="colour"):
        door.db.run_sync(change_client, "wuhan-loans", {"colour": "red"}, "t", 0.0)
