"""Accepting on PostgreSQL streams the batch through COPY: every value must arrive as
an INSERT would have stored it (text with tabs, newlines and backslashes, binary parts)."""
from __future__ import annotations

from sqlalchemy import select

from sms.outbox.records import EncodedPart, Outgoing
from sms.outbox.states import QUEUED
from sms.tables import SmsMessage, SmsPart
from tests.support.outbox import clock, db, outbox, result  # noqa: F401  (fixtures)


def test_awkward_values_arrive_intact(outbox, db):
    """Text and params with COPY's special characters, a payload with NUL and backslash
    bytes, and the constants of the statement (state, counters) are stored as given."""
    text = "【示例】tab\there\nnew line \\N back\\slash"
    payload = bytes(range(256))
    m = Outgoing(center="demo", klass="transaction", template="t", params={"k": "a\tb\\c"},
                 text=text, destination="13900000009", idem_key="copy-1",
                 parts=(EncodedPart(payload, 8, 64), EncodedPart(b"\x00\\", 0, 0)))
    accepted = result(outbox.accept(m))
    with db.sessions() as s:
        row = s.execute(select(SmsMessage.text, SmsMessage.params, SmsMessage.state,
                               SmsMessage.attempts, SmsMessage.idem_key)).one()
        parts = s.execute(select(SmsPart.payload, SmsPart.esm_class, SmsPart.seq)
                          .order_by(SmsPart.seq)).all()
    assert row == (text, '{"k": "a\\tb\\\\c"}', QUEUED, 0, "copy-1")
    assert [(bytes(p), e, q) for p, e, q in parts] == [(payload, 64, 0), (b"\x00\\", 0, 1)]
    assert accepted.part_count == 2
