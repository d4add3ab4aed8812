"""Binds in memory against smsc_sim: state machine, refused binds, window, throttle, slow-down."""
from __future__ import annotations

import pytest
from twisted.logger import LogLevel, capturedLogs
from twisted.internet.task import Clock

from sandbox.smsc_sim import SimConfig
from common.link import UP, IllegalTransition
from sms.smpp.binds import BOUND, DOWN, BINDING, UNBINDING, TokenBucket
from sms.carrier.router import SubmitPart
from sms.smpp.protocol import LinkLost, NotBound, Throttled
from tests.support.smpp_harness import DEST, Harness, collect, smsc, submit_part



def test_bind_state_machine_is_observable_through_a_cycle():
    """down -> binding -> bound on start; bound -> unbinding -> down on stop."""
    h = Harness(smsc())
    bind = h.router._smscs[0].binds[0]
    seen = []
    bind.tx.observe(lambda link, old, new: seen.append((old, new)))
    h.start()
    h.router.stopService()
    h.flush()
    assert seen == [(DOWN, BINDING), (BINDING, BOUND), (BOUND, UNBINDING), (UNBINDING, DOWN)]
    assert h.sims["a"].stats["unbinds"] == 1


def test_illegal_transition_raises():
    """The machine refuses a jump it does not allow (down -> bound)."""
    h = Harness(smsc())
    with pytest.raises(IllegalTransition):
        h.router._smscs[0].binds[0].tx._move(UP)


def test_refused_bind_counts_as_failed_connection_and_is_retried_with_backoff():
    """Two refused binds: down again each time, retried after 1 s (reconnect_min) then 2 s,
    then bound."""
    h = Harness(smsc(), sims={"a": SimConfig(password="pw", reject_binds=2)})
    h.start()
    bind = h.router._smscs[0].binds[0]
    assert bind.state == DOWN and bind.tx.failures == 1
    h.advance(0.95)
    assert bind.tx.failures == 1
    h.advance(0.1)
    assert bind.tx.failures == 2 and bind.state == DOWN
    h.advance(1.9)
    assert bind.state == DOWN
    h.advance(0.2)
    assert bind.state == BOUND and h.endpoints["a"].attempts == 3


def test_wrong_password_never_binds():
    """A wrong password keeps the bind down and counts failed binds."""
    h = Harness(smsc(password="nope")).start()
    h.advance(4.0, step=0.5)
    bind = h.router._smscs[0].binds[0]
    assert bind.state == DOWN and bind.tx.failures >= 2
    assert "bind failed" in bind.snapshot()["last_error"]


def test_window_bounds_outstanding_submit_sm():
    """With window 3 and a 1 s SMSC latency, only 3 submit_sm are outstanding at once."""
    h = Harness(smsc(window=3), sims={"a": SimConfig(password="pw", latency=1.0)}).start()
    results = [collect(h.router.submit(submit_part(i))) for i in range(7)]
    h.flush()
    bind = h.router._smscs[0].binds[0]
    assert bind.inflight == 3 and h.sims["a"].stats["submits"] == 3
    assert not h.router.has_capacity(DEST)
    h.advance(1.0)
    assert h.sims["a"].stats["submits"] == 6
    h.advance(2.0)
    assert all(len(r) == 1 and not hasattr(r[0], "check") for r in results)
    assert h.sims["a"].stats["accepted"] == 7 and h.router.has_capacity(DEST)


def test_throttle_counts_pdus_per_second():
    """At 10 PDUs/s, 30 parts take about 3 s: a 3-part message costs three tokens."""
    h = Harness(smsc(throughput=10.0, window=100)).start()
    for i in range(30):
        h.router.submit(submit_part(i))
    h.flush()
    sim = h.sims["a"]
    assert sim.stats["submits"] == 1
    h.advance(1.0)
    assert 10 <= sim.stats["submits"] <= 12
    h.advance(2.0)
    assert sim.stats["submits"] == 30


