"""Call records and statistics on a real SQLite database (and the migration's schema)."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from ivr.records import CallRecord, CallRecords, FallbackCall, mask_caller
from ivr.stats import format_stats, summary
from ivr.tables import IvrCall, IvrKeyPress
from tests.support.databases import SyncDatabase


def _call(records, clock, *, keys=(), outcome="ivr_handled", served=1, survey=None,
          duration=30.0, center="demo"):
    record = CallRecord.start(instance="hotline-1", center=center, uniqueid="1.1",
                              caller_id="13800138000", dnid="12329", language="zh",
                              now=clock.seconds())
    done = []
    Deferred.fromCoroutine(records.open(record)).addCallback(done.append)
    record.visit("main")
    for node, key in keys:
        record.key(node, key)
    record.survey = survey
    clock.advance(duration)
    Deferred.fromCoroutine(records.close(record, outcome, served)).addCallback(done.append)
    assert len(done) == 2
    return record


def test_call_row_written_on_open_and_completed_on_close(db):
    """Open inserts the row (no end yet); close fills path, keys, outcome, survey, end."""
    clock = Clock()
    clock.advance(1000)
    records = CallRecords(SyncDatabase(db), clock)
    record = CallRecord.start(instance="hotline-1", center="demo", uniqueid="1.1",
                              caller_id="13800138000", dnid="12329", language="zh", now=1000.0)
    Deferred.fromCoroutine(records.open(record))
    row = db.run_sync(lambda s: s.get(IvrCall, record.id))
    assert row.ended_at is None and row.caller == "138****8000"
    record.visit("main")
    record.key("main", "1")
    record.key("main", "1")
    record.identified = True
    record.survey = 1
    clock.advance(42)
    Deferred.fromCoroutine(records.close(record, "ivr_handled", 2))
    row = db.run_sync(lambda s: s.get(IvrCall, record.id))
    assert (row.ended_at, row.path, row.keys, row.identified, row.served, row.outcome,
            row.survey) == (1042.0, "main", "main:1 main:1", 1, 2, "ivr_handled", 1)
    presses = db.run_sync(lambda s: [(p.node, p.key, p.count)
                                     for p in s.scalars(select(IvrKeyPress))])
    assert presses == [("main", "1", 2)]


def test_unknown_outcome_refused(db):
    """Outcomes are a closed set so statistics stay meaningful."""
    records = CallRecords(SyncDatabase(db), Clock())
    record = CallRecord.start(instance="i", center="demo", uniqueid="u", caller_id="",
                              dnid="", language="zh", now=0.0)
    Deferred.fromCoroutine(records.open(record))
    failures = []
    Deferred.fromCoroutine(records.close(record, "exploded", 0)).addErrback(failures.append)
    assert failures and failures[0].check(ValueError)


def test_statistics(db):
    """Calls by outcome, average duration, satisfaction and key presses per menu item."""
    clock = Clock()
    records = CallRecords(SyncDatabase(db), clock)
    _call(records, clock, keys=[("main", "1"), ("deposit", "1")], survey=1, duration=60)
    _call(records, clock, keys=[("main", "1")], survey=3, duration=20)
    _call(records, clock, keys=[("main", "0")], outcome="transferred", served=0, duration=10)
    _call(records, clock, outcome="abandoned", served=0, duration=10)
    _call(records, clock, outcome="abandoned", served=0, center="other")
    stats = db.run_sync(summary, "demo")
    assert (stats.calls, stats.ivr_handled, stats.transferred, stats.abandoned) == (4, 2, 1, 1)
    assert stats.average_duration == pytest.approx(25.0)
    assert stats.satisfaction == pytest.approx(0.5)
    assert stats.key_presses == {("main", "1"): 2, ("deposit", "1"): 1, ("main", "0"): 1}
    assert db.run_sync(summary).calls == 5
    assert db.run_sync(summary, None, 1e9).calls == 0
    text = format_stats(stats)
    assert "transferred    1" in text and "main                 1    2" in text


@pytest.mark.parametrize("number,masked", [
    ("13800138000", "138****8000"), ("+8613800138000", "+86*******8000"),
    ("5551234", "***1234"), ("1234", "****"), ("", ""), ("anonymous", "*****mous"),
])
def test_caller_numbers_are_never_stored_whole(number, masked):
    """Mobiles keep 3+4 digits, shorter numbers only their last 4 characters."""
    assert mask_caller(number) == masked


def _open(records, uniqueid, now=1000.0, instance="hotline-1"):
    record = CallRecord.start(instance=instance, center="demo", uniqueid=uniqueid,
                              caller_id="13800138000", dnid="12329", language="zh", now=now)
    Deferred.fromCoroutine(records.open(record))
    return record


def test_settle_closes_orphans_and_records_fallback_calls(db):
    """After a daemon death (issue 13, defect 3): an open record whose call met the fallback
    is closed ``lost`` with the end time Asterisk kept; one with no trace left is closed
    ``lost`` (duration unknown); a call still up stays open; a call only the fallback
    answered gets its own ``fallback`` record; other instances' records are not touched.
    Statistics count them all."""
    records = CallRecords(SyncDatabase(db), Clock())
    for uniqueid in ("1.1", "1.2", "1.3"):
        _open(records, uniqueid)
    _open(records, "1.4", instance="hotline-2")
    fallbacks = [
        FallbackCall.parse("1.1", "hotline-1|demo|1000|1011|1030|watchdog|ivr|zh|138****8000"),
        FallbackCall.parse("9.9", "hotline-1|demo|2000|2000|2012|no-heartbeat|ivr|zh|****1234"),
        # an administrator's recording call is no hotline call: not counted
        FallbackCall.parse("9.8", "hotline-1|demo|2000|2000|2012|no-heartbeat|admin|zh|****1"),
    ]
    out = []
    Deferred.fromCoroutine(records.settle("hotline-1", fallbacks, {"1.3"})).addCallback(
        out.append)
    assert out == [(2, 1)]
    rows = {r.uniqueid: r for r in db.run_sync(lambda s: list(s.scalars(select(IvrCall))))}
    assert (rows["1.1"].outcome, rows["1.1"].ended_at) == ("lost", 1030.0)
    assert (rows["1.2"].outcome, rows["1.2"].ended_at) == ("lost", None)
    assert rows["1.3"].outcome is None and rows["1.4"].outcome is None
    assert (rows["9.9"].outcome, rows["9.9"].started_at, rows["9.9"].ended_at,
            rows["9.9"].caller) == ("fallback", 2000.0, 2012.0, "****1234")
    stats = db.run_sync(summary, "demo")
    assert (stats.lost, stats.fallback, stats.calls - stats.ended) == (2, 1, 2)
    assert "9.8" not in rows
    assert "lost           2" in format_stats(stats)


def test_fallback_lines_of_another_shape_are_ignored():
    """A value the dialplan did not write is not interpreted; a whole number is masked."""
    assert FallbackCall.parse("1", "junk") is None
    assert FallbackCall.parse("1", "i|c|x|1|2|r|ivr|zh|****1") is None
    call = FallbackCall.parse("1", "i|c|1|1|2|r|ivr|zh|13800138000")
    assert call.caller == "138****8000"


def test_an_adopted_call_goes_on_in_the_record_its_dead_daemon_opened(db):
    """A call adopted from a dead daemon keeps one record: the open row of its first daemon
    now names the adopter and keeps its start; the first daemon, back, settles nothing of it.
    An adopted call with no row (its daemon died before writing it) gets a new one."""
    clock = Clock()
    records = CallRecords(SyncDatabase(db), clock)
    _open(records, "2.1", now=1000.0, instance="hotline-1")
    adopted = CallRecord.start(instance="hotline-2", center="demo", uniqueid="2.1",
                               caller_id="13800138000", dnid="12329", language="en", now=1005.0)
    adopted.adopted = True
    fresh = CallRecord.start(instance="hotline-2", center="demo", uniqueid="2.2",
                             caller_id="13800138000", dnid="12329", language="zh", now=1006.0)
    fresh.adopted = True
    for record in (adopted, fresh):
        Deferred.fromCoroutine(records.open(record))
    clock.advance(1010.0)
    Deferred.fromCoroutine(records.close(adopted, "ivr_handled", 1))
    out = []
    Deferred.fromCoroutine(records.settle("hotline-1", [], set())).addCallback(out.append)
    assert out == [(0, 0)]
    rows = db.run_sync(lambda s: [(r.uniqueid, r.instance, r.started_at, r.ended_at, r.outcome,
                                   r.language) for r in s.scalars(select(IvrCall)
                                                                  .order_by(IvrCall.id))])
    assert rows == [("2.1", "hotline-2", 1000.0, 1010.0, "ivr_handled", "en"),
                    ("2.2", "hotline-2", 1006.0, None, None, "zh")]
