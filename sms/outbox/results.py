"""Submit results: what the SMSC answered to each submit_sm, written to its part.

An ``ok`` part also takes a receipt that beat its submit_sm_resp (kept in
sms_unmatched_receipt by sms.outbox.receipts) in the same transaction.
"""
from __future__ import annotations

from sqlalchemy import bindparam, delete, update

from sms.outbox.records import SubmitResult
from sms.outbox.sql import HotSql, M, P, U, bump
from sms.outbox.states import FAILED, QUEUED, SUBMITTED


def apply_results(session, hot: HotSql, results: list[SubmitResult], now: float) -> set[int]:
    """Write the results to their parts; the ids of the messages touched."""
    ok = [r for r in results if r.outcome == "ok"]
    temporary = [r for r in results if r.outcome in ("temporary", "doubtful")]
    permanent = [r for r in results if r.outcome == "permanent"]
    doubtful = [r for r in temporary if r.outcome == "doubtful"]
    if ok:
        hot.run(session, hot.part_ok, [(r.smpp_id, r.smsc, now, r.part_id) for r in ok])
    if temporary:
        session.execute(update(P).where(P.c.id == bindparam("pid")).values(
            state=QUEUED, error_code=bindparam("err")),
            [{"pid": r.part_id, "err": r.error} for r in temporary])
    if permanent:
        session.execute(update(P).where(P.c.id == bindparam("pid")).values(
            state=FAILED, error_code=bindparam("err"), smsc=bindparam("smsc"), done_at=now),
            [{"pid": r.part_id, "err": r.error, "smsc": r.smsc} for r in permanent])
    if ok:
        _match_early_receipts(session, hot, ok)
    if doubtful:
        count_possible_duplicates(session, [r.message_id for r in doubtful])
    return {r.message_id for r in results}


def count_possible_duplicates(session, message_ids: list[int]) -> None:
    """One possible duplicate per entry (a message id once per doubtful part), on the
    message and on the outbox's counter."""
    per_message: dict[int, int] = {}
    for message_id in message_ids:
        per_message[message_id] = per_message.get(message_id, 0) + 1
    session.execute(update(M).where(M.c.id == bindparam("mid")).values(
        possible_duplicates=M.c.possible_duplicates + bindparam("n")),
        [{"mid": m, "n": n} for m, n in per_message.items()])
    bump(session, "possible_duplicates", len(message_ids))


def _match_early_receipts(session, hot: HotSql, ok: list[SubmitResult]) -> None:
    early = list(hot.run(session, hot.early, (), list({r.smpp_id for r in ok})))
    if not early:
        return
    by_key = {(r.smpp_id, r.smsc): r.part_id for r in ok}
    used = []
    for e in early:
        part_id = by_key.get((e.smpp_id, e.smsc))
        if part_id is None:
            continue
        session.execute(update(P).where(P.c.id == part_id, P.c.state == SUBMITTED).values(
            state=e.state, error_code=e.error, done_at=e.done_at))
        used.append(e.id)
    if used:
        session.execute(delete(U).where(U.c.id.in_(used)))
