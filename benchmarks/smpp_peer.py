"""The SMPP half of ``hotline bench sms``, and its lean SMSC peer.

The peer (``python -m benchmarks.smpp_peer serve --port P --latency S``) answers binds,
answers each submit_sm after ``latency`` seconds with a decimal message id (the
submits that came in one read are answered together, by one timer) and one more
``latency`` later sends its DELIVRD receipt (text and TLVs; the receipts due
together go out in one write, as an SMSC batches them). It parses only what it needs with
``struct`` so that, sharing this 2-core machine with the code under test, it
costs little CPU. ``--record FILE`` appends one line per submit_sm received
(destination and a hash of the body), which the crash test uses to count what
the SMSC really got. sandbox/smsc_sim.py is the fault-injecting peer for tests.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from twisted.internet import protocol

from benchmarks.sms_bench import _outbox_config, _sleep

HEADER = struct.Struct(">LLLL")
BIND_TRX, BIND_TX, BIND_RX = 0x09, 0x02, 0x01
SUBMIT_SM, DELIVER_SM, ENQUIRE_LINK, UNBIND = 0x04, 0x05, 0x15, 0x06
RESP = 0x80000000


def _cstr(buf: bytes, pos: int) -> tuple[bytes, int]:
    end = buf.index(b"\0", pos)
    return buf[pos:end], end + 1


def parse_submit(body: bytes) -> tuple[bytes, bytes, bytes]:
    """(source, destination, short_message) of a submit_sm body."""
    _, pos = _cstr(body, 0)  # service_type
    pos += 2
    source, pos = _cstr(body, pos)
    pos += 2
    dest, pos = _cstr(body, pos)
    pos += 3  # esm_class, protocol_id, priority_flag
    _, pos = _cstr(body, pos)  # schedule_delivery_time
    _, pos = _cstr(body, pos)  # validity_period
    pos += 4  # registered_delivery, replace_if_present, data_coding, sm_default_msg_id
    length = body[pos]
    return source, dest, body[pos + 1:pos + 1 + length]


def pdu(command: int, seq: int, body: bytes = b"", status: int = 0) -> bytes:
    return HEADER.pack(16 + len(body), command, status, seq) + body


def receipt_body(source: bytes, dest: bytes, message_id: bytes) -> bytes:
    stamp = time.strftime("%y%m%d%H%M").encode()
    text = (b"id:" + message_id + b" sub:001 dlvrd:001 submit date:" + stamp +
            b" done date:" + stamp + b" stat:DELIVRD err:000 text:")
    return (b"\0" + bytes([1, 1]) + dest + b"\0" + bytes([0, 0]) + source + b"\0" +
            bytes([4, 0, 0]) + b"\0\0" + bytes([0, 0, 0, 0]) + bytes([len(text)]) + text +
            struct.pack(">HH", 0x001E, len(message_id) + 1) + message_id + b"\0" +
            struct.pack(">HHB", 0x0427, 1, 2))


class LeanSmsc(protocol.Protocol):
    """One ESME connection: binds, submits with latency, receipts."""

    def __init__(self, factory):
        self.f = factory
        self.buf = bytearray()
        self.seq = 0
        self.receipts: list = []
        self.receipt_call = None

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)  # no Nagle stalls on small PDUs

    def dataReceived(self, data: bytes) -> None:
        self.buf += data
        answers = []  # the submits of this read, answered together one latency from now
        while len(self.buf) >= 16:
            length, command, _status, seq = HEADER.unpack_from(self.buf)
            if len(self.buf) < length:
                break
            body = bytes(self.buf[16:length])
            del self.buf[:length]
            self.handle(command, seq, body, answers)
        if answers:
            if self.f.latency:
                self.f.reactor.callLater(self.f.latency, self.answer, answers)
            else:
                self.answer(answers)

    def handle(self, command: int, seq: int, body: bytes, answers: list) -> None:
        if command in (BIND_TRX, BIND_TX, BIND_RX):
            self.transport.write(pdu(command | RESP, seq, b"leansmsc\0"))
        elif command == SUBMIT_SM:
            source, dest, message = parse_submit(body)
            self.f.count += 1
            message_id = str(self.f.count).encode()
            if self.f.record is not None:
                digest = hashlib.sha1(message).hexdigest()[:16]
                self.f.record.write(f"{dest.decode()} {digest}\n")
            answers.append((seq, source, dest, message_id))
        elif command == ENQUIRE_LINK:
            self.transport.write(pdu(ENQUIRE_LINK | RESP, seq))
        elif command == UNBIND:
            self.transport.write(pdu(UNBIND | RESP, seq))
            self.transport.loseConnection()

    def answer(self, answers: list) -> None:
        if not self.transport.connected:
            return
        self.transport.write(b"".join(pdu(SUBMIT_SM | RESP, seq, message_id + b"\0")
                                      for seq, _, _, message_id in answers))
        self.receipts.extend(answers)
        if self.receipt_call is None:
            # The handset's acknowledgement comes back one more latency later, as in a network.
            self.receipt_call = self.f.reactor.callLater(self.f.latency, self.send_receipts)

    def send_receipts(self) -> None:
        self.receipt_call = None
        receipts, self.receipts = self.receipts, []
        if not self.transport.connected:
            return
        out = []
        for _seq, source, dest, message_id in receipts:
            self.seq += 1
            out.append(pdu(DELIVER_SM, self.seq, receipt_body(source, dest, message_id)))
        self.transport.write(b"".join(out))


class LeanSmscFactory(protocol.Factory):
    def __init__(self, reactor, latency: float, record_path: str | None):
        self.reactor, self.latency, self.count = reactor, latency, 0
        self.record = open(record_path, "a", buffering=1) if record_path else None

    def buildProtocol(self, addr):
        return LeanSmsc(self)


def serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.smpp_peer serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--record")
    args = parser.parse_args(argv)
    from twisted.internet import reactor

    from common import heap

    heap.settle()
    reactor.listenTCP(args.port, LeanSmscFactory(reactor, args.latency, args.record),
                      interface="127.0.0.1")
    print("ready", flush=True)
    reactor.run()
    return 0



# -- the throughput bench ---------------------------------------------------------------------

WINDOWS = (1, 10, 64)
LATENCIES = (0.0, 0.02)
SIZES = (1, 3)
TEXT_1 = "【示例公积金】您尾号0123的公积金账户于2026-11-05汇缴入账1,200.00元，当前余额35,678.90元。"
TEXT_3 = TEXT_1 * 3


def _messages(window: int, latency: float, parts: int, quick: bool) -> int:
    """Enough messages for about four seconds at the best rate this setting allows."""
    rate = min(3000.0, window / latency) if latency else min(3000.0, 400.0 * window)
    n = int(rate * (1.0 if quick else 4.0)) // parts
    return max(50, min(n, 12000))


class _LeanPeer:
    """The LeanSmsc child process for one latency."""

    def __init__(self, latency: float, record: str | None = None):
        from sandbox.ports import free_port

        self.port = free_port()
        cmd = [sys.executable, "-m", "benchmarks.smpp_peer", "serve", "--port", str(self.port),
               "--latency", str(latency)] + (["--record", record] if record else [])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the bench SMSC did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def smsc_config(port: int, window: int, name: str = "bench", binds: int = 1):
    from sms.config import SmscConfig

    return SmscConfig(name=name, endpoint=f"tcp:host=127.0.0.1:port={port}",
                      system_id="hotline", password="bench", system_type="",
                      bind_mode="transceiver", binds=binds, window=window, throughput=0.0,
                      response_timeout=10.0, enquire_link=30.0, prefixes=(),
                      source_addr="12329", reconnect_min=0.2, reconnect_max=2.0)


def smpplib_baseline(port: int, n: int) -> dict:
    """smpplib's own blocking client: one submit_sm, wait for its response, the next."""
    import smpplib.client
    import smpplib.consts

    client = smpplib.client.Client("127.0.0.1", port, timeout=10)
    answered = []
    client.set_message_sent_handler(lambda pdu: answered.append(pdu.sequence))
    client.set_message_received_handler(lambda pdu: None)
    client.connect()
    import socket

    client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # fair: no Nagle
    client.bind_transceiver(system_id="hotline", password="bench")
    body = TEXT_1.encode("utf-16-be")
    t0 = time.perf_counter()
    for i in range(n):
        client.send_message(source_addr="12329", destination_addr=f"1390{i:07d}",
                            short_message=body, data_coding=8, registered_delivery=1)
        while len(answered) <= i:
            client.read_once()
    seconds = time.perf_counter() - t0
    client.unbind()
    client.disconnect()
    return {"messages": n, "seconds": round(seconds, 3), "submitted_per_s": round(n / seconds, 1)}


