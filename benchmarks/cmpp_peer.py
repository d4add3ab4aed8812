"""The CMPP half of ``hotline bench sms``, and its lean ISMG peer.

The peer (``python -m benchmarks.cmpp_peer serve --port P --latency S``) speaks CMPP
3.0: it accepts a CONNECT (answering with a proper AuthenticatorISMG), answers the
SUBMITs of each read together ``latency`` seconds later, each with a fresh Msg_Id,
and one more ``latency`` later sends their DELIVRD status reports in one write, as
the SMPP bench peer does. It parses the SUBMIT at fixed offsets with ``struct`` so
that, sharing the 2-core machine with the code under test, it costs little CPU;
the Node ISMG (sandbox/carriers/ismg.js) is the independent peer for the tests.

The cases: CMPP 3.0 at 20 ms with the specification's window of 16, on one
connection (its ceiling is 16 / 20 ms = 800 messages a second) and on eight,
each rate with the CPU seconds the gateway's process spent per 1,000 messages.
"""
from __future__ import annotations

import argparse
import hashlib
import struct
import subprocess
import sys
import time

from twisted.internet import protocol

HEADER = struct.Struct(">LLL")
CONNECT, SUBMIT, DELIVER, ACTIVE_TEST, TERMINATE = 0x01, 0x04, 0x05, 0x08, 0x02
RESP = 0x80000000
SECRET = b"bench"
SP_ID = "901234"
# SUBMIT 3.0: Dest_terminal_Id (32) after the fixed fields; then its type, Msg_Length, content.
_DEST_AT = 129


def frame(command: int, seq: int, body: bytes = b"") -> bytes:
    return HEADER.pack(12 + len(body), command, seq) + body


def report_body(msg_id: bytes, dest: bytes, seq: int) -> bytes:
    stamp = time.strftime("%y%m%d%H%M").encode()
    content = msg_id + b"DELIVRD" + stamp + stamp + dest + struct.pack(">L", seq)
    return (msg_id + b"1069012329".ljust(21, b"\0") + bytes(10) + bytes([0, 0, 0]) + dest
            + bytes([0, 1, len(content)]) + content + bytes(20))


class LeanIsmg(protocol.Protocol):
    """One SP connection: CONNECT, SUBMITs with latency, reports."""

    def __init__(self, factory):
        self.f = factory
        self.buf = bytearray()
        self.seq = 0
        self.reports: list = []
        self.report_call = None

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)

    def dataReceived(self, data: bytes) -> None:
        read_at = self.f.reactor.seconds()
        self.buf += data
        answers = []
        while len(self.buf) >= 12:
            length, command, seq = HEADER.unpack_from(self.buf)
            if len(self.buf) < length:
                break
            body = bytes(self.buf[12:length])
            del self.buf[:length]
            self.handle(command, seq, body, answers)
        if answers:
            if self.f.latency:
                # The latency runs from the read, not from the end of this parse: the ISMG's
                # own work is part of its 20 ms, as a real gateway's is.
                due = read_at + self.f.latency - self.f.reactor.seconds()
                self.f.reactor.callLater(max(due, 0.0), self.answer, answers)
            else:
                self.answer(answers)

    def handle(self, command: int, seq: int, body: bytes, answers: list) -> None:
        if command == CONNECT:
            auth = body[6:22]
            status = struct.pack(">L", 0)
            ismg = hashlib.md5(status + auth + SECRET).digest()
            self.transport.write(frame(CONNECT | RESP, seq, status + ismg + b"\x30"))
        elif command == SUBMIT:
            self.f.count += 1
            msg_id = struct.pack(">Q", self.f.count)
            answers.append((seq, msg_id, body[_DEST_AT:_DEST_AT + 32]))
        elif command == ACTIVE_TEST:
            self.transport.write(frame(ACTIVE_TEST | RESP, seq, b"\0"))
        elif command == TERMINATE:
            self.transport.write(frame(TERMINATE | RESP, seq))
            self.transport.loseConnection()

    def answer(self, answers: list) -> None:
        if not self.transport.connected:
            return
        self.transport.write(b"".join(frame(SUBMIT | RESP, seq, msg_id + bytes(4))
                                      for seq, msg_id, _ in answers))
        self.reports.extend(answers)
        if self.report_call is None:
            self.report_call = self.f.reactor.callLater(self.f.latency, self.send_reports)

    def send_reports(self) -> None:
        self.report_call = None
        reports, self.reports = self.reports, []
        if not self.transport.connected:
            return
        out = []
        for _seq, msg_id, dest in reports:
            self.seq += 1
            out.append(frame(DELIVER, self.seq, report_body(msg_id, dest, self.seq)))
        self.transport.write(b"".join(out))


