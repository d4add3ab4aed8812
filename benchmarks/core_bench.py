"""``hotline bench core``: core lookups per second, embedded and over the HTTP API.

The HTTP case is served twice: by this process's reactor, and by ``hotline core serve``
in its own process (so that the server's CPU is not the client's).
"""
from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core_client import demo_data


def register_bench(bench_subparsers) -> None:
    b = bench_subparsers.add_parser("core", help="core lookups per second, embedded and http")
    b.add_argument("--db", help="an existing demo core database (default: generate one)")
    b.add_argument("--persons", type=int, default=100_000, help="persons when generating")
    b.add_argument("--seconds", type=float, default=5.0, help="measuring time per backend")
    b.add_argument("--concurrency", type=int, default=16, help="lookups in flight")
    b.add_argument("--out", default="benchmarks/results/core.json")
    b.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-core-") as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "core.db"
        generated = None
        if not args.db:
            generated = demo_data.generate(db, args.persons)
        results: dict = {}
        key = os.urandom(16).hex()
        server = subprocess.Popen(
            [sys.executable, "-m", "core_client.cli", "core", "serve", "--db", str(db),
             "--listen", "tcp:port=0:interface=127.0.0.1", "--center", "bench"],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "HOTLINE_CORE_KEY": key})
        try:
            line = server.stdout.readline()
            if "listening on port" not in line:
                raise SystemExit(f"hotline: the core server did not start: {line.strip()}")
            remote = (int(line.rsplit(" ", 1)[1]), key)
            _run_reactor(lambda reactor: _bench(reactor, db, args, results, remote))
        finally:
            server.terminate()
            server.wait(10)
    results.update({
        "persons": _persons(db) if args.db else args.persons,
        "generate_seconds": generated["seconds"] if generated else None,
        "seconds_per_backend": args.seconds, "concurrency": args.concurrency,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'backend':<40} {'lookups/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for name, label in (("embedded", "embedded (direct, thread pool)"),
                        ("http", "http (server in the same process)"),
                        ("http_server_process", "http (server in its own process)")):
        r = results[name]
        print(f"{label:<40} {r['lookups_per_s']:>10.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
    print(f"written to {out}")
    return 0


def _run_reactor(main) -> None:
    """Run ``main(reactor)`` on the real reactor until it finishes; re-raise its error."""
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred
    from twisted.python.failure import Failure

    outcome: list = []

    def start() -> None:
        d = Deferred.fromCoroutine(main(reactor))
        d.addBoth(lambda r: (outcome.append(r), reactor.stop()))

    reactor.callWhenRunning(start)
    reactor.run()
    if outcome and isinstance(outcome[0], Failure):
        outcome[0].raiseException()


def _persons(db: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM person").fetchone()[0]
    finally:
        conn.close()


async def _bench(reactor, db: Path, args, results: dict, remote: tuple[int, str]) -> None:
    """Embedded direct, then HTTP through the test server on a loopback port: first served
    by this process's reactor, then by ``hotline core serve`` in its own process."""
    import sqlite3

    from core_client.embedded import EmbeddedCore
    from core_client.http import HttpCore, make_http_client
    from core_client.testing import CoreServer, serve

    conn = sqlite3.connect(db)
    ids = [r[0] for r in conn.execute("SELECT ZJHM FROM person ORDER BY random() LIMIT 5000")]
    conn.close()
    reactor.suggestThreadPoolSize(max(4, args.concurrency))
    embedded = EmbeddedCore("bench", db, reactor)
    results["embedded"] = await _measure(reactor, embedded, ids, args)
    key = os.urandom(32)
    port = serve(reactor, CoreServer(embedded, key, reactor))
    url = f"http://127.0.0.1:{port.getHost().port}/hpf/v1"
    client = HttpCore("bench", url, key, reactor, make_http_client(reactor), timeout=10)
    try:
        results["http"] = await _measure(reactor, client, ids, args)
    finally:
        await port.stopListening()
    port_no, remote_key = remote
    client = HttpCore("bench", f"http://127.0.0.1:{port_no}/hpf/v1", remote_key, reactor,
                      make_http_client(reactor), timeout=10)
    results["http_server_process"] = await _measure(reactor, client, ids, args)


async def _measure(reactor, core, ids: list[str], args) -> dict:
    """``concurrency`` loops of find_account(id_number) for ``seconds``; latency percentiles."""
    from twisted.internet import defer

    rng = random.Random(1)
    latencies: list[float] = []
    deadline = time.perf_counter() + args.seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await core.find_account(id_number=rng.choice(ids))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await defer.gatherResults([defer.Deferred.fromCoroutine(worker())
                               for _ in range(args.concurrency)], consumeErrors=True)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"lookups": len(latencies), "lookups_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3)}
