"""Claiming due messages for the dispatcher, and giving back what it will not send.

The claim commits the unsent parts ``submitting`` before any submit_sm goes
out, so after a crash the parts left ``submitting`` are the only ones that may
have been sent (sms.outbox.recovery).
"""
from __future__ import annotations

from sqlalchemy import update

from sms.outbox.records import ClaimedMessage, EncodedPart
from sms.outbox.settle import set_final
from sms.outbox.sql import HotSql, M, P
from sms.outbox.states import EXPIRED, QUEUED, SUBMITTING


def claim(session, hot: HotSql, instance: str, now: float, limit: int) -> list[ClaimedMessage]:
    """Up to ``limit`` due messages, highest priority first, marked ``submitting`` by ``instance``;
    those past their validity expire on the way."""
    claimed: dict[int, ClaimedMessage] = {}
    expired = []
    for id_, center, klass, priority, destination, valid_until in hot.rows(
            session, hot.due, (now, limit)):
        if valid_until <= now:
            expired.append(id_)
        else:
            claimed[id_] = ClaimedMessage(id_, center, klass, priority, destination,
                                          valid_until)
    if expired:
        session.execute(update(P).where(P.c.message_id.in_(expired),
                                        P.c.state == QUEUED).values(state=EXPIRED, done_at=now))
        set_final(session, hot, expired, EXPIRED, now, "validity")
    if not claimed:
        return []
    ids = list(claimed)
    hot.run(session, hot.claim, (instance,), ids)
    for part_id, message_id, payload, data_coding, esm_class in hot.rows(
            session, hot.unsent_parts, (), ids):
        c = claimed[message_id]
        c.part_ids.append(part_id)
        c.parts.append(EncodedPart(bytes(payload), data_coding, esm_class))  # PG: memoryview
    hot.run(session, hot.mark, (), ids)
    return list(claimed.values())


def release(session, message_ids: list[int]) -> None:
    """Claimed messages back to ``queued``, their unsent parts with them."""
    session.execute(update(P).where(P.c.message_id.in_(message_ids),
                                    P.c.state == SUBMITTING).values(state=QUEUED))
    session.execute(update(M).where(M.c.id.in_(message_ids), M.c.state == SUBMITTING)
                    .values(state=QUEUED, claimed_by=None))
