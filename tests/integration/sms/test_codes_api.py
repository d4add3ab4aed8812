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
    assert set(body) == {"code_id", "expires_at"}
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


def test_hmac_signed_request_is_accepted_once_and_stale_one_refused(env):
    """HMAC over method, path, timestamp, nonce and body authenticates once; an old, a
    non-finite timestamp, a replayed nonce and a non-ASCII signature do not (401)."""
    db, core, clock, treq = env
    raw = json.dumps({"center": "demo", "account_no": account(core),
                      "purpose": "login"}).encode()

    def signed(stamp, nonce=b"n-1"):
        mac = hmac.new(SECRET.encode(), b"\n".join([b"POST", b"/v1/codes", stamp, nonce, raw]),
                       hashlib.sha256).hexdigest()
        return {b"x-client-id": [b"portal"], b"x-timestamp": [stamp], b"x-nonce": [nonce],
                b"x-signature": [mac.encode()]}

    stale = str(int(clock.seconds()) - 3600).encode()
    assert call(treq, "", raw, headers=signed(stale))[0].code == 401
    for weird in (b"nan", b"inf", b"-inf"):
        assert call(treq, "", raw, headers=signed(weird))[0].code == 401
    now = str(int(clock.seconds())).encode()
    assert call(treq, "", raw, headers=signed(now))[0].code == 202
    assert call(treq, "", raw, headers=signed(now))[0].code == 401  # replayed
    bad = {**signed(now, b"n-2"), b"x-signature": ["签名".encode()]}
    assert call(treq, "", raw, headers=bad)[0].code == 401


def test_a_registered_mobile_that_is_no_valid_destination_answers_like_any_other(env):
    """The core's mobile for the account is not a mainland mobile: no SMS is stored, and the
    answer has the shape an unknown account gets (a 422 would tell that the account exists)."""
    db, core, clock, treq = env
    acct = account(core)
    person = core._persons[acct]
    core._persons[acct] = (*person[:4], "12345", *person[5:])
    response, body = call(treq, "", {"center": "demo", "account_no": acct, "purpose": "login"})
    unknown, unknown_body = call(treq, "", {"center": "demo", "account_no": "999999999999",
                                            "purpose": "login"})
    assert response.code == unknown.code == 202
    assert set(body) == set(unknown_body) == {"code_id", "expires_at"}
    with db.sessions() as s:
        assert s.execute(select(SmsMessage.id)).first() is None


def test_unknown_and_known_accounts_get_the_same_answer_and_throttle(env):
    """No account oracle: an unknown account gets the same 202 shape as a known one (no SMS),
    and both are throttled alike (429) on a second request within the minute."""
    db, core, clock, treq = env
    known = {"center": "demo", "account_no": account(core), "purpose": "login"}
    unknown = {**known, "account_no": "999999999999"}
    a, b = call(treq, "", known), call(treq, "", unknown)
    assert (a[0].code, set(a[1])) == (b[0].code, set(b[1])) == (202, {"code_id", "expires_at"})
    assert call(treq, "", known)[0].code == call(treq, "", unknown)[0].code == 429
    with db.sessions() as s:
        assert len(s.execute(select(SmsMessage.id)).all()) == 1


def test_clients_are_held_to_their_centers_and_their_own_codes(tmp_path):
    """A client configured for center a may not ask for center b (403); a code asked for by
    one client does not verify through another."""
    clock = Clock()
    clock.advance(noon())
    db = InlineDatabase(f"sqlite:///{tmp_path / 'c.db'}", None, 1)
    db.create_all()
    cores = {"a": FakeCore("a", persons=20), "b": FakeCore("b", persons=20)}
    codes = VerificationCodes(db, cores, CodesConfig(
        ttl=300, length=6, max_attempts=5, per_minute=1, per_hour=5, per_day=10), clock,
        randbelow=lambda n: 482913)
    box = Outbox(db, clock, make_config(), encode=split_encode,
                 templates=TemplateSet({"a": "甲", "b": "乙"}))
    root = Resource()
    root.putChild(b"v1", make_resource(codes, box, cores, {"portal": SECRET, "app": "app-s"},
                                       clock, 300, {"portal": ("a",)}))
    treq = StubTreq(root)
    req = {"center": "b", "account_no": account(cores["b"]), "purpose": "login"}
    assert call(treq, "", req)[0].code == 403
    req = {**req, "center": "a", "account_no": account(cores["a"])}
    assert call(treq, "", req)[0].code == 202
    app = {b"authorization": [b"Bearer app-s"]}
    assert call(treq, "/verify", {**req, "code": "482913"}, headers=app)[0].code == 400
    assert call(treq, "/verify", {**req, "code": "482913"})[0].code == 200
    db.engine.dispose()