class LeanIsmgFactory(protocol.Factory):
    def __init__(self, reactor, latency: float):
        self.reactor, self.latency, self.count = reactor, latency, 0

    def buildProtocol(self, addr):
        return LeanIsmg(self)


def serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cmpp_peer serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    # select() sleeps to the microsecond; epoll rounds every wait up to the next
    # millisecond, so answers due at 20 ms went out at 20-21 ms (0.5-1 ms late on average:
    # a few percent off one connection's rate). Never early either way. Linux also lets a
    # sleep overrun by the thread's timer slack (50 us by default): set to its least, so
    # that the simulated latency is 20 ms and not 20.05-20.1.
    _least_timer_slack()
    if "twisted.internet.reactor" not in sys.modules:
        from twisted.internet import selectreactor

        selectreactor.install()
    from twisted.internet import reactor

    from common import heap

    heap.settle()
    reactor.listenTCP(args.port, LeanIsmgFactory(reactor, args.latency), interface="127.0.0.1")
    print("ready", flush=True)
    reactor.run()
    return 0


def _least_timer_slack() -> None:
    import ctypes

    PR_SET_TIMERSLACK = 29
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the default slack stays


class LeanPeer:
    """The LeanIsmg child process."""

    def __init__(self, latency: float):
        from sandbox.ports import free_port

        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.cmpp_peer", "serve",
                                      "--port", str(self.port), "--latency", str(latency)],
                                     stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the bench ISMG did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def cmpp_config(port: int, window: int, binds: int):
    from sms.config import SmscConfig

    return SmscConfig(name="ismg", endpoint=f"tcp:host=127.0.0.1:port={port}",
                      system_id=SP_ID, password=SECRET.decode(), system_type="",
                      bind_mode="transceiver", binds=binds, window=window, throughput=0.0,
                      response_timeout=10.0, enquire_link=30.0, prefixes=(),
                      source_addr="1069012329", reconnect_min=0.2, reconnect_max=2.0,
                      protocol="cmpp3")


#: (connections, window, messages) at 20 ms; ten to twelve seconds each at the targets, so
#: that the first commit and the last reports' 20 ms (about 30 ms in all) weigh 0.3 %.
CASES = ((1, 16, 9600), (8, 16, 48000))
LATENCY = 0.02


async def bench_cmpp(reactor, args, workdir) -> dict:
    from benchmarks.smpp_peer import _case_numbers, _median_run, run_case

    repeat = args.repeat or (1 if args.quick else 3)
    cases = []
    peer = LeanPeer(LATENCY)
    try:
        for binds, window, n in CASES:
            n = args.messages or (n // 4 if args.quick else n)
            runs = []
            for _ in range(repeat):
                url = f"sqlite:///{workdir / f'c{next(_case_numbers)}.db'}"
                runs.append(await run_case(reactor, url, peer.port, window, 1, n, binds=binds,
                                           config=cmpp_config(peer.port, window, binds)))
            case = _median_run(runs)
            case.update(database="sqlite", latency_ms=LATENCY * 1000, protocol="cmpp3",
                        per_connection_per_s=round(case["end_to_end_per_s"] / binds, 1),
                        ceiling_per_connection=round(window / LATENCY))
            cases.append(case)
            print(f"CMPP 3.0 {binds} connection(s), window {window}, 20 ms: n={n} "
                  f"submitted {case['submitted_per_s']}/s, end to end "
                  f"{case['end_to_end_per_s']}/s ({case['per_connection_per_s']}/s per "
                  f"connection; ceiling {case['ceiling_per_connection']}), "
                  f"{case['cpu_s_per_1000']} CPU s per 1,000 "
                  f"(runs {case['runs_end_to_end_per_s']})", flush=True)
    finally:
        peer.stop()
    return {"cmpp": {"cases": cases}}


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    sys.exit(serve(sys.argv[2:]))
