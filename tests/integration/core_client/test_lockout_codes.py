"""The platform-side rules, on SQLite and PostgreSQL: password lockout and verification codes."""
from __future__ import annotations

import pytest

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
    """The database files (and WAL) do not contain the code, only its salted hash."""
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
