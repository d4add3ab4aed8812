"""The alert job's cursor and the repayments due it stores for the daily reminder job."""
from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from sms.outbox.records import Due
from sms.outbox.sql import A, R


def move_cursor(session, center: str, cursor: int, now: float) -> None:
    done = session.execute(update(A).where(A.c.center == center).values(
        cursor=cursor, updated_at=now)).rowcount
    if not done:
        session.execute(insert(A).values(center=center, cursor=cursor, updated_at=now))


def read_cursor(session, center: str) -> int:
    return session.execute(select(A.c.cursor).where(A.c.center == center)).scalar() or 0


def store_dues(session, center: str, dues: list[Due]) -> None:
    """One row per account and due date: a replayed event adds nothing."""
    known = {(r.account_no, r.due_date) for r in session.execute(
        select(R.c.account_no, R.c.due_date).where(
            R.c.center == center, R.c.account_no.in_({d.account_no for d in dues})))}
    rows = []
    for due in dues:
        if (due.account_no, due.due_date) not in known:
            known.add((due.account_no, due.due_date))
            rows.append(dict(center=center, account_no=due.account_no,
                             loan_tail=due.loan_tail, amount=due.amount,
                             due_date=due.due_date, method=due.method, reminded_at=None))
    if rows:
        session.execute(insert(R), rows)


def open_dues(session, center: str, first: str, last: str, drop_before: str) -> list:
    """(row id, Due) due from ``first`` to ``last`` with no reminder yet; older rows deleted."""
    session.execute(delete(R).where(R.c.center == center, R.c.due_date < drop_before))
    return [(r.id, Due(r.account_no, r.loan_tail, r.amount, r.due_date, r.method))
            for r in session.execute(select(R).where(
                R.c.center == center, R.c.reminded_at.is_(None),
                R.c.due_date >= first, R.c.due_date <= last).order_by(R.c.id))]


def mark_reminded(session, due_ids: list[int], now: float) -> None:
    session.execute(update(R).where(R.c.id.in_(due_ids)).values(reminded_at=now))