def sending_path(reactor, db, config, max_inflight: int, committed, instance: str = "hotline-1"):
    """One daemon's sending path on ``db``, as measured: outbox, send journal, SMPP router
    (``config``) and dispatcher; ``committed(_)`` runs as each receipt is committed.
    Returns (outbox, router, dispatcher), none started."""
    from sms.carrier import text
    from sms.outbox.dispatcher import Dispatcher
    from sms.outbox.outbox import Outbox
    from sms.carrier.router import PermanentError, SmppRouter, SubmitPart, TemporaryError
    from sms.carrier.send_journal import SendJournal
    from sms.smpp.protocol import LinkLost, NeverSent, SmppTimeout, Throttled

    box = Outbox(db, reactor, _outbox_config(), encode=text.encode, instance=instance,
                 batch_turns=True)  # as the daemon's (sms.service)

    def on_receipt(r):
        done = r.done_at.timestamp() if r.done_at is not None else None
        return box.receipt(r.message_id, r.smsc, r.state, r.error, done).addCallback(committed)

    # The daemon's send journal is part of the measured path.
    journal = SendJournal(Path(tempfile.mkdtemp(prefix="hotline-bench-journal-")), instance)
    router = SmppRouter([config], reactor, on_receipt=on_receipt,
                        on_mo=lambda mo: None, journal=journal)

    def part(m, p):
        return SubmitPart(m.destination, "12329", p.payload, p.data_coding, p.esm_class)

    disp = Dispatcher(box, router, reactor, make_part=part, temporary=(TemporaryError,),
                      permanent=(PermanentError,), doubtful=(SmppTimeout, LinkLost),
                      unsent=(NeverSent,), throttled=(Throttled,), batch=1000,
                      max_inflight=max_inflight, journal=journal)
    return box, router, disp


