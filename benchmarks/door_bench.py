"""``hotline bench door``: the SMS door's rates, the daemon as a subprocess (sandbox/door_stack.py)
sending to sandbox/smsc_sim.py, on SQLite and (with ``--pg``) PostgreSQL:

- **rest_batch**: N messages POSTed to ``/v1/messages/batch`` in batches, one request after
  the other; messages accepted (committed) per second of requests.
- **smpp_w64**: N submit_sm through the door's SMPP server from a windowed ESME (the
  project's own SMPP protocol, 64 in flight); submit_sm to submit_sm_resp per second.
- **end_to_end**: from the first REST request to the last of those messages delivered
  (DLR from the SMSC committed), per second.
- **kannel** (anchor, when Debian kannel is installed): N sendsms requests to Kannel's
  smsbox (8 threads), whose bearerbox binds to the door's SMPP server (window 64): sendsms
  accepted per second, and messages arriving in the door's outbox per second.
Results go to benchmarks/results/door.json and a table.
"""
from __future__ import annotations

import json
import os
import platform
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

DEPOSIT = {"template": "deposit_credited",
           "params": {"account": "12345678", "date": "2026-11-26", "amount": "100",
                      "balance": "2000"}}


def register_bench(bench) -> None:
    p = bench.add_parser("door", help="the SMS door: REST batch, SMPP server, end to end, Kannel")
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=5_000)
    p.add_argument("--kannel-messages", type=int, default=2_000)
    p.add_argument("--pg", action="store_true", help="also on PostgreSQL (sandbox/postgres.py)")
    p.add_argument("--cases", default="rest,smpp,kannel",
                   help="which cases, comma-separated (rest includes end_to_end): a short "
                        "A/B run on a shared machine can take smpp alone")
    p.add_argument("--out", default="benchmarks/results/door.json")
    p.set_defaults(func=main)


def _count(stack, where: str = "") -> int:
    if stack.db_url.startswith("sqlite"):
        with sqlite3.connect(stack.db_url.removeprefix("sqlite:///"), timeout=30) as conn:
            return conn.execute(f"SELECT count(*) FROM sms_message {where}").fetchone()[0]
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM sms_message {where}")).scalar()
    finally:
        engine.dispose()


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def rest_case(stack, n: int, batch: int, offset: int) -> dict:
    started = time.monotonic()
    accepted = 0
    for start in range(0, n, batch):
        items = [{"to": f"139{offset + i:08d}", **DEPOSIT}
                 for i in range(start, min(n, start + batch))]
        status, body = stack.call("POST", "/batch", {"messages": items}, timeout=300)
        assert status == 200, (status, body)
        accepted += body["accepted"]
    took = time.monotonic() - started
    delivered = _wait(lambda: _count(stack, "WHERE state = 'delivered'") >= accepted, 600)
    e2e = time.monotonic() - started
    return {"rest_batch": {"messages": accepted, "seconds": round(took, 3),
                           "per_second": round(accepted / took)},
            "end_to_end": {"messages": accepted, "seconds": round(e2e, 3),
                           "per_second": round(accepted / e2e) if delivered else None}}


def smpp_case(stack, n: int, window: int, offset: int) -> dict:
    """A windowed ESME on a fresh reactor in this process (the daemon runs in its own)."""
    from twisted.internet.defer import Deferred
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    from sandbox.pytest_smsc import run_on_fresh_reactor
    from sms.smpp.protocol import SmppProtocol

    body = "【示例公积金】您的公积金账户信息已变更。".encode("utf-16-be")

    async def go(reactor):
        esme = SmppProtocol(reactor, response_timeout=30)
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", stack.smpp_port), esme)
        await esme.bind("transmitter", "cityloans", stack.smpp_password)
        done = Deferred()
        state = {"sent": 0, "answered": 0, "refused": 0}

        def one(_=None):
            if state["sent"] >= n:
                return
            i = state["sent"]
            state["sent"] += 1
            d = esme.submit_sm(destination_addr=f"139{offset + i:08d}", short_message=body,
                               data_coding=8)
            d.addCallbacks(answered, refused)

        def answered(_):
            state["answered"] += 1
            finish_or_next()

        def refused(failure):
            state["refused"] += 1
            finish_or_next()

        def finish_or_next():
            if state["answered"] + state["refused"] >= n:
                if not done.called:
                    done.callback(None)
            else:
                one()

        started = reactor.seconds()
        for _ in range(window):
            one()
        await done
        took = reactor.seconds() - started
        await esme.unbind()
        return {"messages": state["answered"], "refused": state["refused"],
                "window": window, "seconds": round(took, 3),
                "per_second": round(state["answered"] / took)}

    return run_on_fresh_reactor(go, timeout=600)


