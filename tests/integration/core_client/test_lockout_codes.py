"""The platform-side rules, on SQLite and PostgreSQL: password lockout and verification codes."""
from __future__ import annotations

import dataclasses

import pytest
from twisted.internet.defer import Deferred, ensureDeferred

from common.config import CodesConfig
from core_client.codes import VerificationCodes
from core_client.interface import (
    AccountLocked,
    AccountNotFound,
    CodeInvalid,
    CodeRateLimited,
    UnknownCenter,
    WrongPassword,
)
from core_client.lockout import LockoutCore
from core_client.testing import FakeCore
from storage.db import Database
from tests.support.core import ThreadedClock, wait

PLAIN = "ID ending in a digit, no loan"
RULES = CodesConfig(ttl=300, length=6, max_attempts=5, per_minute=1, per_hour=5, per_day=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'platform.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock():
    c = ThreadedClock()
    c.advance(1_800_000_000)  # a realistic epoch, so datetimes are sane
    return c


@pytest.fixture
def db(db_url, clock):
    from storage.migrate import upgrade

    upgrade(db_url)
    database = Database(db_url, clock, threads=2)
    database.startService()
    yield database
    database.stopService()


@pytest.fixture
def fake():
    return FakeCore("demo", persons=10)


@pytest.fixture
def locked(fake, db, clock):
    return LockoutCore(fake, db, clock, attempts=3, lock_minutes=30)


class SequenceRandom:
    """Chosen codes for tests that need to know them in advance."""

    def __init__(self, *values):
        self.values = list(values)

    def __call__(self, bound):
        return self.values.pop(0) % bound


def codes_for(db, fake, clock, rules=RULES, *values):
    rng = SequenceRandom(*values) if values else None
    kwargs = {"randbelow": rng} if rng else {}
    return VerificationCodes(db, {"demo": fake}, rules, clock, **kwargs)


# -- lockout ------------------------------------------------------------------------------

def test_three_wrong_passwords_lock_for_the_configured_time(locked, clock, identities):
    """Wrong, wrong (attempts left 2, 1), then the third locks; even the right password is
    refused until lock_minutes pass, then it works."""
    a = identities[PLAIN].account_no
    for left in (2, 1):
        with pytest.raises(WrongPassword) as e:
            wait(locked.verify_password(a, "000000"))
        assert e.value.attempts_left == left
    with pytest.raises(AccountLocked) as e:
        wait(locked.verify_password(a, "000000"))
    assert e.value.until.timestamp() == pytest.approx(clock.seconds() + 1800)
    with pytest.raises(AccountLocked):
        wait(locked.verify_password(a, "123456"))
    assert locked.inner.calls.count("verify_password") == 3  # the lock answered, not the core
    clock.advance(1800)
    wait(locked.verify_password(a, "123456"))


def test_right_password_resets_the_count(locked, identities):
    """Two wrong, one right, then a wrong one again has two attempts left."""
    a = identities[PLAIN].account_no
    for _ in range(2):
        with pytest.raises(WrongPassword):
            wait(locked.verify_password(a, "000000"))
    wait(locked.verify_password(a, "123456"))
    with pytest.raises(WrongPassword) as e:
        wait(locked.verify_password(a, "000000"))
    assert e.value.attempts_left == 2


def test_wrong_old_password_on_change_counts_too(locked, identities):
    """A wrong old password in change_password counts towards the same lock."""
    a = identities[PLAIN].account_no
    with pytest.raises(WrongPassword):
        wait(locked.verify_password(a, "000000"))
    for _ in range(1):
        with pytest.raises(WrongPassword):
            wait(locked.change_password(a, "000000", "111111"))
    with pytest.raises(AccountLocked):
        wait(locked.change_password(a, "000000", "111111"))


def test_lock_is_per_account_and_per_center(locked, identities):
    """Locking one account leaves another account usable."""
    a, b = identities[PLAIN].account_no, identities["overdue loan"].account_no
    for _ in range(2):
        with pytest.raises(WrongPassword):
            wait(locked.verify_password(a, "000000"))
    with pytest.raises(AccountLocked):
        wait(locked.verify_password(a, "000000"))
    wait(locked.verify_password(b, "123456"))


def test_core_lock_passes_through(locked, identities):
    """An account the core itself has locked is reported locked, without counting."""
    with pytest.raises(AccountLocked) as e:
        wait(locked.verify_password(identities["self-service locked in the core"].account_no,
                                    "123456"))
    assert e.value.until.year == 2099


# -- verification codes ---------------------------------------------------------------------

def test_code_goes_to_the_registered_mobile_and_verifies_once(db, fake, clock, identities):
    """issue() sends to the core's registered mobile; the code verifies once, then not again."""
    codes = codes_for(db, fake, clock)
    ident = identities[PLAIN]
    issued = wait(codes.issue("demo", ident.account_no, "login"))
    assert issued.mobile == ident.mobile and "registered_mobile" in fake.calls
    assert len(issued.code) == 6 and issued.code.isdigit()
    assert issued.code not in repr(issued) and ident.mobile not in repr(issued)
    assert issued.expires_at.timestamp() == pytest.approx(clock.seconds() + 300)
    wait(codes.verify("demo", ident.account_no, "login", issued.code))
    with pytest.raises(CodeInvalid):
        wait(codes.verify("demo", ident.account_no, "login", issued.code))


def test_code_length_follows_config(db, fake, clock, identities):
    """length = 8 gives 8-digit codes, zero-padded."""
    rules = CodesConfig(ttl=300, length=8, max_attempts=5, per_minute=1, per_hour=5, per_day=10)
    issued = wait(codes_for(db, fake, clock, rules, 42).issue(
        "demo", identities[PLAIN].account_no, "login"))
    assert issued.code == "00000042"


def test_code_expires_after_ttl(db, fake, clock, identities):
    """A code is refused once ttl seconds have passed."""
    codes = codes_for(db, fake, clock)
    a = identities[PLAIN].account_no
    issued = wait(codes.issue("demo", a, "login"))
    clock.advance(300)
    with pytest.raises(CodeInvalid):
        wait(codes.verify("demo", a, "login", issued.code))


def test_code_dies_after_max_attempts(db, fake, clock, identities):
    """Five wrong tries exhaust a code: the right one is refused afterwards."""
    codes = codes_for(db, fake, clock, RULES, 123456)
    a = identities[PLAIN].account_no
    issued = wait(codes.issue("demo", a, "login"))
    for _ in range(5):
        with pytest.raises(CodeInvalid):
            wait(codes.verify("demo", a, "login", "654321"))
    with pytest.raises(CodeInvalid):
        wait(codes.verify("demo", a, "login", issued.code))


def test_code_is_bound_to_account_purpose_and_center(db, fake, clock, identities):
    """A code for one purpose does not verify another purpose, account or center."""
    codes = codes_for(db, fake, clock)
    a, b = identities[PLAIN].account_no, identities["overdue loan"].account_no
    issued = wait(codes.issue("demo", a, "login"))
    for center, account, purpose in (("demo", a, "reset"), ("demo", b, "login"),
                                     ("other", a, "login")):
        with pytest.raises(CodeInvalid):
            wait(codes.verify(center, account, purpose, issued.code))
    wait(codes.verify("demo", a, "login", issued.code))


def test_newer_code_replaces_older(db, fake, clock, identities):
    """After a second code is issued, only the newest one verifies."""
    codes = codes_for(db, fake, clock, RULES, 111111, 222222)
    a = identities[PLAIN].account_no
    first = wait(codes.issue("demo", a, "login"))
    clock.advance(61)
    second = wait(codes.issue("demo", a, "login"))
    with pytest.raises(CodeInvalid):
        wait(codes.verify("demo", a, "login", first.code))
    wait(codes.verify("demo", a, "login", second.code))


def test_rate_limits_per_mobile(db, fake, clock, identities):
    """1 a minute (retry_after counts down), 5 an hour, 10 a day, in rolling windows."""
    codes = codes_for(db, fake, clock)
    a = identities[PLAIN].account_no
    wait(codes.issue("demo", a, "login"))
    clock.advance(20)
    with pytest.raises(CodeRateLimited) as e:
        wait(codes.issue("demo", a, "reset"))
    assert e.value.retry_after == 40
    for _ in range(4):
        clock.advance(60)
        wait(codes.issue("demo", a, "login"))
    clock.advance(60)
    with pytest.raises(CodeRateLimited) as e:  # 5 in the last hour
        wait(codes.issue("demo", a, "login"))
    assert e.value.retry_after == 3600 - 320  # until the first (320 s ago) ages out
    clock.advance(e.value.retry_after)
    for _ in range(5):
        wait(codes.issue("demo", a, "login"))
        clock.advance(720)
    with pytest.raises(CodeRateLimited) as e:  # 10 in the last day
        wait(codes.issue("demo", a, "login"))
    assert e.value.retry_after > 3600
    clock.advance(e.value.retry_after)
    wait(codes.issue("demo", a, "login"))


def test_rate_limit_is_per_mobile_not_per_account(db, fake, clock, identities):
    """Another account (another mobile) is not slowed by the first one's codes."""
    codes = codes_for(db, fake, clock)
    wait(codes.issue("demo", identities[PLAIN].account_no, "login"))
    wait(codes.issue("demo", identities["overdue loan"].account_no, "login"))


def test_unknown_account_or_center(db, fake, clock):
    """No code for an account the core does not know, or a center without a core."""
    codes = codes_for(db, fake, clock)
    with pytest.raises(AccountNotFound):
        wait(codes.issue("demo", "299999999999", "login"))
    with pytest.raises(UnknownCenter):
        wait(codes.issue("nowhere", "200000000002", "login"))
    with pytest.raises(ValueError):
        wait(codes.issue("demo", "200000000002", "Login; drop"))


def test_code_itself_is_never_stored(tmp_path, fake, clock, identities):
    """The database files (and WAL) do not contain the code, only its peppered hash."""
    url = f"sqlite:///{tmp_path / 'codes.db'}"
    from storage.migrate import upgrade

    upgrade(url)
    db = Database(url, clock, threads=1)
    db.startService()
    try:
        codes = codes_for(db, fake, clock, RULES, 482915)
        issued = wait(codes.issue("demo", identities[PLAIN].account_no, "login"))
        assert issued.code == "482915"
        files = [p for p in tmp_path.iterdir() if p.name.startswith("codes.db")]
        assert files
        for path in files:
            assert b"482915" not in path.read_bytes()
            assert identities[PLAIN].mobile.encode() not in path.read_bytes()
        wait(codes.verify("demo", identities[PLAIN].account_no, "login", "482915"))
    finally:
        db.stopService()


# -- limits under concurrency (issue 12, defect 2) ---------------------------------------

class GatedCore:
    """The fake core, but every password check waits until the test opens its gate, so
    concurrent tries are all in flight at once, as calls released together would be."""

    def __init__(self, fake):
        self.fake, self.center, self.gates = fake, fake.center, []

    async def verify_password(self, account_no, password):
        gate = Deferred()
        self.gates.append(gate)
        await gate
        await self.fake.verify_password(account_no, password)

    def __getattr__(self, name):
        return getattr(self.fake, name)


def _settled(ds, timeout=20.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(d.called for d in ds):
            return
        time.sleep(0.01)
    raise AssertionError("not settled")


def test_concurrent_password_tries_never_exceed_the_attempts(db, fake, clock, identities):
    """Five tries released together (four wrong, then the right one): they are checked one
    at a time, at most three ever reach the core, the others are refused as locked, and
    the lock holds afterwards."""
    ident = identities[PLAIN]
    gated = GatedCore(fake)
    locked = LockoutCore(gated, db, clock, attempts=3, lock_minutes=30)
    tries = [ensureDeferred(locked.verify_password(ident.account_no, pw))
             for pw in ("000001", "000002", "000003", "000004", ident.password)]
    _open_gates_in_turn(gated, tries)
    assert len(gated.gates) <= 3
    outcomes = []
    for d in tries:
        d.addErrback(lambda f: outcomes.append(f.type))
    assert outcomes.count(AccountLocked) >= 2
    with pytest.raises(AccountLocked):
        wait(locked.verify_password(ident.account_no, ident.password))


def _open_gates_in_turn(gated, tries, timeout=20.0):
    """Let each check reach the core as it comes, asserting that no two for the account
    are ever in flight together; returns once every try has settled."""
    import time

    opened, deadline = 0, time.monotonic() + timeout
    while not all(d.called for d in tries) and time.monotonic() < deadline:
        if len(gated.gates) > opened:
            assert len(gated.gates) == opened + 1  # never two checks of it at once
            opened += 1
            gated.gates[-1].callback(None)
        time.sleep(0.01)
    _settled(tries)


def test_one_caller_cannot_spray_a_password_over_many_accounts(db, fake, clock, identities):
    """A caller's wrong passwords count across accounts: past caller_attempts the number's
    tries are refused before the core is asked, while other callers go on."""
    base = LockoutCore(fake, db, clock, attempts=3, lock_minutes=30, caller_attempts=3)
    spray = base.for_caller("02585550001")
    accounts = [i.account_no for i in identities.values()][:4]
    for account in accounts[:3]:
        with pytest.raises(WrongPassword):
            wait(spray.verify_password(account, "000999"))
    asked = len(fake.calls)
    with pytest.raises(AccountLocked):
        wait(spray.verify_password(accounts[3], "000999"))
    assert len(fake.calls) == asked
    ident = identities[PLAIN]
    wait(base.for_caller("02585550002").verify_password(ident.account_no, ident.password))


def test_parallel_wrong_codes_exhaust_the_code(db_url, fake, clock, identities):
    """40 wrong verifications on 8 pool threads at once: the right code is dead afterwards
    (no lost update lets more than max_attempts guesses be judged)."""
    from storage.migrate import upgrade

    upgrade(db_url)
    wide = Database(db_url, clock, threads=8)
    wide.startService()
    try:
        codes = codes_for(wide, fake, clock, RULES, 482916)
        account = identities[PLAIN].account_no
        wait(codes.issue("demo", account, "login"))
        guesses = [ensureDeferred(codes.verify("demo", account, "login", f"{n:06d}"))
                   for n in range(40)]
        _settled(guesses, 60)
        for d in guesses:
            d.addErrback(lambda f: f.trap(CodeInvalid))
        with pytest.raises(CodeInvalid):
            wait(codes.verify("demo", account, "login", "482916"))
    finally:
        wide.stopService()


def test_codes_are_peppered_and_bound_to_their_client(db, fake, clock, identities):
    """The stored hash is keyed by the server's pepper (another pepper cannot verify it) and
    a code asked for by one client does not verify through another."""
    account = identities[PLAIN].account_no
    codes = codes_for(db, fake, clock, RULES, 482917)
    wait(codes.issue("demo", account, "login", client="portal"))
    with pytest.raises(CodeInvalid):
        wait(codes.verify("demo", account, "login", "482917", client="app"))
    other = dataclasses.replace(RULES, pepper=b"another pepper of thirty-two bytes")
    with pytest.raises(CodeInvalid):
        wait(codes_for(db, fake, clock, other).verify("demo", account, "login", "482917",
                                                       client="portal"))
    wait(codes.verify("demo", account, "login", "482917", client="portal"))


def test_right_passwords_never_count_against_the_caller(db, fake, clock, identities):
    """Only wrong passwords count per caller number: a line whose callers key right
    passwords more than caller_attempts times in an hour is never refused (a switchboard's
    number, or the IVR bench and blip test's one sipp number: issue 13 #11)."""
    base = LockoutCore(fake, db, clock, attempts=3, lock_minutes=30, caller_attempts=3)
    line = base.for_caller("02585550003")
    ident = identities[PLAIN]
    for _ in range(5):
        wait(line.verify_password(ident.account_no, ident.password))
    with pytest.raises(WrongPassword):
        wait(line.verify_password(ident.account_no, "000999"))


def test_concurrent_right_passwords_for_one_account_are_all_checked(db, fake, clock,
                                                                    identities):
    """Five callers key the right password for one account at once: each is checked in turn
    (one check per account in flight here) and none is refused as locked because the
    others' answers held every attempt (issue 13: the 20-call blip test and the 500-call
    bench round identify as one person)."""
    ident = identities[PLAIN]
    gated = GatedCore(fake)
    base = LockoutCore(gated, db, clock, attempts=3, lock_minutes=30)
    tries = [ensureDeferred(base.for_caller(f"0258555001{i}").verify_password(
        ident.account_no, ident.password)) for i in range(5)]
    _open_gates_in_turn(gated, tries)
    failures = []
    for d in tries:
        d.addErrback(failures.append)
    assert failures == [] and len(gated.gates) == 5


class HeldResets:
    """The platform database, but a right password's count reset waits for the test."""

    def __init__(self, db):
        self.db, self.gates = db, []

    def run_exclusive(self, fn, *args):
        done = self.db.run_exclusive(fn, *args)
        if getattr(fn, "__name__", "") != "_succeeded":
            return done
        gate = Deferred()
        self.gates.append(gate)
        return gate.addCallback(lambda _: done)

    def __getattr__(self, name):
        return getattr(self.db, name)


def test_a_right_password_answers_before_its_count_reset_and_the_next_check_waits(
        db, fake, clock, identities):
    """The caller hears the next prompt while the right password's count reset commits
    (one write fewer on the way to the balance); the account's next check starts only
    once the reset is stored, so it is never judged on the old count."""
    ident = identities[PLAIN]
    held = HeldResets(db)
    base = LockoutCore(fake, held, clock, attempts=3, lock_minutes=30)
    with pytest.raises(WrongPassword):
        wait(base.verify_password(ident.account_no, "000000"))
    wait(base.verify_password(ident.account_no, ident.password))  # answered, reset held
    assert len(held.gates) == 1
    checks = fake.calls.count("verify_password")
    after = ensureDeferred(base.verify_password(ident.account_no, "000000"))
    assert not after.called and fake.calls.count("verify_password") == checks
    held.gates[0].callback(None)
    with pytest.raises(WrongPassword) as e:
        wait(after)
    assert e.value.attempts_left == 2  # the reset was seen: one wrong of three
