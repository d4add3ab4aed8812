"""The router against memory SMSCs: prefix routing, failover, capacity, receipts, MO, states."""
from __future__ import annotations

from twisted.internet.defer import Deferred

from sandbox.smsc_sim import SimConfig
from sms.smpp.binds import BOUND, DOWN
from sms.carrier.router import NoRoute, NotBound, SubmitPart, TemporaryError
from tests.support.smpp_harness import Harness, smsc


def _part(dest: str, body: bytes = b"hi") -> SubmitPart:
    return SubmitPart(destination=dest, source="12329", short_message=body, data_coding=0,
                      esm_class=0)


def _collect(d):
    out = []
    d.addBoth(out.append)
    return out


def _three():
    return Harness(smsc("mobile", prefixes=("134", "135", "139")),
                   smsc("mobile139x", prefixes=("1391",)),
                   smsc("any", prefixes=()))


def test_longest_prefix_wins_then_catch_all():
    """1391... goes to the 4-digit prefix, 139... to the 3-digit, others to the catch-all."""
    h = _three().start()
    assert [s.name for s in h.router.route("13910000000")] == ["mobile139x", "mobile", "any"]
    assert [s.name for s in h.router.route("+8613910000000")] == ["any"]
    assert [s.name for s in h.router.route("13500000000")] == ["mobile", "any"]
    assert [s.name for s in h.router.route("10690000")] == ["any"]
    r = _collect(h.router.submit(_part("13910000000")))
    h.flush()
    assert r[0].smsc == "mobile139x" and r[0].bind == "mobile139x-0"


def test_failover_to_the_next_smsc_when_preferred_is_down():
    """With the preferred SMSC's bind down, the part goes to the next SMSC serving it."""
    h = _three()
    h.endpoints["mobile139x"].refuse = True
    h.start()
    r = _collect(h.router.submit(_part("13910000000")))
    h.flush()
    assert r[0].smsc == "mobile"
    assert h.sims["mobile139x"].stats["submits"] == 0


def test_no_route_and_not_bound_fail_fast():
    """No SMSC for the prefix: NoRoute; SMSCs exist but none bound: NotBound; both temporary."""
    h = Harness(smsc("cm", prefixes=("139",)))
    h.endpoints["cm"].refuse = True
    h.start()
    no_route = _collect(h.router.submit(_part("13300000000")))
    not_bound = _collect(h.router.submit(_part("13900000000")))
    assert no_route[0].check(NoRoute) and not_bound[0].check(NotBound)
    assert isinstance(no_route[0].value, TemporaryError)
    assert isinstance(not_bound[0].value, TemporaryError)
    assert not h.router.has_capacity("13900000000")


def test_capacity_and_waiting_for_it():
    """has_capacity turns false when windows fill; wait_for_capacity fires when a slot frees."""
    h = Harness(smsc("a", window=2, binds=2),
                sims={"a": SimConfig(password="pw", latency=1.0)}).start()
    for i in range(4):
        h.router.submit(_part("10690000", b"%d" % i))
    h.flush()
    assert not h.router.has_capacity("10690000")
    assert {b["inflight"] for b in h.router.states()["a"].values()} == {2}
    waited = _collect(h.router.wait_for_capacity())
    assert waited == []
    h.advance(1.0)
    assert waited == [None] and h.router.has_capacity("10690000")


def test_room_counts_one_window_queued_per_bind_and_none_when_nothing_is_bound():
    """has_room() is whether the dispatcher may hand over a part: a free slot or room for one
    window queued behind some bound bind; None when no bound bind serves the destination."""
    h = Harness(smsc("a", window=2, binds=2, prefixes=("139",)),
                sims={"a": SimConfig(password="pw", latency=1.0)})
    assert h.router.has_room("13900000000") is None
    h.start()
    assert h.router.has_room("13900000000") is True
    for i in range(7):
        h.router.submit(_part("13900000000", b"%d" % i))
    h.flush()
    assert h.router.has_room("13900000000") is True  # 7 of 2 x (2 in flight + 2 queued)
    h.router.submit(_part("13900000000", b"7"))
    h.flush()
    assert h.router.has_room("13900000000") is False
    assert h.router.has_room("13300000000") is None  # no SMSC serves it