def encoded_parts(parts: int) -> tuple:
    """The benchmark's message (1 or 3 parts) as the outbox stores it."""
    from sms.carrier import text
    from sms.outbox.records import EncodedPart

    encoded = text.encode(TEXT_3 if parts == 3 else TEXT_1, max_parts=3, reference=7)
    assert encoded.part_count == parts
    return tuple(EncodedPart(p, encoded.data_coding, encoded.esm_class) for p in encoded.parts)


def all_fired(ds: list):
    """Fires when every Deferred in ``ds`` has succeeded (or with the first failure): what
    ``gatherResults`` waits for, without keeping each result in a list, so that the
    harness's own share of the measured CPU stays small with 24,000 accepts."""
    from twisted.internet.defer import Deferred

    done: Deferred = Deferred()
    left = [len(ds)]

    def one(_):
        left[0] -= 1
        if not left[0] and not done.called:
            done.callback(None)

    def failed(failure):
        if not done.called:
            done.errback(failure)

    for d in ds:
        d.addCallbacks(one, failed)
    if not ds:
        done.callback(None)
    return done


async def run_case(reactor, url: str, port: int, window: int, parts: int, n: int,
                   max_inflight: int | None = None, binds: int = 1,
                   password: str = "bench", config=None) -> dict:
    """One case; ``config`` is the [smsc] to send through (default: SMPP to ``port``)."""
    from sms.outbox.records import Outgoing
    from storage.db import Database

    max_inflight = max_inflight or 2 * window * binds
    db = Database(url, reactor, 4)
    if not db.is_sqlite:
        from storage.models import load_all_tables

        load_all_tables().drop_all(db.engine)
    db.create_all()

    # Receipts committed, counted here so that waiting costs no queries; the time the
    # last one was committed is taken in its callback, exactly.
    delivered, ended = [], []

    def committed(_):
        delivered.append(1)
        if len(delivered) == n * parts:  # under faults a redelivered receipt may add more
            ended.append(time.perf_counter())

    config = config or replace(smsc_config(port, window, binds=binds), password=password)
    box, router, disp = sending_path(reactor, db, config, max_inflight, committed)
    router.startService()
    while router.bound_count() < binds:
        await _sleep(reactor, 0.05)
    enc = encoded_parts(parts)
    try:
        # The dispatcher runs before the first message arrives, as in the daemon: sending
        # overlaps accepting, and every rate is counted from the first accept.
        await disp.startService()
        t0, cpu0 = time.perf_counter(), time.process_time()
        await all_fired([box.accept(Outgoing("demo", "bulk", "bench", {}, "", f"1390{i:07d}",
                                                 f"b{i}", enc)) for i in range(n)])
        t_accept = time.perf_counter()
        t_submitted = None
        while not ended:
            if t_submitted is None and disp.submitted >= n * parts:
                t_submitted = time.perf_counter()
            if time.perf_counter() - t_accept > 120:
                raise RuntimeError(f"bench case stalled: {await box.counts()}")
            await _sleep(reactor, 0.01)  # the submitted time, to 10 ms
        t_end, cpu = ended[0], time.process_time() - cpu0
        counts = await box.counts()
        while counts != {"delivered": n}:
            # Under faults receipts are redelivered after a cut: the count of committed
            # receipts can reach n before every message has its own.
            if time.perf_counter() - t_end > 120:
                raise RuntimeError(f"bench case ended with {counts}, not {n} delivered")
            await _sleep(reactor, 0.01)
            counts = await box.counts()
            t_end = time.perf_counter() if counts == {"delivered": n} else t_end
        t_submitted = min(t_submitted or t_end, t_end)
        doubtful = await box.counter("possible_duplicates")
    finally:
        await disp.stopService()
        await router.stopService()
        db.stopService()
    return {"messages": n, "parts": parts, "binds": binds, "window": window,
            "max_inflight": max_inflight,
            "accepted_per_s": round(n / (t_accept - t0), 1),
            "submitted_per_s": round(n / (t_submitted - t0), 1),
            "end_to_end_per_s": round(n / (t_end - t0), 1),
            "parts_per_s": round(n * parts / (t_end - t0), 1),
            # the gateway's process (outbox, dispatcher, router, database threads), not the peer
            "cpu_s_per_1000": round(cpu / n * 1000, 3),
            "possible_duplicates": doubtful}


