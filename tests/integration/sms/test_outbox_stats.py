"""SMS statistics: counts per center, template and hour, delivery latency, bind states."""
from __future__ import annotations

from twisted.internet.defer import Deferred

from sms.outbox.records import SubmitResult
from sms.outbox.testing import FakeRouter
from sms.stats import collect, format_table
from tests.support.outbox import clock, db, msg, outbox, result  # noqa: F401


def test_stats_count_sent_delivered_failed_and_latency(outbox, db, clock):
    """Two sent, one delivered after 4 s and one failed: counted per template and hour."""
    result(outbox.accept(msg("a")))
    result(outbox.accept(msg("b", dest="13900000002")))
    result(outbox.accept(msg("c", dest="13900000003")))  # still queued
    claimed = result(outbox.claim(2))
    for m in claimed:
        outbox.record(SubmitResult(m.part_ids[0], m.message_id, "ok",
                                   smpp_id=f"s{m.message_id}", smsc="x"))
    clock.advance(4)
    result(outbox.receipt(f"s{claimed[0].message_id}", "x", "DELIVRD", None, None))
    result(outbox.receipt(f"s{claimed[1].message_id}", "x", "UNDELIV", "005", None))
    stats = result(Deferred.fromCoroutine(collect(db, FakeRouter())))
    [row] = stats["rows"]
    assert (row["center"], row["template"]) == ("demo", "t")
    assert (row["sent"], row["delivered"], row["failed"], row["queued"]) == (2, 1, 1, 1)
    assert stats["delivery_latency_s"]["p50"] == 4.0
    assert "fake" in stats["binds"]
    assert "demo" in format_table(stats)
