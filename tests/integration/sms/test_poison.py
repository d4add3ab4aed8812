"""A poison part (a field SMPP cannot carry) fails alone: no leaked slot, no lost burst, no drop."""
from __future__ import annotations

from sms.carrier.router import SubmitPart
from sms.smpp.protocol import PermanentError
from tests.support.smpp_harness import Harness, smsc


def _part(dest: str, i: int) -> SubmitPart:
    return SubmitPart(destination=dest, source="12329", short_message=b"m%d" % i,
                      data_coding=0, esm_class=0)


def _collect(d):
    out = []
    d.addBoth(out.append)
    return out


def test_poison_destinations_fail_alone_and_the_burst_goes_out():
    """Non-Latin-1 destinations mixed into a burst: each fails permanently with a reason that
    names the field, every valid part is accepted, the window is whole, the link stays up."""
    h = Harness(smsc(window=8)).start()
    bind = h.router._smscs[0].binds[0]
    outs = []
    for i in range(30):
        dest = "一三八" if i % 5 == 2 else f"139{i:08d}"
        outs.append((dest, _collect(h.router.submit(_part(dest, i)))))
    h.advance(0.5)
    poison = [o[0] for d, o in outs if d == "一三八"]
    valid = [o[0] for d, o in outs if d != "一三八"]
    assert len(poison) == 6 and len(valid) == 24
    assert all(hasattr(r, "message_id") for r in valid)
    for f in poison:
        assert f.check(PermanentError)
        assert "destination_addr" in f.value.reason
    assert bind.inflight == 0 and bind.state == "bound"
    assert h.sims["a"].stats["connections"] == 1 and h.sims["a"].stats["accepted"] == 24
    assert h.router.faults._counts == {"a-0": {"unsendable": 6}}  # in the minute's warning


def test_poison_messages_fail_with_a_reason_and_the_rest_is_delivered_after_a_restart(
        db_url, tmp_path):
    """Poison rows (accepted before destinations were checked) left claimed by a crash:
    recovery counts none of them as possible duplicates, the restarted dispatcher fails
    each with its reason and delivers every valid message over the one link."""
    from sqlalchemy import update

    from sms.carrier.router import SubmitPart
    from sms.carrier.send_journal import SendJournal
    from sms.outbox.dispatcher import Dispatcher
    from sms.outbox.outbox import Outbox
    from sms.outbox.sql import M, P
    from sms.outbox.testing import InlineDatabase, split_encode
    from sms.smpp.protocol import TemporaryError
    from tests.support.outbox import make_config, msg, noon, result

    h = Harness(smsc(window=8))
    h.clock.advance(noon())
    db = InlineDatabase(db_url, None, 1)
    db.create_all()
    box = Outbox(db, h.clock, make_config(per_destination_per_hour=10**6), encode=split_encode)
    h.router.on_receipt = lambda r: box.receipt(r.message_id, r.smsc, r.state, r.error, None)
    ids = [result(box.accept(msg(f"k{i}", dest=f"139{i:08d}"))).message_id for i in range(66)]
    poison = ids[::11]
    with db.sessions() as s, s.begin():
        s.execute(update(M).where(M.c.id.in_(poison)).values(destination="一三八"))
    result(box.claim(1000))  # the crash: everything claimed, nothing sent
    journal = SendJournal(tmp_path / "j", "test", boot_id="boot")

    def make_part(m, part):
        return SubmitPart(m.destination, "12329", part.payload, part.data_coding, part.esm_class)

    disp = Dispatcher(box, h.router, h.clock, make_part=make_part,
                      temporary=(TemporaryError,), permanent=(PermanentError,),
                      max_inflight=16, journal=journal)
    h.start()
    disp.startService()
    h.advance(3.0)
    assert result(box.counter("possible_duplicates")) == 0
    assert result(box.counts()) == {"delivered": 60, "failed": 6}
    with db.sessions() as s:
        errors = {r[0] for r in s.execute(
            P.select().with_only_columns(P.c.error_code).where(P.c.message_id.in_(poison)))}
    assert errors == {"unsendable destination_addr"}
    assert h.sims["a"].stats["connections"] == 1 and h.sims["a"].stats["accepted"] == 60
    assert disp.inflight == 0
    result(disp.stopService())
    db.engine.dispose()


def test_a_draft_that_cannot_be_rendered_fails_alone_in_an_alert_batch(db_url):
    """An event whose values no template takes (a 2,000-digit amount) is refused with its
    reason; the rest of the page is accepted and the cursor moves past it."""
    from twisted.internet.task import Clock

    from sms.outbox.outbox import Outbox
    from sms.outbox.records import Accepted, Draft, Unrenderable
    from sms.outbox.testing import InlineDatabase, split_encode
    from sms.templates import TemplateSet
    from tests.support.outbox import make_config, noon, result

    clock = Clock()
    clock.advance(noon())
    db = InlineDatabase(db_url, None, 1)
    db.create_all()
    box = Outbox(db, clock, make_config(), encode=split_encode,
                 templates=TemplateSet({"demo": "示例公积金"}))
    params = dict(account="1234567890", date="2026-11-26", amount="1608.00", balance="1.00")
    drafts = [Draft("deposit_credited", dict(params, amount="9" * 2000), "13800138000", "a"),
              Draft("deposit_credited", params, "13800138001", "b")]
    bad, good = result(box.accept_drafts("demo", drafts, 42))
    assert isinstance(bad, Unrenderable) and "amount" in str(bad)
    assert isinstance(good, Accepted)
    assert result(box.alert_cursor("demo")) == 42
    db.engine.dispose()
