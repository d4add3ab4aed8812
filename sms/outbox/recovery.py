"""Crash recovery: the parts a dead run left ``submitting`` are settled before sending resumes.

With a trusted send journal (sms.carrier.send_journal) a part that was answered
gets its answer, one that never left is requeued, and only one sent and
unanswered is resent and counted as a possible duplicate. Without one, every
such part counts.
"""
from __future__ import annotations

from sqlalchemy import select, update
from twisted.logger import Logger

from sms.outbox.results import apply_results, count_possible_duplicates
from sms.outbox.settle import settle
from sms.outbox.sql import HotSql, M, P
from sms.outbox.states import QUEUED, SUBMITTING

log = Logger(namespace="hotline.sms.outbox")


def recover(session, hot: HotSql, retry, instance: str, now: float, journal=None) -> int:
    """Settle this instance's claimed messages; the count of parts possibly sent twice."""
    mine = (M.c.claimed_by == instance) | (M.c.claimed_by.is_(None))
    message_ids = [r[0] for r in session.execute(
        select(M.c.id).where(M.c.state == SUBMITTING, mine))]
    if not message_ids:
        return 0
    view = journal.read() if journal is not None else None
    parts = list(session.execute(select(P.c.id, P.c.message_id).where(
        P.c.message_id.in_(message_ids), P.c.state == SUBMITTING)))
    answered = []
    doubtful: list[int] = []  # a message id per part sent and unanswered
    for part_id, message_id in parts:
        if view is None or (part_id in view.last and view.last[part_id] is None):
            doubtful.append(message_id)
        elif part_id in view.last:
            answered.append(view.last[part_id])
    if answered:
        apply_results(session, hot, answered, now)
    session.execute(update(P).where(P.c.message_id.in_(message_ids),
                                    P.c.state == SUBMITTING).values(state=QUEUED))
    total = len(doubtful)
    if total:
        count_possible_duplicates(session, doubtful)
    settle(session, hot, retry, message_ids, now, recovered=True)
    log.info("outbox recovered {m} claimed messages: {a} parts answered before the crash, "
             "{n} possibly sent twice{how}", m=len(message_ids), a=len(answered), n=total,
             how="" if view is not None else " (no trusted send journal)")
    return total
