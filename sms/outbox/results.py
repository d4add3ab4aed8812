"""Submit results: what the SMSC answered to each submit_sm, written to its part.

An ``ok`` part also takes a receipt that beat its submit_sm_resp (kept in
sms_unmatched_receipt by sms.outbox.receipts) in the same transaction.
"""
from __future__ import annotations

from sqlalchemy import bindparam, delete, select, update

from sms.outbox.receipts import misattributed, same_number
from sms.outbox.records import SubmitResult
from sms.outbox.sql import HotSql, M, P, U, bump
from sms.outbox.states import FAILED, QUEUED, SUBMITTED


def apply_results(session, hot: HotSql, results: list[SubmitResult], now: float,
                  warned: dict[str, float] | None = None) -> set[int]:
    """Write the results to their parts; the ids of the messages touched. ``warned`` as
    for sms.outbox.receipts.apply_receipts."""
    ok = [r for r in results if r.outcome == "ok"]
    temporary = [r for r in results if r.outcome in ("temporary", "doubtful")]
    permanent = [r for r in results if r.outcome == "permanent"]
    doubtful = [r for r in temporary if r.outcome == "doubtful"]
    if ok:
        hot.update_by_id(session, hot.part_ok, [(r.smpp_id, r.smsc, now, r.part_id) for r in ok])
    if temporary:
        session.execute(update(P).where(P.c.id == bindparam("pid")).values(
            state=QUEUED, error_code=bindparam("err")),
            [{"pid": r.part_id, "err": r.error} for r in temporary])
    if permanent:
        session.execute(update(P).where(P.c.id == bindparam("pid")).values(
            state=FAILED, error_code=bindparam("err"), smsc=bindparam("smsc"), done_at=now),
            [{"pid": r.part_id, "err": r.error, "smsc": r.smsc} for r in permanent])
    if ok:
        _match_early_receipts(session, hot, ok, now, {} if warned is None else warned)
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


def _match_early_receipts(session, hot: HotSql, ok: list[SubmitResult], now: float,
                          warned: dict[str, float]) -> None:
    early = hot.rows(session, hot.early, (), list({r.smpp_id for r in ok}))
    if not early:
        return
    by_key = {(r.smpp_id, r.smsc): r for r in ok}
    named = [by_key[(e.smpp_id, e.smsc)].message_id for e in early
             if e.destination and (e.smpp_id, e.smsc) in by_key]
    sent_to = dict(session.execute(select(M.c.id, M.c.destination).where(
        M.c.id.in_(named))).all()) if named else {}
    used, wrong = [], []
    for e in early:
        r = by_key.get((e.smpp_id, e.smsc))
        if r is None:
            continue
        if e.destination and not same_number(e.destination, sent_to[r.message_id]):
            wrong.append(e.smsc)  # another part's receipt: it stays unmatched
            continue
        part_id = r.part_id
        session.execute(update(P).where(P.c.id == part_id, P.c.state == SUBMITTED).values(
            state=e.state, error_code=e.error, done_at=e.done_at))
        used.append(e.id)
    if used:
        session.execute(delete(U).where(U.c.id.in_(used)))
    misattributed(session, wrong, now, warned)