FAULTS = dict(throttle_rate=0.05, queue_full_rate=0.02, cut_every=7.0)


async def bench_faults(reactor, args, workdir: Path) -> dict:
    """The same path against smsc_sim, clean and with faults (5 % ESME_RTHROTTLED, 2 %
    ESME_RMSGQFUL, a link cut every 7 s), at 20 ms and window 64, one part, SQLite."""
    from sandbox.pytest_smsc import start_sim_smsc

    n = args.messages or (10000 if args.quick else 30000)
    cases = []
    for name, faults in (("clean", {}), ("faults", FAULTS)):
        sim = start_sim_smsc(workdir, latency=0.02, password="bench", **faults)
        try:
            case = await run_case(reactor, f"sqlite:///{workdir / f'f-{name}.db'}", sim.port,
                                  64, 1, n, password="bench")
            stats = sim.stats()
        finally:
            sim.stop()
        case.update(case=name, latency_ms=20.0, database="sqlite", faults=faults,
                    smsc={k: stats.get(k, 0) for k in ("throttled", "queue_full", "cuts",
                                                       "duplicates", "binds")})
        cases.append(case)
        print(f"{name:<7} n={n} submitted {case['submitted_per_s']}/s  end-to-end "
              f"{case['end_to_end_per_s']}/s  SMSC {case['smsc']}  counted possible "
              f"duplicates {case['possible_duplicates']}", flush=True)
    return {"faults": {"cases": cases}}


