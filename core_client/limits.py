"""Attempt limits that hold under concurrency: query passwords, staff PINs, code misses.

An attempt is reserved (counted as a failure) in the same write-locked
transaction that checks the lock (``Database.run_exclusive``: SQLite
``BEGIN IMMEDIATE``, PostgreSQL ``SELECT ... FOR UPDATE``), before the core or
scrypt is asked. A right answer gives the count back; a wrong one keeps it and
locks once the rule's attempts are used up. So however many callers arrive at
once, at most ``attempts`` answers are ever evaluated per lock period, and an
attempt lost to a crash counts as a failure rather than as nothing.

Subjects are whatever a rule counts: an account, a caller number, a staff
number (known or not, so a lock tells nothing about which numbers exist).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.driver_sql import DriverSql


@dataclass(frozen=True)
class Rule:
    """``attempts`` failures within ``window`` seconds lock ``scope`` subjects for ``lock``."""

    scope: str
    attempts: int
    window: float
    lock: float


@dataclass(frozen=True)
class Reservation:
    """The outcome of ``reserve``: allowed, or locked until an epoch."""

    allowed: bool
    locked_until: float | None = None
    left: int = 0  # attempts left after this one, if it fails


# Driver SQL (storage.driver_sql): a password check runs three of these transactions
# between a caller's last key and the balance reading, and the ORM's identity map and
# flush cost more than the statements (3.5-6 ms a reservation under 20 calls).
_SELECT = ("SELECT failures, window_start, locked_until FROM security_limit "
           "WHERE scope = ? AND subject = ?")
_INSERT = ("INSERT INTO security_limit (scope, subject, failures, window_start, locked_until, "
           "updated_at) VALUES (?, ?, ?, ?, ?, ?)")
_UPDATE = ("UPDATE security_limit SET failures = ?, window_start = ?, locked_until = ?, "
           "updated_at = ? WHERE scope = ? AND subject = ?")
_DELETE = "DELETE FROM security_limit WHERE scope = ? AND subject = ?"


@dataclass
class _Count:
    """One subject's row as read (``stored`` False: none yet), changed, then ``save``d."""

    failures: int
    window_start: float
    locked_until: float | None
    stored: bool


def _execute(session: Session, text: str, params: tuple):
    connection = session.connection()
    return connection.exec_driver_sql(DriverSql(connection.dialect.paramstyle).sql(text), params)


def _read(session: Session, rule: Rule, subject: str, lock: bool = True) -> _Count | None:
    """The row, locked for this transaction on PostgreSQL (SQLite's transaction already
    holds the write lock: ``Database.run_exclusive``)."""
    postgres = session.connection().dialect.name == "postgresql"
    row = _execute(session, _SELECT + (" FOR UPDATE" if lock and postgres else ""),
                   (rule.scope, subject)).first()
    return None if row is None else _Count(row[0], row[1], row[2], True)


def _row(session: Session, rule: Rule, subject: str, now: float) -> _Count:
    """The count as it stands at ``now``; every caller that goes on saves it."""
    count = _read(session, rule, subject)
    if count is None:
        # Inserted by ``_save``: a concurrent first attempt on PostgreSQL fails on the
        # key there, and ``run`` tries once more.
        return _Count(0, now, None, False)
    if count.locked_until is not None and count.locked_until <= now:
        count.failures, count.window_start, count.locked_until = 0, now, None  # ran out
    elif count.locked_until is None and now - count.window_start > rule.window:
        count.failures, count.window_start = 0, now  # old failures no longer count
    return count


def _save(session: Session, rule: Rule, subject: str, count: _Count, now: float) -> None:
    if count.stored:
        _execute(session, _UPDATE, (count.failures, count.window_start, count.locked_until, now,
                                    rule.scope, subject))
    else:
        _execute(session, _INSERT, (rule.scope, subject, count.failures, count.window_start,
                                    count.locked_until, now))
        count.stored = True


def reserve(session: Session, rule: Rule, subject: str, now: float) -> Reservation:
    """Count one attempt for ``subject`` unless it is locked or every attempt is taken."""
    count = _row(session, rule, subject, now)
    if count.locked_until is not None:
        return Reservation(False, count.locked_until)
    if count.failures >= rule.attempts:  # answers still being checked hold every attempt
        return Reservation(False, now + rule.lock)
    count.failures += 1
    _save(session, rule, subject, count, now)
    return Reservation(True, None, rule.attempts - count.failures)


def failed(session: Session, rule: Rule, subject: str, now: float) -> float | None:
    """The reserved attempt was wrong: the lock's end when it used up the last attempt."""
    count = _row(session, rule, subject, now)
    if count.locked_until is not None:
        return count.locked_until
    if count.failures == 0:  # a right answer reset the count meanwhile: this one still counts
        count.failures = 1
    if count.failures >= rule.attempts:
        count.locked_until = now + rule.lock
    _save(session, rule, subject, count, now)
    return count.locked_until


def succeeded(session: Session, rule: Rule, subject: str) -> None:
    """A right answer: the subject starts afresh (a lock set meanwhile stays)."""
    _execute(session, _DELETE + " AND locked_until IS NULL", (rule.scope, subject))


def refund(session: Session, rule: Rule, subject: str, now: float) -> None:
    """The attempt was never judged (the core was unavailable): give it back."""
    count = _read(session, rule, subject)
    if count is not None and count.locked_until is None and count.failures > 0:
        count.failures -= 1
        _save(session, rule, subject, count, now)


def locked_until(session: Session, rule: Rule, subject: str, now: float) -> float | None:
    """When ``subject`` is locked now, until when (read only)."""
    count = _read(session, rule, subject, lock=False)
    if count is not None and count.locked_until is not None and count.locked_until > now:
        return count.locked_until
    return None


def unlock(session: Session, scope: str, subject: str) -> None:
    """Lift a lock by hand (an administrator's tool)."""
    _execute(session, _DELETE, (scope, subject))


async def run(db, fn, *args):
    """``fn(session, *args)`` in a write-locked transaction; once more if a concurrent first
    attempt created the same row (PostgreSQL's unique key, where SQLite would have waited)."""
    try:
        return await db.run_exclusive(fn, *args)
    except IntegrityError:
        return await db.run_exclusive(fn, *args)
