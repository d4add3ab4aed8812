"""``hotline bench sms --pg-target``: issue 18's PostgreSQL cases, one daemon and a cluster.

Both run on the PostgreSQL at ``HOTLINE_BENCH_PG_URL`` against the lean bench SMSC
(``benchmarks.smpp_peer``) at 20 ms, one bind of window 64 per daemon, 1-part messages:

- **one daemon**: the throughput matrix's case (``run_case``), ``--repeat`` runs, the
  median kept (issue 18's target: 2,500 messages/s end to end);
- **the cluster**: ``--daemons`` processes, each one daemon's sending path (its own
  instance, outbox, send journal, router and dispatcher) on the same fresh tables; at one
  signal each accepts its share of the messages, as each daemon's API would, and the
  dispatchers claim disjointly. The total rate runs from that signal to the moment the
  database shows every message delivered (polled every 50 ms).

A member is ``python -m benchmarks.cluster_bench member ...``: it prints ``ready`` once
bound, accepts on a ``go`` line and stops on ``stop``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

from twisted.internet import stdio
from twisted.protocols.basic import LineReceiver

from benchmarks.sms_bench import _outbox_config, _sleep
from benchmarks.smpp_peer import (_LeanPeer, _median_run, encoded_parts, run_case, sending_path,
                                  smsc_config)

LATENCY, WINDOW = 0.02, 64


async def bench_pg_target(reactor, args, url: str) -> dict:
    n = args.messages or (6000 if args.quick else 12000)
    repeat = args.repeat or (1 if args.quick else 3)
    peer = _LeanPeer(LATENCY)
    try:
        runs = [await run_case(reactor, url, peer.port, WINDOW, 1, n) for _ in range(repeat)]
        one = _median_run(runs)
        one.update(database="postgresql", latency_ms=LATENCY * 1000, daemons=1)
        print(f"postgresql 1 daemon: n={n} accepted {one['accepted_per_s']}/s  end-to-end "
              f"{one['end_to_end_per_s']}/s (runs {one['runs_end_to_end_per_s']})", flush=True)
        clustered = [await run_cluster(reactor, url, peer.port, args.daemons, n * args.daemons)
                     for _ in range(repeat)]
        total = dict(sorted(clustered, key=lambda r: r["end_to_end_per_s"])[len(clustered) // 2])
        total["runs_end_to_end_per_s"] = [r["end_to_end_per_s"] for r in clustered]
        print(f"postgresql {args.daemons} daemons: n={total['messages']} end-to-end "
              f"{total['end_to_end_per_s']}/s in total (runs {total['runs_end_to_end_per_s']})",
              flush=True)
    finally:
        peer.stop()
    return {"pg_target": {"one_daemon": one, "cluster": total}}


async def run_cluster(reactor, url: str, port: int, daemons: int, n: int) -> dict:
    from sms.carrier import text
    from sms.outbox.outbox import Outbox
    from storage.db import Database
    from storage.models import load_all_tables

    db = Database(url, reactor, 2)
    load_all_tables().drop_all(db.engine)
    db.create_all()
    box = Outbox(db, reactor, _outbox_config(), encode=text.encode)
    share = n // daemons
    members = [subprocess.Popen(
        [sys.executable, "-m", "benchmarks.cluster_bench", "member", "--url", url,
         "--port", str(port), "--instance", f"bench-{k}", "--first", str(k * share),
         "--count", str(share)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for k in range(daemons)]
    try:
        for member in members:  # the parent does nothing else meanwhile: blocking is fine
            if member.stdout.readline().strip() != "ready":
                raise RuntimeError("a cluster member did not start")
        t0 = time.perf_counter()
        for member in members:
            member.stdin.write("go\n")
            member.stdin.flush()
        counts: dict = {}
        while counts.get("delivered", 0) < share * daemons:
            if time.perf_counter() - t0 > 300:
                raise RuntimeError(f"cluster case stalled: {counts}")
            await _sleep(reactor, 0.05)
            counts = await box.counts()
        seconds = time.perf_counter() - t0
        doubtful = await box.counter("possible_duplicates")
    finally:
        for member in members:
            if member.poll() is None:
                member.stdin.write("stop\n")
                member.stdin.close()
        for member in members:
            member.wait(30)
        db.stopService()
    return {"messages": share * daemons, "daemons": daemons, "window": WINDOW, "binds": daemons,
            "latency_ms": LATENCY * 1000, "database": "postgresql", "parts": 1,
            "end_to_end_per_s": round(share * daemons / seconds, 1),
            "possible_duplicates": doubtful}


class _Member(LineReceiver):
    delimiter = b"\n"

    def __init__(self, reactor, args):
        self.reactor, self.args = reactor, args

    def connectionMade(self) -> None:
        from twisted.internet.defer import Deferred

        Deferred.fromCoroutine(self.start()).addErrback(self.failed)

    async def start(self) -> None:
        from storage.db import Database

        a = self.args
        self.db = Database(a.url, self.reactor, 4)
        self.box, self.router, self.disp = sending_path(
            self.reactor, self.db, smsc_config(a.port, WINDOW), 2 * WINDOW, lambda _: None,
            instance=a.instance)
        self.router.startService()
        while self.router.bound_count() < 1:
            await _sleep(self.reactor, 0.05)
        await self.disp.startService()
        self.sendLine(b"ready")

    def lineReceived(self, line: bytes) -> None:
        from twisted.internet.defer import Deferred

        if line.strip() == b"go":
            Deferred.fromCoroutine(self.accept()).addErrback(self.failed)
        elif line.strip() == b"stop":
            Deferred.fromCoroutine(self.stop()).addErrback(self.failed)

    async def accept(self) -> None:
        from twisted.internet.defer import gatherResults

        from sms.outbox.records import Outgoing

        a, enc = self.args, encoded_parts(1)
        await gatherResults([self.box.accept(Outgoing("demo", "bulk", "bench", {}, "",
                                                      f"1390{i:07d}", f"b{i}", enc))
                             for i in range(a.first, a.first + a.count)])

    async def stop(self) -> None:
        await self.disp.stopService()
        await self.router.stopService()
        self.db.stopService()
        self.reactor.stop()

    def failed(self, failure) -> None:
        print(failure.getTraceback(), file=sys.stderr)
        self.reactor.stop()


def member(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster_bench member")
    for name in ("--url", "--instance"):
        parser.add_argument(name, required=True)
    for name in ("--port", "--first", "--count"):
        parser.add_argument(name, type=int, required=True)
    args = parser.parse_args(argv)
    from twisted.internet import reactor

    from common import heap

    stdio.StandardIO(_Member(reactor, args), reactor=reactor)
    heap.settle()
    reactor.run()
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["member"]:
    sys.exit(member(sys.argv[2:]))