def kannel_case(stack, workdir: Path, log_dir: Path, n: int, offset: int) -> dict | None:
    from sandbox import kannel

    if not kannel.available():
        return None
    dlrs = kannel.DlrCollector()
    box = kannel.Kannel(workdir, log_dir, stack.smpp_port, "cityloans", stack.smpp_password,
                        window=64)
    before = _count(stack)
    try:
        box.start()
        lock, next_i = threading.Lock(), [0]

        def sender():
            while True:
                with lock:
                    i = next_i[0]
                    next_i[0] += 1
                if i >= n:
                    return
                box.send(f"139{offset + i:08d}", "【示例公积金】您的提取申请已受理。", dlrs.port,
                         str(i))

        started = time.monotonic()
        threads = [threading.Thread(target=sender) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sendsms = time.monotonic() - started
        _wait(lambda: _count(stack) - before >= n, 300)
        arrived = time.monotonic() - started
    finally:
        box.stop()
        dlrs.close()
    return {"kannel_sendsms": {"messages": n, "seconds": round(sendsms, 3),
                               "per_second": round(n / sendsms)},
            "kannel_to_door": {"messages": _count(stack) - before, "seconds": round(arrived, 3),
                               "per_second": round(n / arrived)}}


def run_db(label: str, db_url: str | None, args, root: Path) -> dict:
    from sandbox.door_stack import DoorStack
    from sandbox.pytest_smsc import start_sim_smsc

    log_dir = root / f"logs-{label}"
    log_dir.mkdir(parents=True)
    smsc = start_sim_smsc(log_dir, latency=0.001)
    stack = DoorStack(root / label, log_dir, smsc.port, db_url=db_url, duplicate_window=0)
    try:
        stack.prepare()
        stack.start()
        out = {"database": label}
        cases = set(args.cases.split(","))
        if "rest" in cases:
            out.update(rest_case(stack, args.messages, args.batch, 10_000_000))
        if "smpp" in cases:
            out["smpp_w64"] = smpp_case(stack, args.messages, 64, 20_000_000)
        anchor = (kannel_case(stack, root / label, log_dir, args.kannel_messages, 30_000_000)
                  if "kannel" in cases else None)
        if anchor:
            out.update(anchor)
        return out
    finally:
        stack.stop()
        smsc.stop()


def main(args) -> int:
    root = Path(tempfile.mkdtemp(prefix="hotline-door-bench-"))
    load_before = os.getloadavg()
    runs = [run_db("sqlite", None, args, root)]
    if args.pg:
        from sandbox.postgres import PostgresServer

        server = PostgresServer.start()
        try:
            runs.append(run_db("postgresql", server.create_database("door_bench"), args, root))
        finally:
            server.stop(remove=True)
    result = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{platform.machine()} {platform.python_version()}",
              "messages": args.messages, "batch": args.batch, "cases": args.cases,
              "runs": runs,
              # The machine is shared: its load says how much of it the run had.
              "load_average_before": load_before, "load_average_after": os.getloadavg()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"{'database':<11} {'case':<16} {'messages':>8} {'seconds':>8} {'per second':>10}")
    for run in runs:
        for case, value in run.items():
            if isinstance(value, dict):
                print(f"{run['database']:<11} {case:<16} {value['messages']:>8} "
                      f"{value['seconds']:>8} {value['per_second'] or '-':>10}")
    print(f"raw results: {args.out}")
    return 0
