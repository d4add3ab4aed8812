"""The SMS door in the console: its filtered messages by reason in the reports and on the
dashboard (from the door's own tallies), and its clients managed in the browser's forms,
in memory (StubTreq, an inline database)."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from twisted.internet.task import Clock

from console.rollup import Period, filtered_report
from sms.door.accept import DoorAccept
from sms.door.clients import Client
from sms.door.config import DoorConfig
from sms.door.filters import WordList
from sms.door.stats import collect
from sms.outbox.outbox import Outbox
from sms.outbox.testing import InlineDatabase, split_encode
from sms.templates import TemplateSet
from tests.support.console_browser import Browser
from tests.support.outbox import TZ, db_url, make_config  # noqa: F401  (the fixture)

PARAMS = {"account": "1234", "date": "2026-11-30", "amount": "10", "balance": "20"}
MOBILES = ["139" + f"{n:08d}" for n in range(1, 6)]  # synthetic, built so none sits whole here


def door_items() -> list[dict]:
    """One of each: accepted, a bad number, a template not enabled, bad parameters, a
    duplicate of the first, and one over the client's daily quota of 2."""
    first = {"to": MOBILES[0], "template": "deposit_credited", "params": PARAMS}
    return [first,
            {"to": "12345", "template": "deposit_credited", "params": PARAMS},
            {"to": MOBILES[1], "template": "loan_settled", "params": {}},
            {"to": MOBILES[2], "template": "deposit_credited", "params": {"account": "1"}},
            dict(first),
            {"to": MOBILES[3], "template": "deposit_credited", "params": PARAMS},
            {"to": MOBILES[4], "template": "deposit_credited", "params": PARAMS}]


EXPECTED = {"invalid_number": 1, "template_not_enabled": 1, "bad_params": 1, "duplicate": 1,
            "quota_exceeded": 1}


def send_through_the_door(db, now: float, centers=("nj",)) -> None:
    """The door's own accepting transaction, so the tallies are what it really counts."""
    templates = TemplateSet({"nj": "南京公积金", "sz": "苏州公积金"})
    clock = Clock()
    clock.advance(now)
    box = Outbox(db, clock, make_config(), encode=split_encode, templates=templates)
    config = DoorConfig(duplicate_window=3600)
    accept = DoorAccept(box, templates, WordList.load(config.banned_words), config,
                        split_encode)
    for center in centers:
        client = Client(name=f"{center}-loans", center=center, secret_env="DOOR_TEST",
                        system_id=f"{center}loans", templates=("deposit_credited",),
                        daily_quota=2, rate_per_second=100)
        db.run_sync(accept.accept_sync, client, door_items(), now)


def local_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, TZ).date().isoformat()


@pytest.fixture
def db(db_url):
    """On SQLite and on PostgreSQL (tests.support.outbox's ``db_url``)."""
    db = InlineDatabase(db_url, Clock())
    db.create_all()
    yield db
    db.engine.dispose()


def test_filtered_report_equals_the_doors_own_statistics(db):
    """Each item the door refused is in the report under its reason, per center, client and
    template and per center alone, equal to ``hotline sms stats --door`` (sms.door.stats);
    the XLSX export carries the same figures."""
    now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=TZ).timestamp()
    send_through_the_door(db, now, ("nj", "sz"))
    day = local_day(now)
    detail = db.run_sync(filtered_report, ["nj"], Period("day", day, day), True)
    door = [r for r in db.run_sync(collect, day, "Asia/Shanghai") if r["center"] == "nj"]
    assert {(r["client"], r["template"]) for r in detail} == {
        (r["client"], r["template"]) for r in door}
    for row in detail:
        twin = next(r for r in door if (r["client"], r["template"]) == (row["client"],
                                                                        row["template"]))
        assert row["pushed"] == twin["pushed"]
        assert {k: row[k] for k in twin["filtered"]} == twin["filtered"]
        assert row["filtered"] == sum(twin["filtered"].values())
    [center] = db.run_sync(filtered_report, ["nj"], Period("month", day, day))
    assert (center["period"], center["center"], center["pushed"]) == (day[:7], "nj", 7)
    assert {k: center[k] for k in EXPECTED} == EXPECTED and center["filtered"] == 5
    from openpyxl import load_workbook

    from console.rollup import FILTER_COLUMNS, to_xlsx

    sheet = load_workbook(io.BytesIO(to_xlsx([center], FILTER_COLUMNS, "filtered"))).active
    heads, values = [c.value for c in sheet[1]], [c.value for c in sheet[2]]
    assert dict(zip(heads, values, strict=True))["重复 duplicate"] == 1


def test_reports_and_dashboard_show_filtered_sms_by_reason(env):
    """The report of kind ``filtered`` (and its CSV) and today's dashboard show the door's
    refusals by reason for the user's own center only."""
    site, db, clock = env
    send_through_the_door(db, clock.seconds(), ("nj", "sz"))
    day = local_day(clock.seconds())
    b = Browser(site)
    b.login("njadmin")
    code, _, body = b.get(f"/reports?kind=filtered&first={day}&last={day}&detail=1"
                          "&format=csv")
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert code == 200 and {r["中心 center"] for r in rows} == {"nj"}
    by_reason = {k: sum(int(r[f"{k_zh} {k}".strip()]) for r in rows)
                 for k, k_zh in (("duplicate", "重复"), ("quota", "超出日配额"))}
    assert by_reason == {"duplicate": 1, "quota": 1}
    code, _, body = b.get(f"/reports?kind=filtered&first={day}&last={day}")
    assert code == 200 and "号头不正确 invalid number" in body
    code, _, body = b.get("/")
    assert 'id="filtered-nj"' in body and 'id="filtered-sz"' not in body
    assert '<dd data-reason="template_not_enabled">1</dd>' in body
    assert '<td class="filtered">5</td>' in body


