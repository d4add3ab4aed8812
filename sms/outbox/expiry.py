"""Expiry: messages whose validity ended, and unmatched receipts nobody will claim."""
from __future__ import annotations

from sqlalchemy import delete, select, update

from sms.outbox.settle import settle
from sms.outbox.sql import HotSql, M, P, U
from sms.outbox.states import EXPIRED, QUEUED, SUBMITTED

EXPIRY_GRACE = 3600.0  # a submitted part with no DLR this long after validity is expired


def expire_stale(session, hot: HotSql, retry, now: float) -> int:
    """Expire queued messages past validity at once, submitted ones after a grace."""
    stale = [r[0] for r in session.execute(select(M.c.id).where(
        ((M.c.state == QUEUED) & (M.c.valid_until <= now))
        | ((M.c.state == SUBMITTED) & (M.c.valid_until <= now - EXPIRY_GRACE))))]
    if stale:
        session.execute(update(P).where(P.c.message_id.in_(stale),
                                        P.c.state.in_([QUEUED, SUBMITTED]))
                        .values(state=EXPIRED, done_at=now))
        settle(session, hot, retry, stale, now)
    session.execute(delete(U).where(U.c.received_at <= now - 2 * EXPIRY_GRACE))
    return len(stale)
