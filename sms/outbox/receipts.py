"""Where a DLR updates a message: receipts matched to parts by (SMSC message id, SMSC).

A receipt whose part is not known yet (it beat the submit_sm_resp) is kept in
sms_unmatched_receipt and matched when the result arrives (sms.outbox.results).
A receipt that names an address other than its part's destination matched by an id in
the wrong form (``message_id_resp``/``message_id_dlr``): it is dropped and counted,
never applied to another message's part.
"""
from __future__ import annotations

from sqlalchemy import insert
from twisted.logger import Logger

from sms.outbox.records import ReceiptIn
from sms.outbox.sql import HotSql, U, bump
from sms.outbox.states import AWAITING_RECEIPT, PART_TRANSITIONS, check_transition

log = Logger(namespace="hotline.sms.outbox")
WARN_EVERY = 60.0  # seconds between two misattribution warnings for one SMSC


def apply_receipts(session, hot: HotSql, items: list[ReceiptIn], now: float,
                   warned: dict[str, float]) -> set[int]:
    """Write final states to the parts the receipts name; the ids of the messages touched.
    ``warned`` (SMSC -> when, kept by the caller) spaces the misattribution warnings."""
    found: dict[tuple[str, str], tuple[int, int, str, str]] = {}
    for part_id, message_id, state, smpp_id, smsc, destination in hot.rows(
            session, hot.parts_by_smpp_id, (), list({i.smpp_id for i in items})):
        found[(smpp_id, smsc)] = (part_id, message_id, state, destination)
    updates, unmatched, messages, wrong = [], [], set(), []
    for item in items:
        hit = found.get((item.smpp_id, item.smsc))
        if hit is None:
            unmatched.append(dict(smpp_id=item.smpp_id, smsc=item.smsc, state=item.state,
                                  error=item.error, done_at=item.done_at, received_at=now,
                                  destination=(item.destination or None) and
                                  item.destination[-24:]))
            continue
        part_id, message_id, state, destination = hit
        if item.destination and not same_number(item.destination, destination):
            wrong.append(item.smsc)
            continue
        if state not in AWAITING_RECEIPT:
            continue  # a repeated DLR for a part already final
        check_transition(state, item.state, PART_TRANSITIONS)
        updates.append((item.state, item.error, item.done_at, part_id))
        found[(item.smpp_id, item.smsc)] = (part_id, message_id, item.state, destination)
        messages.add(message_id)
    if updates:
        hot.update_by_id(session, hot.part_receipt, updates)
    if unmatched:
        session.execute(insert(U), unmatched)
    misattributed(session, wrong, now, warned)
    return messages


def misattributed(session, wrong: list[str], now: float, warned: dict[str, float]) -> None:
    """Count receipts (one SMSC name each) whose address was not their part's destination,
    and warn about each SMSC at most once a minute."""
    if wrong:
        bump(session, "receipts_misattributed", len(wrong))
        for smsc in sorted(set(wrong)):
            if now - warned.get(smsc, float("-inf")) < WARN_EVERY:
                continue  # the counter keeps counting; the log says it once a minute
            warned[smsc] = now
            log.warn("SMSC {smsc}: {n} receipt(s) named a part sent to another number: its "
                     "message ids differ in form between responses and receipts; set "
                     "message_id_resp / message_id_dlr in [smsc:{smsc}] (auto reads all-digit "
                     "ids as decimal)", smsc=smsc, n=wrong.count(smsc))


def same_number(a: str, b: str) -> bool:
    """The same subscriber in two spellings (``8613900000001`` and ``13900000001``)."""
    a, b = "".join(c for c in a if c.isdigit()), "".join(c for c in b if c.isdigit())
    n = min(len(a), len(b), 11)
    return n > 0 and a[-n:] == b[-n:]