def _pg_url() -> str | None:
    return os.environ.get("HOTLINE_BENCH_PG_URL") or None


async def bench_throughput(reactor, args, workdir: Path) -> dict:
    databases = [("sqlite", None)]
    if _pg_url():
        databases.append(("postgresql", _pg_url()))
    results: dict = {"cases": [], "baseline_smpplib": {}}
    repeat = args.repeat or (1 if args.quick else 3)
    for latency in LATENCIES:
        peer = _LeanPeer(latency)
        try:
            n = 100 if latency else 1000
            base = smpplib_baseline(peer.port, n if not args.quick else n // 2)
            base["latency_ms"] = latency * 1000
            results["baseline_smpplib"][f"{int(latency * 1000)}ms"] = base
            print(f"smpplib blocking client, {latency * 1000:.0f} ms: "
                  f"{base['submitted_per_s']} submit_sm/s", flush=True)
            for db_name, url in databases:
                settings = [(window, parts, 1, args.messages or _messages(
                    window, latency, parts, args.quick)) for parts in SIZES for window in WINDOWS]
                if latency:
                    # Beyond the matrix: two binds of window 64, where one bind's round
                    # trips no longer cap the rate, show what the outbox itself sustains.
                    settings.append((64, 1, 2, args.messages or (6000 if args.quick else 12000)))
                for window, parts, binds, n in settings:
                    runs = []
                    for _ in range(repeat):
                        case_url = url or f"sqlite:///{workdir / f'b{next(_case_numbers)}.db'}"
                        runs.append(await run_case(reactor, case_url, peer.port, window, parts,
                                                   n, binds=binds))
                    case = _median_run(runs)
                    case.update(database=db_name, latency_ms=latency * 1000)
                    results["cases"].append(case)
                    print(_row(case), flush=True)
        finally:
            peer.stop()
    return {"throughput": results}


_case_numbers = itertools.count()


def _median_run(runs: list[dict]) -> dict:
    """The run with the median end-to-end rate, and every run's rate (the machine is shared
    and noisy: one run can land on another tenant's burst)."""
    ordered = sorted(runs, key=lambda r: r["end_to_end_per_s"])
    case = dict(ordered[len(ordered) // 2])
    case["runs_end_to_end_per_s"] = [r["end_to_end_per_s"] for r in runs]
    return case


def _row(c: dict) -> str:
    return (f"{c['database']:<10} lat {c['latency_ms']:>4.0f} ms  {c['binds']} bind  "
            f"window {c['window']:>3}  "
            f"{c['parts']} part  n={c['messages']:<5} accepted {c['accepted_per_s']:>8}/s  "
            f"submitted {c['submitted_per_s']:>7}/s  "
            f"end-to-end {c['end_to_end_per_s']:>7}/s"
            + (f"  (runs {', '.join(str(r) for r in c['runs_end_to_end_per_s'])})"
               if len(c["runs_end_to_end_per_s"]) > 1 else ""))


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    sys.exit(serve(sys.argv[2:]))