def test_token_bucket_unlimited_and_limited():
    """Rate 0 never waits; a limited bucket says how long until the next token."""
    clock = Clock()
    assert TokenBucket(0, clock).take() == 0.0
    b = TokenBucket(2.0, clock)
    assert b.take() == 0.0
    assert b.take() == pytest.approx(0.5)
    clock.advance(0.5)
    assert b.take() == 0.0


def test_throttled_answers_halve_the_rate_and_it_recovers():
    """ESME_RTHROTTLED fails that part as Throttled and halves the rate, which then recovers."""
    h = Harness(smsc(throughput=100.0, window=50),
                sims={"a": SimConfig(password="pw", throttle_every=5, throttle_burst=2)}).start()
    results = [collect(h.router.submit(submit_part(i))) for i in range(10)]
    h.advance(0.5)
    bind = h.router._smscs[0].binds[0]
    throttled = [r[0] for r in results if hasattr(r[0], "check") and r[0].check(Throttled)]
    assert len(throttled) >= 2 and bind.counters["throttled"] == len(throttled)
    assert bind.bucket.rate < 100.0
    h.advance(20.0, step=0.5)
    assert bind.bucket.rate == 100.0


def test_throttling_narrows_the_window_and_accepted_parts_widen_it_again():
    """AIMD: a "slow down" answer halves the window in use (once for a burst in one window),
    accepted parts widen it one by one to the configured window; no one-second pause."""
    h = Harness(smsc(window=16),
                sims={"a": SimConfig(password="pw", throttle_every=1, throttle_burst=3)}).start()
    bind = h.router._smscs[0].binds[0]
    first = [collect(h.router.submit(submit_part(i))) for i in range(3)]
    h.flush()
    assert all(r[0].check(Throttled) for r in first)
    assert bind.window == 8 and not h.router.states()["a"]["a-0"]["paused"]
    h.sims["a"].configure(throttle_every=0, throttle_burst=0)
    rest = [collect(h.router.submit(submit_part(i))) for i in range(3, 200)]
    h.advance(0.5)
    assert all(r and r[0].smsc == "a" for r in rest)
    assert bind.window == 16


def test_a_bind_at_a_window_of_one_pauses_briefly_on_throttle():
    """Only a bind already down to one part in flight waits, and only THROTTLE_PAUSE."""
    from sms.smpp.binds import THROTTLE_PAUSE

    h = Harness(smsc(window=1),
                sims={"a": SimConfig(password="pw", throttle_every=1, throttle_burst=1)}).start()
    first = collect(h.router.submit(submit_part(0)))
    h.flush()
    assert first[0].check(Throttled)
    h.sims["a"].configure(throttle_every=0, throttle_burst=0)
    second = collect(h.router.submit(submit_part(1)))
    h.flush()
    assert second == [] and h.router.states()["a"]["a-0"]["paused"]
    h.advance(THROTTLE_PAUSE)
    assert second and second[0].smsc == "a"


def test_disconnect_with_full_window_fails_inflight_and_rebinds():
    """The SMSC drops the link with 5 unanswered parts: all 5 fail LinkLost, the bind comes back."""
    h = Harness(smsc(window=5),
                sims={"a": SimConfig(password="pw", disconnect_after=2, disconnect_hold=5)}).start()
    results = [collect(h.router.submit(submit_part(i))) for i in range(7)]
    h.flush()
    lost = [r for r in results if r and hasattr(r[0], "check") and r[0].check(LinkLost)]
    ok = [r for r in results if r and not hasattr(r[0], "check")]
    assert len(ok) == 2 and len(lost) == 5
    bind = h.router._smscs[0].binds[0]
    assert bind.state == DOWN and bind.inflight == 0
    h.advance(0.95)
    assert bind.state == DOWN  # the first retry waits reconnect_min
    h.advance(0.1)
    assert bind.state == BOUND and bind.snapshot()["binds"] == 2


