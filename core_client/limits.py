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

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core_client.tables import SecurityLimit


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


def _row(session: Session, rule: Rule, subject: str, now: float) -> SecurityLimit:
    row = session.get(SecurityLimit, (rule.scope, subject), with_for_update=True)
    if row is None:
        row = SecurityLimit(scope=rule.scope, subject=subject, failures=0, window_start=now,
                            locked_until=None, updated_at=now)
        session.add(row)
        session.flush()
    elif row.locked_until is not None and row.locked_until <= now:
        row.failures, row.window_start, row.locked_until = 0, now, None  # the lock ran out
    elif row.locked_until is None and now - row.window_start > rule.window:
        row.failures, row.window_start = 0, now  # old failures no longer count
    return row


def reserve(session: Session, rule: Rule, subject: str, now: float) -> Reservation:
    """Count one attempt for ``subject`` unless it is locked or every attempt is taken."""
    row = _row(session, rule, subject, now)
    if row.locked_until is not None:
        return Reservation(False, row.locked_until)
    if row.failures >= rule.attempts:  # answers still being checked hold every attempt
        return Reservation(False, now + rule.lock)
    row.failures += 1
    row.updated_at = now
    return Reservation(True, None, rule.attempts - row.failures)


def failed(session: Session, rule: Rule, subject: str, now: float) -> float | None:
    """The reserved attempt was wrong: the lock's end when it used up the last attempt."""
    row = _row(session, rule, subject, now)
    if row.locked_until is not None:
        return row.locked_until
    if row.failures == 0:  # a right answer reset the count meanwhile: this one still counts
        row.failures = 1
    row.updated_at = now
    if row.failures >= rule.attempts:
        row.locked_until = now + rule.lock
        return row.locked_until
    return None


def succeeded(session: Session, rule: Rule, subject: str) -> None:
    """A right answer: the subject starts afresh (a lock set meanwhile stays)."""
    session.execute(delete(SecurityLimit).where(
        SecurityLimit.scope == rule.scope, SecurityLimit.subject == subject,
        SecurityLimit.locked_until.is_(None)))


def refund(session: Session, rule: Rule, subject: str, now: float) -> None:
    """The attempt was never judged (the core was unavailable): give it back."""
    row = session.get(SecurityLimit, (rule.scope, subject), with_for_update=True)
    if row is not None and row.locked_until is None and row.failures > 0:
        row.failures -= 1
        row.updated_at = now


def locked_until(session: Session, rule: Rule, subject: str, now: float) -> float | None:
    """When ``subject`` is locked now, until when (read only)."""
    row = session.get(SecurityLimit, (rule.scope, subject))
    if row is not None and row.locked_until is not None and row.locked_until > now:
        return row.locked_until
    return None


def unlock(session: Session, scope: str, subject: str) -> None:
    """Lift a lock by hand (an administrator's tool)."""
    session.execute(delete(SecurityLimit).where(SecurityLimit.scope == scope,
                                                SecurityLimit.subject == subject))


async def run(db, fn, *args):
    """``fn(session, *args)`` in a write-locked transaction; once more if a concurrent first
    attempt created the same row (PostgreSQL's unique key, where SQLite would have waited)."""
    try:
        return await db.run_exclusive(fn, *args)
    except IntegrityError:
        return await db.run_exclusive(fn, *args)
