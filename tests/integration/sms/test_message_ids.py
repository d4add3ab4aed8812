"""Message ids in two forms: a receipt never settles another message's part, and the mismatch
is reported with the setting to change."""
from __future__ import annotations


from sandbox.smsc_sim import SimConfig
from sms.outbox.records import SubmitResult
from sms.outbox.states import SUBMITTED
from tests.support.outbox import clock, db, msg, outbox, result, states  # noqa: F401
from tests.support.smpp_harness import collect as _collect
from tests.support.logs import Logged
from tests.support.smpp_harness import Harness, smsc


def test_a_receipt_for_another_destination_never_moves_the_part(outbox, db):
    """The id says part A, the receipt's address says someone else: A keeps its state, the
    receipt is counted as misattributed and a warning names the settings to check."""
    a = result(outbox.accept(msg("a", dest="13900000001")))
    [m] = result(outbox.claim(10))
    outbox.record(SubmitResult(m.part_ids[0], a.message_id, "ok", smpp_id="1000", smsc="s1"))
    with Logged() as lines:
        result(outbox.receipt("1000", "s1", "UNDELIV", None, None, destination="13900000002"))
    assert states(db)[a.message_id] == SUBMITTED
    assert result(outbox.counter("receipts_misattributed")) == 1
    assert any("message_id_dlr" in line and "s1" in line for line in lines)
    result(outbox.receipt("1000", "s1", "DELIVRD", None, None, destination="8613900000001"))
    assert states(db)[a.message_id] == "delivered"  # the same number in another form matches


def test_hex_looking_ids_read_as_decimal_are_reported_with_the_setting():
    """Under auto, receipts whose ids are sometimes all digits and sometimes hex with letters
    are hexadecimal: the router warns once, naming [smsc:a] message_id_dlr."""
    h = Harness(smsc(window=4), sims={"a": SimConfig(password="pw", hex_ids_in_dlr=True,
                                                     id_start=2455)}).start()
    from sms.carrier.router import SubmitPart
    with Logged() as lines:
        for i in range(4):
            _collect(h.router.submit(SubmitPart(f"1390000000{i}", "12329", b"m", 0, 0)))
        h.advance(0.2)
    warnings = [line for line in lines if "message_id_dlr" in line]
    assert len(warnings) == 1 and "[smsc:a]" in warnings[0]


def test_receipts_left_unmatched_are_reported_with_the_setting(outbox, clock):
    """Receipts that match no sent part for ten minutes: the sweep warns, naming the setting."""
    for i in range(3):
        result(outbox.receipt(f"9{i}", "s1", "DELIVRD", None, None))
    clock.advance(601)
    with Logged() as lines:
        result(outbox.expire_stale())
        result(outbox.expire_stale())  # nothing new: no second warning
    warnings = [line for line in lines if "message_id_dlr" in line]
    assert len(warnings) == 1 and "3 receipts" in warnings[0] and "[smsc:s1]" in warnings[0]


def test_misattributed_receipts_are_warned_about_once_a_minute(outbox, db, clock):
    """A persistent mismatch counts every receipt but logs one line per SMSC per minute."""
    a = result(outbox.accept(msg("a", dest="13900000001")))
    [m] = result(outbox.claim(10))
    outbox.record(SubmitResult(m.part_ids[0], a.message_id, "ok", smpp_id="77", smsc="s2"))
    with Logged() as lines:
        for _ in range(3):
            result(outbox.receipt("77", "s2", "UNDELIV", None, None, destination="13900000002"))
        clock.advance(61)
        result(outbox.receipt("77", "s2", "UNDELIV", None, None, destination="13900000002"))
    assert len([line for line in lines if "[smsc:s2]" in line]) == 2
    assert result(outbox.counter("receipts_misattributed")) == 4


def test_an_early_receipt_for_another_number_is_not_matched_when_the_id_arrives(outbox, db):
    """A receipt that beat its response keeps the address it names: when a response with its
    id arrives for a part sent elsewhere, the part stays submitted and the receipt waits."""
    a = result(outbox.accept(msg("a", dest="13900000001")))
    b = result(outbox.accept(msg("b", dest="13900000002")))
    ma, mb = sorted(result(outbox.claim(10)), key=lambda m: m.message_id)
    result(outbox.receipt("55", "s1", "UNDELIV", None, None, destination="13900000002"))
    result(outbox.receipt("56", "s1", "DELIVRD", None, None, destination="8613900000002"))
    outbox.record(SubmitResult(ma.part_ids[0], a.message_id, "ok", smpp_id="55", smsc="s1"))
    outbox.record(SubmitResult(mb.part_ids[0], b.message_id, "ok", smpp_id="56", smsc="s1"))
    assert states(db) == {a.message_id: SUBMITTED, b.message_id: "delivered"}
    assert result(outbox.counter("receipts_misattributed")) == 1
