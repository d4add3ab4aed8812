"""The HTTP backend against the test core server, in memory (StubTreq) on a task.Clock."""
from __future__ import annotations

import json

import pytest
from treq.testing import StubTreq

from core_client import signing
from core_client.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from core_client.http import HttpCore
from core_client.interface import (
    AccountLocked,
    AccountNotFound,
    CoreAuthFailed,
    CoreProtocolError,
    CoreUnavailable,
    InvalidIdNumber,
    PasswordRejected,
    WrongPassword,
)
from core_client.testing import CoreServer
from tests.support.core import ThreadedClock, resolve

KEY = b"demo-core-signing-key"
URL = "http://core.test/hpf/v1"
X_LOAN = "ID ending in X, repaying loan"
PLAIN = "ID ending in a digit, no loan"


@pytest.fixture
def server(core, clock):
    return CoreServer(core, KEY, clock)


@pytest.fixture
def stub(server):
    return StubTreq(server)


@pytest.fixture
def client(stub, clock):
    return HttpCore("demo", URL, KEY, clock, stub, timeout=3, retries=2, backoff=0.2,
                    jitter=lambda: 0.5, breaker=CircuitBreaker(clock, threshold=5, reset_after=10))


def pending(coro):
    """Start a call whose answer needs the clock to move; returns a list that gets the result."""
    from twisted.internet.defer import ensureDeferred

    box = []
    ensureDeferred(coro).addBoth(box.append)
    return box


def test_every_operation_matches_the_embedded_core(client, core, identities):
    """Each operation over HTTP returns exactly what the embedded backend returns directly."""
    ident = identities[X_LOAN]
    a = ident.account_no
    assert resolve(client.find_account(id_number=ident.id_number)) == \
        resolve(core.find_account(id_number=ident.id_number))
    assert resolve(client.find_account(account_no=a)).id_number == ident.id_number
    assert resolve(client.balance(a)) == resolve(core.balance(a))
    kinds = ("deposit", "interest", "withdrawal")
    assert resolve(client.recent_details(a, 5, kinds)) == resolve(core.recent_details(a, 5, kinds))
    assert resolve(client.loan(a)) == resolve(core.loan(a))
    assert resolve(client.loan(identities[PLAIN].account_no)) is None
    assert resolve(client.registered_mobile(a)) == ident.mobile
    assert resolve(client.find_by_mobile(ident.mobile)) == resolve(core.find_by_mobile(ident.mobile))
    assert resolve(client.events_since(10, 25)) == resolve(core.events_since(10, 25))
    assert resolve(client.verify_password(a, "123456")) is None
    resolve(client.change_password(a, "123456", "135790"))
    resolve(core.verify_password(a, "135790"))


def test_core_errors_become_typed_errors(client, identities):
    """404, 400, 401, 423 and 422 answers raise the matching typed errors with their data."""
    ident = identities[PLAIN]
    with pytest.raises(AccountNotFound):
        resolve(client.balance("299999999999"))
    with pytest.raises(InvalidIdNumber):
        resolve(client.find_account(id_number=ident.id_number[:17] + "Y"))
    with pytest.raises(WrongPassword) as e:
        resolve(client.verify_password(ident.account_no, "000000"))
    assert e.value.attempts_left == 4
    with pytest.raises(AccountLocked) as e:
        resolve(client.verify_password(identities["self-service locked in the core"].account_no,
                                       "123456"))
    assert e.value.until.year == 2099
    with pytest.raises(PasswordRejected):
        resolve(client.change_password(ident.account_no, "123456", "abc"))


def test_slow_core_times_out_and_idempotent_calls_retry(client, server, clock, stub, identities):
    """A GET that outlives its timeout is retried with backoff, then fails CoreUnavailable."""
    server.delay = 10
    box = pending(client.balance(identities[PLAIN].account_no))
    clock.advance(3)  # first attempt times out; backoff 0.2 s
    assert not box and server.received == 1
    clock.advance(0.2)
    clock.advance(3)
    clock.advance(0.4)
    assert server.received == 3
    clock.advance(3)
    stub.flush()
    assert isinstance(box[0].value, CoreUnavailable) and "3 s" in str(box[0].value)


