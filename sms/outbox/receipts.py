"""Where a DLR updates a message: receipts matched to parts by (SMSC message id, SMSC).

A receipt whose part is not known yet (it beat the submit_sm_resp) is kept in
sms_unmatched_receipt and matched when the result arrives (sms.outbox.results).
"""
from __future__ import annotations

from sqlalchemy import insert

from sms.outbox.records import ReceiptIn
from sms.outbox.sql import HotSql, U
from sms.outbox.states import AWAITING_RECEIPT, PART_TRANSITIONS, check_transition


def apply_receipts(session, hot: HotSql, items: list[ReceiptIn], now: float) -> set[int]:
    """Write final states to the parts the receipts name; the ids of the messages touched."""
    found: dict[tuple[str, str], tuple[int, int, str]] = {}
    for part_id, message_id, state, smpp_id, smsc in hot.run(
            session, hot.parts_by_smpp_id, (), list({i.smpp_id for i in items})):
        found[(smpp_id, smsc)] = (part_id, message_id, state)
    updates, unmatched, messages = [], [], set()
    for item in items:
        hit = found.get((item.smpp_id, item.smsc))
        if hit is None:
            unmatched.append(dict(smpp_id=item.smpp_id, smsc=item.smsc, state=item.state,
                                  error=item.error, done_at=item.done_at, received_at=now))
            continue
        part_id, message_id, state = hit
        if state not in AWAITING_RECEIPT:
            continue  # a repeated DLR for a part already final
        check_transition(state, item.state, PART_TRANSITIONS)
        updates.append((item.state, item.error, item.done_at, part_id))
        found[(item.smpp_id, item.smsc)] = (part_id, message_id, item.state)
        messages.add(message_id)
    if updates:
        hot.run(session, hot.part_receipt, updates)
    if unmatched:
        session.execute(insert(U), unmatched)
    return messages
