"""PostgreSQL failover: the primary killed, the synchronous standby promoted, nothing
acknowledged lost.

Two writers run through ``storage.db.Database`` on the multi-host URL
(``target_session_attrs=read-write``), as a daemon does: one accepts SMS into the
outbox, one opens call records. The primary is killed with SIGKILL mid-way and the
standby promoted with ``pg_ctl promote``; the writers must go on by themselves
(the Database retries a transaction whose connection was lost), and every write
they saw committed must be on the promoted server.
"""
from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from ivr.records import CallRecord, _insert
from sandbox.postgres import PostgresUnavailable, ReplicatedPostgres
from sandbox.pytest_postgres import unavailable
from sms.carrier import text
from sms.cli import WallClock
from sms.outbox.outbox import Outbox
from sms.outbox.records import EncodedPart, OutboxError, Outgoing
from storage.db import CommitOutcomeUnknown, Database
from storage.migrate import upgrade
from tests.support.outbox import make_config

pytestmark = pytest.mark.e2e


@pytest.fixture
def pair():
    try:
        pair = ReplicatedPostgres.start()  # under /tmp: the postgres user must reach it
    except PostgresUnavailable as e:
        unavailable(str(e))
    yield pair
    pair.stop(remove=True)


class Writer(threading.Thread):
    """Runs ``write(i)`` until stopped; keeps the i whose transaction committed and
    the times at which a write succeeded."""

    def __init__(self, write):
        super().__init__(daemon=True)
        self.write, self.stop = write, threading.Event()
        self.acked: list[int] = []
        self.unknown: list[int] = []
        self.times: list[float] = []

    def run(self):
        i = 0
        while not self.stop.is_set():
            try:
                self.write(i)
            except CommitOutcomeUnknown:
                self.unknown.append(i)  # never acknowledged: allowed to be missing
            else:
                self.acked.append(i)
                self.times.append(time.monotonic())
            i += 1
            time.sleep(0.005)


def test_primary_killed_standby_promoted_nothing_acknowledged_lost(pair):
    """Writes go on after kill -9 of the primary and pg_ctl promote of the standby,
    within 60 s, and every acknowledged SMS and call record is on the new primary."""
    url = pair.url()
    upgrade(url)
    db = Database(url, None, threads=2)
    box = Outbox(db, WallClock(), make_config(per_destination_per_hour=10**9, quiet_hours={}),
                 encode=text.encode)
    enc = text.encode("【示例公积金】您的公积金已入账，感谢使用。")
    parts = tuple(EncodedPart(p, enc.data_coding, enc.esm_class) for p in enc.parts)

    def accept(i):
        batch = [Outgoing("demo", "bulk", "failover", {}, "", f"139{i:05d}{j:03d}",
                          f"f{i}-{j}", parts) for j in range(20)]
        refused = [r for r in box.accept_blocking(batch) if isinstance(r, OutboxError)]
        assert refused == []

    def open_call(i):
        record = CallRecord.start(instance="failover", center="demo", uniqueid=f"u{i}",
                                  caller_id="", dnid="12329", language="zh", now=time.time())
        db.run_sync(_insert, record)

    writers = [Writer(accept), Writer(open_call)]
    for w in writers:
        w.start()
    try:
        time.sleep(2)
        pair.primary.kill()
        killed = time.monotonic()
        time.sleep(1)  # an operator (or a manager) notices, then promotes
        pair.standby.promote()
        deadline = killed + 60
        while time.monotonic() < deadline and not all(
                w.times and w.times[-1] > killed + 1 for w in writers):
            time.sleep(0.1)
        time.sleep(1)
    finally:
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(90)
        db.engine.dispose()
    sms, calls = writers
    for w in writers:
        resumed = [t for t in w.times if t > killed]
        assert resumed and resumed[0] - killed < 60, "writes did not resume within 60 s"
    engine = sa.create_engine(pair.standby.url())
    with engine.connect() as conn:
        keys = set(conn.execute(sa.text("select idem_key from sms_message")).scalars())
        uniqueids = set(conn.execute(sa.text("select uniqueid from ivr_call")).scalars())
    engine.dispose()
    lost_sms = [i for i in sms.acked if f"f{i}-0" not in keys or f"f{i}-19" not in keys]
    lost_calls = [i for i in calls.acked if f"u{i}" not in uniqueids]
    print(f"failover: {len(sms.acked)} SMS batches and {len(calls.acked)} call records "
          f"acknowledged, {len(sms.unknown) + len(calls.unknown)} commits unanswered, "
          f"resumed after {min(t for t in sms.times if t > killed) - killed:.1f} s")
    assert lost_sms == [] and lost_calls == []
