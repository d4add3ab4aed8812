"""The embedded backend: every CoreClient operation over the demo core database."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from core_client.embedded import EmbeddedCore
from core_client.interface import (
    AccountLocked,
    AccountNotFound,
    InvalidIdNumber,
    PasswordRejected,
    WrongPassword,
)
from tests.support.core import ThreadedClock, resolve, wait

X_LOAN = "ID ending in X, repaying loan"
PLAIN = "ID ending in a digit, no loan"


def test_find_by_id_number_keyed_with_star(core, identities):
    """An ID ending in X keyed as * on a phone pad finds the same account."""
    ident = identities[X_LOAN]
    account = resolve(core.find_account(id_number=ident.id_number[:17] + "*"))
    assert account.account_no == ident.account_no and account.center == "demo"
    assert resolve(core.find_account(account_no=ident.account_no)).id_number == ident.id_number


def test_find_rejects_bad_check_digit_without_leaking_it(core, identities):
    """A wrong check digit raises InvalidIdNumber whose message is masked."""
    ident = identities[PLAIN]
    wrong = ident.id_number[:17] + ("0" if ident.id_number[17] != "0" else "1")
    with pytest.raises(InvalidIdNumber) as e:
        resolve(core.find_account(id_number=wrong))
    assert wrong not in str(e.value) and "********" in str(e.value)


def test_unknown_account_is_not_found(core):
    """Lookups of an account that does not exist raise AccountNotFound for every operation."""
    for call in (core.balance("299999999999"), core.loan("299999999999"),
                 core.recent_details("299999999999"), core.registered_mobile("299999999999")):
        with pytest.raises(AccountNotFound):
            resolve(call)


def test_balance_details_loan(core, identities):
    """Balance, the last deposits (newest first) and the loan summary come from the core rows."""
    ident = identities[X_LOAN]
    bal = resolve(core.balance(ident.account_no))
    assert bal.balance > 0 and bal.monthly_deposit > 0 and bal.paid_up_to == "202606"
    details = resolve(core.recent_details(ident.account_no, 3))
    assert len(details) == 3 and all(d.kind == "deposit" for d in details)
    assert details[0].date > details[1].date > details[2].date
    assert details[0].amount == bal.monthly_deposit
    loan = resolve(core.loan(ident.account_no))
    assert loan.status == "repaying" and loan.balance > 0 and loan.overdue_periods == 0
    assert resolve(core.loan(identities[PLAIN].account_no)) is None
    overdue = resolve(core.loan(identities["overdue loan"].account_no))
    assert overdue.overdue_periods > 0 and overdue.overdue_principal > Decimal(0)


def test_password_right_wrong_and_core_lock(core, identities, clock):
    """The core counts wrong passwords itself and locks after its own limit; success resets."""
    account_no = identities[PLAIN].account_no
    resolve(core.verify_password(account_no, "123456"))
    with pytest.raises(WrongPassword) as e:
        resolve(core.verify_password(account_no, "000000"))
    assert e.value.attempts_left == 4
    resolve(core.verify_password(account_no, "123456"))
    for _ in range(4):
        with pytest.raises(WrongPassword):
            resolve(core.verify_password(account_no, "000000"))
    with pytest.raises(AccountLocked):
        resolve(core.verify_password(account_no, "000000"))
    with pytest.raises(AccountLocked):
        resolve(core.verify_password(account_no, "123456"))
    clock.advance(24 * 3600 + 1)
    resolve(core.verify_password(account_no, "123456"))


def test_locked_identity_is_locked(core, identities):
    """The documented locked identity is refused even with the right password."""
    with pytest.raises(AccountLocked):
        resolve(core.verify_password(identities["self-service locked in the core"].account_no,
                                     "123456"))


def test_change_password_rehashes_and_journals(core, identities):
    """A changed password works, the old one no longer does, and the journal records it."""
    account_no = identities[PLAIN].account_no
    _, before = resolve(core.events_since(0, 100_000))
    with pytest.raises(PasswordRejected):
        resolve(core.change_password(account_no, "123456", "12ab"))
    resolve(core.change_password(account_no, "123456", "246810"))
    resolve(core.verify_password(account_no, "246810"))
    with pytest.raises(WrongPassword):
        resolve(core.verify_password(account_no, "123456"))
    events, _ = resolve(core.events_since(before))
    assert [(e.kind, e.account_no, e.fields) for e in events] == [
        ("account_changed", account_no, {"what": "query_password"})]


def test_mobile_lookups(core, identities):
    """registered_mobile and find_by_mobile are inverse; an unknown mobile finds nothing."""
    ident = identities[X_LOAN]
    mobile = resolve(core.registered_mobile(ident.account_no))
    assert mobile == ident.mobile
    assert [a.account_no for a in resolve(core.find_by_mobile(mobile))] == [ident.account_no]
    assert resolve(core.find_by_mobile("19900000000")) == []


def test_events_paginate_by_cursor(core):
    """events_since pages through the journal without gaps or repeats."""
    seen, cursor = [], 0
    while True:
        events, cursor_next = resolve(core.events_since(cursor, 97))
        if not events:
            assert cursor_next == cursor
            break
        seen.extend(e.cursor for e in events)
        cursor = cursor_next
    assert seen == list(range(1, len(seen) + 1)) and len(seen) > 97


def test_queries_run_off_the_calling_thread_and_generate_on_first_use(tmp_path, identities):
    """With a real pool, work runs on pool threads; a missing database is generated first."""
    from twisted.python.threadpool import ThreadPool

    pool = ThreadPool(1, 2, name="test-core")
    pool.start()
    try:
        seen = []
        core = EmbeddedCore("demo", tmp_path / "fresh.db", ThreadedClock(), pool, persons=20)
        core._details = _spy(core._details, seen)
        details = wait(core.recent_details(identities[PLAIN].account_no))
        assert details and seen and seen[0] != threading.get_ident()
        assert (tmp_path / "fresh.db").exists()
    finally:
        pool.stop()


def _spy(fn, seen):
    def wrapper(*args):
        seen.append(threading.get_ident())
        return fn(*args)
    return wrapper


class StuckPool:
    """A thread pool whose threads never get to the work (a stuck database)."""

    def __init__(self):
        self.queued = []

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):
        self.queued.append((on_result, f, args))


def test_stuck_database_fails_with_core_unavailable_after_the_timeout(demo_path):
    """A query that gets no answer fails CoreUnavailable after `timeout` on the clock; a late
    answer is then ignored."""
    from core_client.interface import CoreUnavailable
    from tests.support.core import ThreadedClock

    clock, pool = ThreadedClock(), StuckPool()
    core = EmbeddedCore("demo", demo_path, clock, pool, timeout=2.5)
    from twisted.internet.defer import ensureDeferred

    box = []
    ensureDeferred(core.balance("200000000002")).addBoth(box.append)
    clock.advance(2.4)
    assert not box
    clock.advance(0.1)
    assert isinstance(box[0].value, CoreUnavailable) and "2.5 s" in str(box[0].value)
    on_result, f, args = pool.queued[0]
    on_result(True, None)  # the thread finishes late: nothing breaks
