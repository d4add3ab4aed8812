"""``hotline bench sms``: outbox + SMPP throughput, and the alert run over a big journal.

Throughput: for each database (SQLite, and PostgreSQL when HOTLINE_BENCH_PG_URL
is set), message size (1 and 3 parts), window (1, 10, 64) and SMSC latency (0
and 20 ms), N messages are accepted into a fresh outbox and sent through the
real SmppRouter to the fault-injecting SMSC (sandbox/smsc_sim.py) in a child
process; we record messages per second accepted, submitted and delivered (DLR
committed), end to end. smpplib's blocking client against the same SMSC is the
baseline. ``--alerts-core DB`` instead times one alert run over a demo core's
whole journal. ``--pg-target`` runs only issue 18's PostgreSQL cases, one daemon and
a cluster of ``--daemons`` (``benchmarks/cluster_bench.py``). Results go to
benchmarks/results/sms.json and a table.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet.defer import Deferred


def _sleep(reactor, seconds: float) -> Deferred:
    d = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


def _outbox_config(**over):
    from sms.config import OutboxConfig

    base = dict(
        timezone="Asia/Shanghai",
        validity={"code": 600, "transaction": 172800, "bulk": 259200, "reply": 3600},
        quiet_hours={"code": None, "transaction": None, "bulk": None, "reply": None},
        retry_base=0.5, retry_max=5.0, per_destination_per_hour=10**9, batch=1000,
        max_inflight=0, alerts_interval=10.0, alerts_batch=5000, reminder_days=3,
        reminder_time=(9, 0), mo_routes={}, keywords={})
    base.update(over)
    return OutboxConfig(**base)


# -- the alert run over a big journal ---------------------------------------------------------

async def bench_alerts(reactor, core_db: str, workdir: Path, max_events: int | None) -> dict:
    from core_client.embedded import EmbeddedCore
    from sms.carrier import text
    from sms.alerts import AlertJob, set_cursor
    from sms.outbox.outbox import Outbox
    from sms.templates import TemplateSet
    from storage.db import Database

    url = f"sqlite:///{workdir / 'alerts.db'}"
    db = Database(url, reactor, 2)
    db.create_all()
    db.run_sync(set_cursor, "demo", 0, 0.0)  # the whole demo journal: a deliberate backfill
    config = _outbox_config()
    box = Outbox(db, reactor, config, encode=text.encode,
                 templates=TemplateSet({"demo": "示例公积金"}))
    core = EmbeddedCore("demo", core_db, reactor)
    job = AlertJob("demo", core, box, config)
    t0 = time.perf_counter()
    report = await job.run_once(max_events=max_events)
    seconds = time.perf_counter() - t0
    db.stopService()
    return {"events": report.events, "accepted": report.accepted, "dues": report.dues,
            "skipped": report.skipped,
            "seconds": round(seconds, 1), "events_per_s": round(report.events / seconds, 1),
            "database": "sqlite"}


def main(args) -> int:
    from twisted.internet import reactor

    pg_url = os.environ.get("HOTLINE_BENCH_PG_URL") or None
    if getattr(args, "pg_target", False) and pg_url is None:
        print("--pg-target needs HOTLINE_BENCH_PG_URL (a PostgreSQL whose tables it may drop, "
              "e.g. from python -m sandbox.postgres start --dir D)", file=sys.stderr)
        return 2

    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "platform": platform.platform()},
                     "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    workdir = Path(tempfile.mkdtemp(prefix="hotline-bench-sms-"))
    failure = []

    async def run():
        if args.alerts_core:
            results["alerts"] = await bench_alerts(reactor, args.alerts_core, workdir,
                                                   args.alerts_events)
            print(json.dumps(results["alerts"], ensure_ascii=False))
        elif args.pg_target:
            from benchmarks.cluster_bench import bench_pg_target

            results.update(await bench_pg_target(reactor, args, pg_url))
        elif args.faults:
            results.update(await bench_faults(reactor, args, workdir))
        elif args.cmpp:
            from benchmarks.cmpp_peer import bench_cmpp

            results.update(await bench_cmpp(reactor, args, workdir))
        else:
            results.update(await bench_throughput(reactor, args, workdir))
            from benchmarks.cmpp_peer import bench_cmpp

            results.update(await bench_cmpp(reactor, args, workdir))
        for section in ("alerts", "throughput", "faults", "cmpp", "pg_target"):  # the file keeps the others' runs
            if section in results:
                results[section]["when"] = results["when"]

    def done(result):
        if hasattr(result, "getTraceback"):
            failure.append(result.getTraceback())
        reactor.stop()

    from common import heap
    from benchmarks.smpp_peer import (  # before the heap is settled, as in the daemon
        bench_faults, bench_throughput)

    reactor.callWhenRunning(lambda: Deferred.fromCoroutine(run()).addBoth(done))
    heap.settle()
    reactor.run()
    if failure:
        print(failure[0], file=sys.stderr)
        return 1
    merged = {**previous, **results}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, ensure_ascii=False, indent=1) + "\n")
    print(f"written to {out}")
    return 0


def register_bench(bench) -> None:
    """``hotline bench sms``."""
    p = bench.add_parser("sms", help="outbox + SMPP throughput against the fault-injecting SMSC")
    p.add_argument("--quick", action="store_true", help="a smaller run")
    p.add_argument("--messages", type=int, default=None)
    p.add_argument("--repeat", type=int, default=None,
                   help="runs per case, the median recorded (default 3, 1 with --quick)")
    p.add_argument("--out", default="benchmarks/results/sms.json")
    p.add_argument("--cmpp", action="store_true",
                   help="only the CMPP 3.0 cases (20 ms, window 16, 1 and 8 connections)")
    p.add_argument("--alerts-core", help="time one alert run over this demo core database")
    p.add_argument("--faults", action="store_true",
                   help="clean and faulty runs against smsc_sim (throttling, queue full, cuts)")
    p.add_argument("--alerts-events", type=int, default=None, help="stop after N events")
    p.add_argument("--pg-target", action="store_true",
                   help="only issue 18's PostgreSQL cases (20 ms, window 64): one daemon, "
                        "then --daemons on one database; needs HOTLINE_BENCH_PG_URL")
    p.add_argument("--daemons", type=int, default=2,
                   help="daemons of the --pg-target cluster case (default 2)")

    p.set_defaults(func=main)