def _client(db, name):
    from sms.door.clients import load_all

    return db.run_sync(load_all).get(name)


def test_provincial_admin_adds_and_edits_a_client_with_the_doors_rules(env, monkeypatch):
    """A client added and edited in the console is stored by the door's own functions (its
    validation, its audit rows) and audited in the console's chain with old and new values;
    the secret's variable is named with how to set it, the secret itself never shown."""
    site, db, _clock = env
    monkeypatch.setenv("DOOR_NJ_LOANS", "never-shown-secret-value")
    b = Browser(site)
    b.login("prov")
    b.get("/door")
    assert b.post("/door", {"name": "nj-loans", "center": "nj",
                            "secret_env": "DOOR_NJ_LOANS", "daily_quota": "5000",
                            "rate_per_second": "20"})[0] == 303
    code, _, body = b.get("/door/client?name=nj-loans")
    assert code == 200 and "$DOOR_NJ_LOANS" in body and "/etc/hotline/hotline.env" in body
    assert "never-shown-secret-value" not in body
    form = {"name": "nj-loans", "action": "save", "secret_env": "DOOR_NJ_LOANS",
            "system_id": "njloans", "templates": "deposit_credited, loan_settled",
            "classes": "transaction", "daily_quota": "8000", "rate_per_second": "50",
            "source_exts": "01", "keywords": "dkcx", "ip_allow": "10.1.0.0/16",
            "callback_url": "https://loans.nj.example/hook", "free_text": "yes"}
    assert b.post("/door/client?name=nj-loans", form)[0] == 303
    client = _client(db, "nj-loans")
    assert (client.templates, client.classes, client.daily_quota, client.rate_per_second,
            client.source_exts, client.keywords, client.ip_allow, client.free_text) == (
        ("deposit_credited", "loan_settled"), ("transaction",), 8000, 50, ("01",),
        ("DKCX",), ("10.1.0.0/16",), True)
    assert client.allows_ip("10.1.2.3") and not client.allows_ip("10.2.0.1")
    from console import audit
    from sms.door.clients import audit_trail

    entry = db.run_sync(audit.recent)[0]
    assert (entry.who, entry.action, entry.target) == ("prov", "door.client_change",
                                                       "door:nj-loans")
    assert '"daily_quota": 5000' in entry.old and '"daily_quota": 8000' in entry.new
    assert [r["action"] for r in db.run_sync(audit_trail, "nj-loans")] == ["add", "change"]
    assert "never-shown-secret-value" not in (entry.old + entry.new)
    assert db.run_sync(audit.verify).ok


def test_a_value_the_door_refuses_is_refused_and_nothing_changes(env):
    """The door's validation judges the form: a bad network, extension or number is
    refused with its message, the client left as it was."""
    site, db, _clock = env
    b = Browser(site)
    b.login("prov")
    b.get("/door")
    b.post("/door", {"name": "nj-loans", "center": "nj", "secret_env": "DOOR_NJ_LOANS"})
    before = _client(db, "nj-loans")
    for field, value, message in (("ip_allow", "10.300.0.0/16", "ip_allow"),
                                  ("source_exts", "12a", "source_exts"),
                                  ("daily_quota", "lots", "invalid literal")):
        code, _, body = b.post("/door/client?name=nj-loans",
                               {"name": "nj-loans", "action": "save", field: value})
        assert code == 400 and message in body, field
    assert _client(db, "nj-loans") == before
    code, _, body = b.post("/door", {"name": "Bad Name", "center": "nj",
                                     "secret_env": "DOOR_X"})
    assert code == 400 and "name:" in body


def test_center_admin_manages_only_the_own_centers_clients(env):
    """A center administrator lists and edits the own center's clients, may neither open,
    change nor add another center's (or a provincial) client; an auditor only reads; a
    form without the session's CSRF token changes nothing."""
    site, db, _clock = env
    p = Browser(site)
    p.login("prov")
    p.get("/door")
    for name, center in (("nj-loans", "nj"), ("sz-loans", "sz"), ("province-app", "*")):
        assert p.post("/door", {"name": name, "center": center,
                                "secret_env": "DOOR_" + name.upper().replace("-", "_")}
                      )[0] == 303
    b = Browser(site)
    b.login("njadmin")
    code, _, body = b.get("/door")
    assert 'id="client-nj-loans"' in body and "sz-loans" not in body
    assert "province-app" not in body
    assert b.get("/door/client?name=sz-loans")[0] == 404
    assert b.post("/door/client?name=sz-loans", {"name": "sz-loans",
                                                 "action": "disable"})[0] == 404
    assert _client(db, "sz-loans").enabled
    assert b.post("/door", {"name": "nj-two", "center": "sz", "secret_env": "X"})[0] == 403
    assert b.post("/door/client?name=nj-loans", {"name": "nj-loans", "action": "disable"},
                  csrf=False)[0] == 403
    assert _client(db, "nj-loans").enabled
    assert b.post("/door/client?name=nj-loans", {"name": "nj-loans",
                                                 "action": "disable"})[0] == 303
    assert not _client(db, "nj-loans").enabled
    from console import audit

    entry = db.run_sync(audit.recent)[0]
    assert (entry.who, entry.action, entry.center) == ("njadmin", "door.client_change", "nj")
    a = Browser(site)
    a.login("aud")
    code, _, body = a.get("/door")
    assert code == 200 and "sz-loans" in body and 'id="add-client"' not in body
    assert a.post("/door/client?name=nj-loans", {"name": "nj-loans",
                                                 "action": "enable"})[0] == 403
