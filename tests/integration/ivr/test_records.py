"""Call records and statistics on a real SQLite database (and the migration's schema)."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from ivr.records import CallRecord, CallRecords, mask_caller
from ivr.stats import format_stats, summary
from ivr.tables import IvrCall, IvrKeyPress
from storage.db import Database
from storage.migrate import upgrade


class SyncDatabase:
    """Database.run on the calling thread, so tests need no reactor or thread pool."""

    def __init__(self, db: Database):
        self.db = db

    def run(self, fn, *args):
        return succeed(self.db.run_sync(fn, *args))


@pytest.fixture(params=["create_all", "migration", "postgresql"])
def db(tmp_path, request):
    """A fresh database: SQLite from the models or from the Alembic migration, and
    PostgreSQL from the migration."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'hotline.db'}"
    database = Database(url, reactor=None)
    if request.param == "create_all":
        database.create_all()
    else:
        upgrade(url)
    yield database
    database.engine.dispose()


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
