"""The verification-code HTTP API: auth per client, bad bodies, 429, code SMS first in line."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import select
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.web.resource import Resource

from common.config import CodesConfig
from core_client.codes import VerificationCodes
from core_client.testing import FakeCore
from sms.codes_api import make_resource
from sms.outbox.accept import PRIORITY
from sms.outbox.outbox import Outbox
from sms.outbox.testing import InlineDatabase, split_encode
from sms.tables import SmsMessage
from sms.templates import TemplateSet
from tests.support.outbox import make_config, noon, result

SECRET = "portal-secret-for-tests"
BASE = "http://api.local/v1/codes"


@pytest.fixture
def env(tmp_path):
    clock = Clock()
    clock.advance(noon())
    db = InlineDatabase(f"sqlite:///{tmp_path / 'c.db'}", None, 1)
    db.create_all()
    core = FakeCore("demo", persons=20)
    codes = VerificationCodes(db, {"demo": core}, CodesConfig(
        ttl=300, length=6, max_attempts=5, per_minute=1, per_hour=5, per_day=10), clock,
        randbelow=lambda n: 482913)
    box = Outbox(db, clock, make_config(), encode=split_encode,
                 templates=TemplateSet({"demo": "示例公积金"}))
    root = Resource()
    root.putChild(b"v1", make_resource(codes, box, {"demo": core}, {"portal": SECRET}, clock,
                                       300))
    yield db, core, clock, StubTreq(root)
    db.engine.dispose()


def call(treq, path, body, headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    h = {b"authorization": [f"Bearer {SECRET}".encode()]} if headers is None else headers
    d = treq.post(BASE + path, data=raw, headers=h)
    treq.flush()
    response = result(d)
    d = response.content()
    treq.flush()
    return response, json.loads(result(d))


def account(core):
    return next(iter(core._persons))


def test_issue_queues_the_code_sms_at_top_priority(env):
    """202 with a masked mobile; the SMS is committed, class code, highest priority."""
    db, core, clock, treq = env
    response, body = call(treq, "", {"center": "demo", "account_no": account(core),
                                     "purpose": "login"})
    assert response.code == 202
    assert "****" in body["mobile_masked"] and body["code_id"] and body["expires_at"]
    with db.sessions() as s:
        row = s.execute(select(SmsMessage.klass, SmsMessage.priority, SmsMessage.params)).one()
    assert row.klass == "code" and row.priority == max(PRIORITY.values())
    assert "482913" not in row.params


def test_verify_right_and_wrong_code(env):
    """The right code verifies (200); a wrong one is 400 code_invalid."""
    db, core, clock, treq = env
    req = {"center": "demo", "account_no": account(core), "purpose": "login"}
    call(treq, "", req)
    response, body = call(treq, "/verify", {**req, "code": "000000"})
    assert response.code == 400 and body["error"] == "code_invalid"
    response, body = call(treq, "/verify", {**req, "code": "482913"})
    assert response.code == 200 and body == {"verified": True}


def test_rate_limit_is_429_with_retry_after(env):
    """A second code within the minute is refused with 429 and a Retry-After header."""
    db, core, clock, treq = env
    req = {"center": "demo", "account_no": account(core), "purpose": "login"}
    call(treq, "", req)
    response, body = call(treq, "", req)
    assert response.code == 429 and body["error"] == "rate_limited"
    assert 1 <= int(response.headers.getRawHeaders(b"retry-after")[0]) <= 60


@pytest.mark.parametrize("raw,error", [
    (b"{not json", "bad_json"),
    (b"[1, 2]", "bad_json"),
    (json.dumps({"center": "demo", "purpose": "login"}).encode(), "bad_field"),
    (json.dumps({"center": "nowhere", "account_no": "1", "purpose": "login"}).encode(),
     "bad_field"),
    (json.dumps({"center": "demo", "account_no": "1", "purpose": "Login!"}).encode(),
     "bad_field"),
])
def test_bad_bodies_are_400_with_a_clear_error(env, raw, error):
    """Malformed JSON and missing or invalid fields give 400 and a JSON error."""
    db, core, clock, treq = env
    response, body = call(treq, "", raw)
    assert response.code == 400 and body["error"] == error and body["message"]


def test_unauthenticated_and_wrong_secret_are_401(env):
    """No credentials, or a wrong bearer secret, is 401; nothing is issued."""
    db, core, clock, treq = env
    req = {"center": "demo", "account_no": account(core), "purpose": "login"}
    assert call(treq, "", req, headers={})[0].code == 401
    assert call(treq, "", req, headers={b"authorization": [b"Bearer nope"]})[0].code == 401
    with db.sessions() as s:
        assert s.execute(select(SmsMessage.id)).first() is None


def test_hmac_signed_request_is_accepted_and_stale_one_refused(env):
    """HMAC over method, path, timestamp and body authenticates; an old timestamp does not."""
    db, core, clock, treq = env
    raw = json.dumps({"center": "demo", "account_no": account(core),
                      "purpose": "login"}).encode()

    def signed(stamp):
        mac = hmac.new(SECRET.encode(), b"\n".join([b"POST", b"/v1/codes", stamp, raw]),
                       hashlib.sha256).hexdigest()
        return {b"x-client-id": [b"portal"], b"x-timestamp": [stamp],
                b"x-signature": [mac.encode()]}

    stale = str(int(clock.seconds()) - 3600).encode()
    assert call(treq, "", raw, headers=signed(stale))[0].code == 401
    now = str(int(clock.seconds())).encode()
    assert call(treq, "", raw, headers=signed(now))[0].code == 202


def test_a_registered_mobile_that_is_no_valid_destination_is_422(env):
    """The core's mobile for the account is not a mainland mobile: a clear 422, no SMS stored."""
    db, core, clock, treq = env
    acct = account(core)
    person = core._persons[acct]
    core._persons[acct] = (*person[:4], "12345", *person[5:])
    response, body = call(treq, "", {"center": "demo", "account_no": acct, "purpose": "login"})
    assert response.code == 422 and body["error"] == "bad_destination"
    assert "not a valid mainland number" in body["message"]
    with db.sessions() as s:
        assert s.execute(select(SmsMessage.id)).first() is None