def test_retry_recovers_from_transient_5xx(client, server, clock, identities):
    """Two 503 answers then success: a GET still returns the balance, after 3 requests."""
    server.fail_next = 2
    box = pending(client.balance(identities[PLAIN].account_no))
    clock.advance(0.2)
    clock.advance(0.4)
    assert server.received == 3 and box[0].balance > 0
    assert client.breaker.state == CLOSED


def test_password_calls_are_never_retried(client, server, clock, identities):
    """verify_password and change_password fail at once on 5xx or timeout: one request each."""
    a = identities[PLAIN].account_no
    server.fail_next = 1
    with pytest.raises(CoreUnavailable):
        resolve(client.verify_password(a, "123456"))
    assert server.received == 1
    server.delay = 10
    box = pending(client.change_password(a, "123456", "111111"))
    clock.advance(3)
    assert isinstance(box[0].value, CoreUnavailable)
    clock.advance(60)
    assert server.received == 2


def test_malformed_json_is_a_protocol_error_not_retried(client, server, identities):
    """A truncated JSON body raises CoreProtocolError after one request."""
    server.malformed = True
    with pytest.raises(CoreProtocolError):
        resolve(client.balance(identities[PLAIN].account_no))
    assert server.received == 1


def test_missing_member_is_a_protocol_error_without_the_value():
    """An answer lacking a member raises CoreProtocolError naming the member only."""
    from core_client import wire

    with pytest.raises(CoreProtocolError) as e:
        wire.balance_from_json({"balance": "1.00", "monthly_deposit": 3, "paid_up_to": "202610",
                                "status": "normal"})
    assert "monthly_deposit" in str(e.value)


def test_bad_signature_is_refused(client, server, identities):
    """A core holding another key refuses every request with CoreAuthFailed."""
    server.wrong_key = True
    with pytest.raises(CoreAuthFailed):
        resolve(client.balance(identities[PLAIN].account_no))


def test_stale_timestamp_is_refused(stub, server, clock, identities):
    """A client whose clock is more than the window off is refused (no retries for 4xx)."""
    skewed = ThreadedClock()
    skewed.advance(clock.seconds() + signing.DEFAULT_WINDOW + 1)
    client = HttpCore("demo", URL, KEY, skewed, stub, retries=2)
    with pytest.raises(CoreAuthFailed):
        resolve(client.balance(identities[PLAIN].account_no))
    assert server.received == 1


def test_replayed_request_is_refused(stub, server, clock, identities):
    """The exact same signed request sent twice is accepted once, refused the second time."""
    path = f"/hpf/v1/accounts/{identities[PLAIN].account_no}/balance"
    headers = {signing.TIMESTAMP: "0", signing.NONCE: "n-1",
               signing.SIGNATURE: signing.sign(KEY, "GET", path, 0, "n-1", b"")}
    first = resolve(stub.get("http://core.test" + path, headers=headers))
    second = resolve(stub.get("http://core.test" + path, headers=headers))
    assert first.code == 200
    assert second.code == 401
    body = json.loads(resolve(second.content()))
    assert body["error"] == "bad_signature" and "nonce" in body["message"]


def test_breaker_opens_fails_fast_and_recovers_half_open(stub, server, clock, identities):
    """Five failures open the breaker; calls then fail without a request; after reset_after a
    single trial goes through: failure reopens, success closes."""
    a = identities[PLAIN].account_no
    client = HttpCore("demo", URL, KEY, clock, stub, retries=0,
                      breaker=CircuitBreaker(clock, threshold=5, reset_after=10))
    server.fail_next = 100
    for _ in range(5):
        with pytest.raises(CoreUnavailable):
            resolve(client.balance(a))
    assert client.breaker.state == OPEN and server.received == 5
    with pytest.raises(CoreUnavailable) as e:
        resolve(client.balance(a))
    assert "circuit open" in str(e.value) and server.received == 5
    clock.advance(10)
    assert client.breaker.state == HALF_OPEN
    with pytest.raises(CoreUnavailable):
        resolve(client.balance(a))  # the trial fails: open again
    assert server.received == 6 and client.breaker.state == OPEN
    clock.advance(10)
    server.fail_next = 0
    assert resolve(client.balance(a)).balance > 0
    assert client.breaker.state == CLOSED and server.received == 7


