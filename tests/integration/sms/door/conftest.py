"""A door over a real database (inline transactions), a Clock and StubTreq: no sockets."""
from __future__ import annotations

import json

import pytest
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.web.resource import Resource

from sms.door.accept import DoorAccept
from sms.door.auth import Authenticator, sign
from sms.door.clients import Client, ClientDirectory, add_client
from sms.door.config import DoorConfig
from sms.door.filters import WordList
from sms.door.rest_api import Messages, SendApi
from sms.outbox.outbox import Outbox
from sms.outbox.testing import InlineDatabase, split_encode
from sms.templates import TemplateSet
from tests.support.door import ENV, SECRET
from tests.support.outbox import make_config, noon, result

BASE = "http://door.local/v1/messages"


class Door:
    """Everything a test needs: the db, clock, outbox, directory and an HTTP client."""

    def __init__(self, db, clock, outbox, directory, treq, accept):
        self.db, self.clock, self.outbox, self.directory = db, clock, outbox, directory
        self.treq, self.accept = treq, accept

    def add(self, **fields) -> Client:
        base = dict(name="wuhan-loans", center="demo", secret_env="DOOR_WUHAN_LOANS",
                    system_id="whloans", templates=("*",), classes=("transaction", "bulk"),
                    daily_quota=100_000, rate_per_second=100_000)
        base.update(fields)
        client = Client(**base)
        self.db.run_sync(add_client, client, "test", self.clock.seconds())
        self.directory._loaded_at = None
        return client

    def request(self, method: str, path: str, body=None, headers=None, secret=SECRET):
        raw = b"" if body is None else (body if isinstance(body, bytes)
                                        else json.dumps(body, ensure_ascii=False).encode())
        h = {b"authorization": [f"Bearer {secret}".encode()]} if headers is None else headers
        d = self.treq.request(method, BASE + path, data=raw or None, headers=h)
        self.treq.flush()
        response = result(d)
        d = response.content()
        self.treq.flush()
        content = result(d)
        return response, (json.loads(content) if content else None)

    def signed_headers(self, method, path, body: bytes, nonce="n-1", client="wuhan-loans",
                       stamp=None, secret=SECRET):
        stamp = stamp or str(int(self.clock.seconds()))
        sig = sign(secret.encode(), method, "/v1/messages" + path, stamp, nonce, body)
        return {b"x-client-id": [client.encode()], b"x-timestamp": [stamp.encode()],
                b"x-nonce": [nonce.encode()], b"x-signature": [sig.encode()]}


@pytest.fixture
def door(db_url):
    """On SQLite and on PostgreSQL (the sms room's ``db_url``)."""
    clock = Clock()
    clock.advance(noon())
    db = InlineDatabase(db_url, None, 1)
    db.create_all()
    templates = TemplateSet({"demo": "示例公积金", "other": "另一中心"})
    box = Outbox(db, clock, make_config(), encode=split_encode, templates=templates)
    config = DoorConfig(duplicate_window=3600)
    accept = DoorAccept(box, templates, WordList.load(config.banned_words), config,
                        split_encode)
    directory = ClientDirectory(db, clock)
    api = SendApi(Authenticator(directory, db, clock, ENV), accept, box, config, clock)
    v1 = Resource()
    v1.putChild(b"messages", Messages(api))
    root = Resource()
    root.putChild(b"v1", v1)
    yield Door(db, clock, box, directory, StubTreq(root), accept)
    db.engine.dispose()