def test_parts_still_queued_when_the_link_drops_fail_not_bound_and_count_as_no_error():
    """Parts that never left the bind's queue fail NotBound (the outbox retries them); the
    bind's counters and window count only the parts that went out."""
    h = Harness(smsc(window=2),
                sims={"a": SimConfig(password="pw", disconnect_after=1, disconnect_hold=1)}).start()
    results = [collect(h.router.submit(submit_part(i))) for i in range(6)]
    h.flush()
    ok = [r for r in results if r and not hasattr(r[0], "check")]
    lost = [r for r in results if r and hasattr(r[0], "check") and r[0].check(LinkLost)]
    unsent = [r for r in results if r and hasattr(r[0], "check") and r[0].check(NotBound)]
    assert len(ok) + len(lost) + len(unsent) == 6 and len(ok) == 1 and len(unsent) >= 3
    bind = h.router._smscs[0].binds[0]
    assert bind.inflight == 0
    assert bind.counters["ok"] == 1 and bind.counters["temporary"] == len(lost)
    assert bind.counters["submitted"] == 1 + len(lost)


def test_pair_mode_binds_transmitter_and_receiver():
    """bind_mode pair: a transmitter and a receiver; receipts arrive on the receiver."""
    h = Harness(smsc(bind_mode="pair")).start()
    bind = h.router._smscs[0].binds[0]
    assert [link.mode for link in bind.links] == ["transmitter", "receiver"]
    assert all(link.state == BOUND for link in bind.links)
    r = collect(h.router.submit(submit_part()))
    h.flush()
    assert r[0].message_id and [x.message_id for x in h.receipts] == [r[0].message_id]


def test_multipart_message_costs_one_token_per_part():
    """At 3 PDUs/s a 3-part Chinese message takes a second: each part is one submit_sm."""
    from sms.carrier.text import encode

    h = Harness(smsc(throughput=3.0, window=10)).start()
    e = encode("公" * 150, reference=9)
    assert e.part_count == 3
    for body in e.parts + e.parts:
        h.router.submit(SubmitPart(DEST, "12329", body, e.data_coding, e.esm_class))
    h.flush()
    assert h.sims["a"].stats["submits"] == 1
    h.advance(1.05)
    assert h.sims["a"].stats["submits"] == 4
    h.advance(0.7)
    assert h.sims["a"].stats["submits"] == 6


def test_refused_bind_closes_and_rebinds_with_no_error_logged():
    """Regression for the ClientService gap: the refused bind's connection really closes
    (over the memory wire), nothing is logged as an error, and the retry binds."""
    with capturedLogs() as events:
        h = Harness(smsc(), sims={"a": SimConfig(password="pw", reject_binds=1)}).start()
        bind = h.router._smscs[0].binds[0]
        assert bind.state == DOWN and not h.endpoints["a"].pumps  # the refused one is gone
        h.advance(1.1)
    assert bind.state == BOUND and bind.tx.failures == 1
    assert not [e for e in events if e.get("log_failure") is not None
                or e.get("log_level") in (LogLevel.error, LogLevel.critical)]


def test_link_cut_during_bind_is_a_failed_attempt_and_rebinds():
    """The SMSC side drops the connection before answering the bind: a failed attempt
    (no NoTransition from ClientService), retried after reconnect_min."""
    h = Harness(smsc())
    h.router.startService()  # connected, bind_transceiver written but not yet delivered
    bind = h.router._smscs[0].binds[0]
    assert bind.state == BINDING
    h.endpoints["a"].pumps[0].serverIO.loseConnection()
    h.flush()
    assert bind.state == DOWN and bind.tx.failures == 1 and bind.tx.ups == 0
    h.advance(1.1)
    assert bind.state == BOUND


def test_token_bucket_burst_is_a_configurable_share_of_a_second():
    """A bind's bucket holds a tenth of a second of its rate; the door's SMPP clients' bucket
    (burst_seconds=1) lets a whole second's worth through at once, then one per 1/rate."""
    clock = Clock()
    bind = TokenBucket(20, clock)
    assert [bind.take() == 0.0 for _ in range(3)] == [True, True, False]
    door = TokenBucket(20, clock, burst_seconds=1.0)
    assert all(door.take() == 0.0 for _ in range(20))
    assert door.take() == pytest.approx(0.05)
    clock.advance(0.05)
    assert door.take() == 0.0