def test_half_open_lets_only_one_trial_through(stub, server, clock, identities):
    """While the half-open trial is in flight, other calls fail fast."""
    a = identities[PLAIN].account_no
    client = HttpCore("demo", URL, KEY, clock, stub, retries=0, timeout=3,
                      breaker=CircuitBreaker(clock, threshold=1, reset_after=5))
    server.fail_next = 1
    with pytest.raises(CoreUnavailable):
        resolve(client.balance(a))
    clock.advance(5)
    server.delay = 1
    trial = pending(client.balance(a))
    with pytest.raises(CoreUnavailable) as e:
        resolve(client.balance(a))
    assert "trial" in str(e.value) and server.received == 2
    clock.advance(1)
    stub.flush()
    assert trial[0].balance > 0 and client.breaker.state == CLOSED


def test_domain_errors_keep_the_breaker_closed(stub, server, clock):
    """Not-found answers prove the core is alive: they never open the breaker."""
    client = HttpCore("demo", URL, KEY, clock, stub, breaker=CircuitBreaker(clock, threshold=2))
    for _ in range(5):
        with pytest.raises(AccountNotFound):
            resolve(client.balance("299999999999"))
    assert client.breaker.state == CLOSED


def test_core_error_messages_are_masked():
    """A core that echoes an ID number or mobile in its error message has it masked."""
    from core_client import wire

    leaky = {"error": "not_found", "message": "no account for 11010519491231002X, 13812345678"}
    message = str(wire.error_from_json(404, leaky))
    assert "11010519491231002X" not in message and "13812345678" not in message
    assert "110105" in message and "5678" in message


class RefusingClient:
    """An HTTP client whose every request fails as a refused TCP connection does."""

    def __init__(self):
        self.requests = 0

    def request(self, method, url, **kwargs):
        from twisted.internet.defer import fail
        from twisted.internet.error import ConnectionRefusedError

        self.requests += 1
        return fail(ConnectionRefusedError())


def test_unreachable_core_is_unavailable_after_retries(clock):
    """A refused connection is CoreUnavailable; lookups retry (3 tries), passwords do not."""
    refusing = RefusingClient()
    client = HttpCore("demo", URL, KEY, clock, refusing, retries=2, backoff=0.2,
                      jitter=lambda: 0.5)
    box = pending(client.balance("200000000002"))
    clock.advance(0.2)
    clock.advance(0.4)
    assert isinstance(box[0].value, CoreUnavailable) and refusing.requests == 3
    with pytest.raises(CoreUnavailable):
        resolve(client.verify_password("200000000002", "123456"))
    assert refusing.requests == 4


def test_replay_guard_forgets_old_nonces_but_refuses_stale_requests():
    """Nonces are remembered for the window (then dropped, keeping memory bounded); a request
    old enough for its nonce to be forgotten is refused by its timestamp anyway."""
    guard = signing.ReplayGuard(window=300)

    def check(ts, nonce, now):
        guard.check(KEY, "GET", "/p", str(ts), nonce, signing.sign(KEY, "GET", "/p", ts, nonce, b""),
                    b"", now)

    check(0, "a", 0)
    check(100, "b", 100)
    with pytest.raises(signing.SignatureError):
        check(0, "a", 200)  # replay within the window
    check(700, "c", 700)  # 700 s later: "a" is forgotten, "b" not yet
    assert list(guard._seen) == ["b", "c"]
    with pytest.raises(signing.SignatureError):
        check(0, "a", 700)  # its timestamp is stale


def test_breaker_trial_that_never_reports_back_does_not_block_forever():
    """If a half-open trial's caller vanishes, another trial is allowed after reset_after."""
    clock = ThreadedClock()
    breaker = CircuitBreaker(clock, threshold=1, reset_after=10)
    breaker.failure()
    clock.advance(10)
    breaker.before_call()  # the trial starts, and its result never comes
    with pytest.raises(CoreUnavailable):
        breaker.before_call()
    clock.advance(10)
    breaker.before_call()  # a new trial
    breaker.success()
    assert breaker.state == CLOSED