def test_capacity_waiters_fire_when_a_bind_comes_up():
    """A waiter registered while everything is down fires when a bind is bound."""
    h = Harness(smsc("a"))
    h.endpoints["a"].refuse = True
    h.start()
    waited = _collect(h.router.wait_for_capacity())
    h.endpoints["a"].refuse = False
    h.advance(2.1, step=0.1)
    assert waited == [None] and h.router.bound_count() == 1


def test_receipt_reaches_on_receipt_with_normalised_id():
    """A DLR is parsed and handed over with the same normalised id the submit returned."""
    h = Harness(smsc("a")).start()
    r = _collect(h.router.submit(_part("10690000")))
    h.flush()
    assert [x.message_id for x in h.receipts] == [r[0].message_id]
    assert h.receipts[0].state == "DELIVRD" and h.receipts[0].smsc == "a"


def test_smsc_sim_redelivers_a_receipt_never_acknowledged_on_the_next_bind():
    """The test SMSC behaves like a real one: a DLR whose deliver_sm_resp never came (the
    gateway died before committing it) comes again after the link is bound again."""
    h = Harness(smsc("a"))
    h.router.on_receipt = lambda r: (h.receipts.append(r), Deferred())[1]  # commit never ends
    h.start()
    _collect(h.router.submit(_part("10690000")))
    h.flush()
    assert len(h.receipts) == 1
    h.sims["a"].sessions[0].transport.loseConnection()
    h.advance(3.0, step=0.1)  # the bind comes back after its reconnect delay
    assert len(h.receipts) == 2 and h.receipts[0].message_id == h.receipts[1].message_id
    assert h.sims["a"].stats["dlrs_redelivered"] == 1


def test_hex_ids_in_receipts_match_decimal_responses():
    """The SMSC answers 1001 and reports 3E9 in the DLR: both normalise to the same id."""
    h = Harness(smsc("a", message_id_dlr="hex"),
                sims={"a": SimConfig(password="pw", hex_ids_in_dlr=True, id_start=0x3E0)}).start()
    rs = [_collect(h.router.submit(_part("10690000", b"%d" % i))) for i in range(12)]
    h.flush()
    assert sorted(x.message_id for x in h.receipts) == sorted(r[0].message_id for r in rs)


def test_early_dlr_is_delivered_before_the_submit_resolves():
    """With the DLR before submit_sm_resp, on_receipt sees the id first; ids still match."""
    h = Harness(smsc("a"), sims={"a": SimConfig(password="pw", dlr_before_resp=True,
                                                latency=0.5)}).start()
    r = _collect(h.router.submit(_part("10690000")))
    h.flush()
    assert r == [] and len(h.receipts) == 1
    h.advance(0.5)
    assert r[0].message_id == h.receipts[0].message_id


def test_receipt_tlvs_preferred():
    """An SMSC sending receipt TLVs has them used (state from message_state)."""
    h = Harness(smsc("a"), sims={"a": SimConfig(password="pw", dlr_tlvs=True,
                                                dlr_stat="UNDELIV")}).start()
    _collect(h.router.submit(_part("10690000")))
    h.flush()
    assert h.receipts[0].state == "UNDELIV"


def test_mo_is_decoded_and_handed_over():
    """An MO in UCS2 reaches on_mo with its text decoded and its SMSC named."""
    h = Harness(smsc("a")).start()
    assert h.sims["a"].inject_mo("10690001", "12329", "余额")
    h.flush()
    assert [(m.text, m.destination, m.smsc) for m in h.mos] == [("余额", "12329", "a")]


def test_states_report_every_bind():
    """states() names every SMSC and bind with its state and counters."""
    h = Harness(smsc("a", binds=2), smsc("b")).start()
    states = h.router.states()
    assert set(states) == {"a", "b"} and set(states["a"]) == {"a-0", "a-1"}
    assert all(b["state"] == BOUND for s in states.values() for b in s.values())
    h.router.stopService()
    h.flush()
    assert all(b["state"] == DOWN for s in h.router.states().values() for b in s.values())


def test_permanent_error_carries_status_and_smsc():
    """A refused submit (bad destination) fails with PermanentError naming status and SMSC."""
    h = Harness(smsc("a")).start()
    r = _collect(h.router.submit(_part("9" * 25)))
    h.flush()
    assert r[0].value.status == 0x0B and r[0].value.smsc == "a"  # ESME_RINVDSTADR
