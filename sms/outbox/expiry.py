"""Expiry: messages whose validity ended, parts whose receipt is overdue (``unknown``), and
unmatched receipts nobody will claim."""
from __future__ import annotations

from sqlalchemy import delete, func, select, update

from sms.outbox.settle import settle
from sms.outbox.sql import HotSql, M, P, U
from sms.outbox.states import EXPIRED, QUEUED, SUBMITTED, UNKNOWN

EXPIRY_GRACE = 3600.0  # a submitted part with no DLR this long after validity is expired
UNMATCHED_AFTER = 600.0  # a receipt still unmatched this long matched no part it ever will


def expire_stale(session, hot: HotSql, config, now: float) -> int:
    """Expire queued messages past validity at once, submitted ones after a grace."""
    stale = [r[0] for r in session.execute(select(M.c.id).where(
        ((M.c.state == QUEUED) & (M.c.valid_until <= now))
        | ((M.c.state == SUBMITTED) & (M.c.valid_until <= now - EXPIRY_GRACE))))]
    if stale:
        session.execute(update(P).where(P.c.message_id.in_(stale),
                                        P.c.state.in_([QUEUED, SUBMITTED]))
                        .values(state=EXPIRED, done_at=now))
        settle(session, hot, config, stale, now)
    overdue = _receipts_overdue(session, config.receipt_timeout, now)
    if overdue:
        parts, messages = zip(*overdue, strict=True)
        session.execute(update(P).where(P.c.id.in_(parts), P.c.state == SUBMITTED)
                        .values(state=UNKNOWN))
        settle(session, hot, config, set(messages), now)
    session.execute(delete(U).where(U.c.received_at <= now - 2 * EXPIRY_GRACE))
    return len(stale)


def unmatched_receipts(session, now: float) -> dict[str, int]:
    """Per SMSC, the receipts that matched no sent part for UNMATCHED_AFTER seconds."""
    return dict(session.execute(select(U.c.smsc, func.count()).where(
        U.c.received_at <= now - UNMATCHED_AFTER).group_by(U.c.smsc)).all())


def _receipts_overdue(session, timeouts: dict, now: float) -> list[tuple[int, int]]:
    """(part, message) of submitted parts whose class's receipt timeout has passed."""
    overdue = []
    for klass, timeout in timeouts.items():
        overdue += session.execute(select(P.c.id, P.c.message_id).join(
            M, M.c.id == P.c.message_id).where(
            P.c.state == SUBMITTED, M.c.klass == klass,
            P.c.submitted_at <= now - timeout)).all()
    return overdue
