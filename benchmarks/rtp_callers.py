"""Callers light enough for 500 at once on two cores: sipp holds each SIP dialog and plays
no media, and this module sends every caller's RTP from one socket on one timer, in a
process of its own (``python -m benchmarks.rtp_callers``) so that the bench's measuring
process is never busy sending.

sipp plays a pcap on a thread of its own per call: 500 threads each waking every 20 ms
left the machine's run queue at 335 and measured sipp more than the hotline. A phone
cannot simply go quiet instead (silence suppression): Asterisk picks up a queued AsyncAGI
command when a frame wakes the channel, or after 100 ms without one, so a silent caller
slows every prompt step. Here each answered call gets the same stream a phone sends
(``sandbox.sipp.caller_packets``: 20 ms of u-law silence a packet and RFC 4733 keys), for
a caller of its own (its own ID, so calls never queue behind each other's account), sent
to the RTP address in Asterisk's answer. Answers and BYEs are read off loopback on the
SIP port (``LoopbackCapture``), so sipp needs no change and Asterisk no privilege.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import signal
import socket
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from twisted.internet import task
from twisted.internet.selectreactor import SelectReactor

from benchmarks.loopback_capture import UDP, LoopbackCapture

TICK = 0.02  # one RTP packet of 20 ms


def _header(lines: list[str], *names: str) -> str:
    wanted = tuple(n.lower() + ":" for n in names)
    for line in lines:
        if line.lower().startswith(wanted):
            return line.split(":", 1)[1].strip()
    return ""


class SipDialogs:
    """SIP on the SIP port: Asterisk's 200 OK to an INVITE gives ``answered(call_id,
    (host, rtp port))``, a BYE either way ``ended(call_id)``. Runs on the capture thread;
    the callbacks are expected to hand over to the reactor."""

    def __init__(self, sip_port: int, answered, ended):
        self.port, self.answered, self.ended = sip_port, answered, ended

    def capture(self) -> LoopbackCapture:
        return LoopbackCapture(UDP, self.port, "sip-dialogs", self.payload)

    def payload(self, at: float, sport: int, dport: int, payload: bytes) -> None:
        head, _, body = payload.decode("utf-8", errors="replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        call_id = _header(lines, "Call-ID", "i")
        if not call_id:
            return
        if (sport == self.port and lines[0].startswith("SIP/2.0 200")
                and "INVITE" in _header(lines, "CSeq")):
            port = re.search(r"^m=audio (\d+) ", body, re.M)
            host = re.search(r"^c=IN IP4 (\S+)", body, re.M)
            if port and host:
                self.answered(call_id, (host.group(1), int(port.group(1))))
        elif lines[0].startswith("BYE "):
            self.ended(call_id)


@dataclass
class _Stream:
    destination: tuple[str, int]
    packets: Iterator[bytes]
    started: float
    sent: int = 0


def rtp_socket(address: str = "127.0.0.1") -> socket.socket:
    """The one socket every caller's RTP leaves from (Asterisk learns it per call)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    sock.setblocking(False)
    return sock


@dataclass
class StreamCallers:
    """One caller's RTP stream per answered call, all from one UDP socket on one
    ``LoopingCall``: each tick sends every stream the packets now due (a late tick sends
    its backlog at once, as a jittery network would deliver it)."""

    clock: object
    callers: Iterator[Iterator[bytes]]  # the next caller's packets, per answered call
    sock: socket.socket  # UDP, non-blocking
    streams: dict[str, _Stream] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    packets_sent: int = 0
    packets_dropped: int = 0  # the socket's buffer was full
    most_behind: int = 0  # the most packets one stream was sent at once

    def __post_init__(self) -> None:
        self.loop = task.LoopingCall(self._tick)
        self.loop.clock = self.clock

    def start(self) -> None:
        self.loop.start(TICK, now=False)

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()

    def answered(self, call_id: str, destination: tuple[str, int]) -> None:
        if call_id in self.streams or call_id in self.finished:
            return  # a retransmitted 200 OK
        packets = next(self.callers, None)
        if packets is not None:  # else more calls answered than callers scripted
            self.streams[call_id] = _Stream(destination, packets, self.clock.seconds())

    def ended(self, call_id: str) -> None:
        self.streams.pop(call_id, None)
        self.finished.add(call_id)

    def _tick(self) -> None:
        now = self.clock.seconds()
        for call_id, stream in list(self.streams.items()):
            due = int((now - stream.started) / TICK) + 1 - stream.sent
            self.most_behind = max(self.most_behind, due)
            for _ in range(due):
                packet = next(stream.packets, None)
                if packet is None:  # the caller's script is over; the call may go on
                    del self.streams[call_id]
                    self.finished.add(call_id)
                    break
                try:
                    self.sock.sendto(packet, stream.destination)
                    self.packets_sent += 1
                except BlockingIOError:
                    self.packets_dropped += 1
                stream.sent += 1

    def summary(self) -> dict:
        return {"calls_streamed": len(self.finished) + len(self.streams),
                "packets_sent": self.packets_sent, "packets_dropped": self.packets_dropped,
                "most_packets_behind_at_once": self.most_behind}


def stream_callers(core_db: Path, calls: int, listen_ms: int, tail_ms: int
                   ) -> Iterator[Iterator[bytes]]:
    """Each answered call's RTP, for persons of their own: the demo core's normal,
    unlocked accounts after the documented identities, keying ID (X as *) and the demo
    password through the balance walk (``sandbox.stack.balance_call``)."""
    from core_client.demo_data import DEMO_PASSWORD
    from sandbox.sipp import caller_packets
    from sandbox.stack import balance_call

    with sqlite3.connect(core_db) as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT p.ZJHM FROM person p JOIN account a ON a.person_id = p.id "
            "WHERE a.GRZHZT = 'normal' AND a.SDJZSJ IS NULL AND p.id > 6 ORDER BY p.id "
            "LIMIT ?", (calls,))]
    if len(ids) < calls:
        raise SystemExit(f"the demo core has {len(ids)} usable persons for {calls} calls")
    for id_number in ids:
        presses = balance_call(id_number.replace("X", "*"), DEMO_PASSWORD, listen_ms=listen_ms)
        yield caller_packets(presses, tail_ms, ssrc=random.getrandbits(32))


def main(argv: list[str] | None = None) -> int:
    """Stream callers for the calls answered on ``--sip-port`` until SIGTERM; prints
    ``ready`` once listening, then one JSON line of what was sent."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.rtp_callers")
    p.add_argument("--sip-port", type=int, required=True)
    p.add_argument("--core-db", type=Path, required=True)
    p.add_argument("--calls", type=int, required=True)
    p.add_argument("--listen-ms", type=int, required=True)
    p.add_argument("--tail-ms", type=int, required=True)
    args = p.parse_args(argv)
    reactor = SelectReactor()
    sock = rtp_socket()
    streams = StreamCallers(reactor, stream_callers(args.core_db, args.calls, args.listen_ms,
                                                    args.tail_ms), sock)
    capture = SipDialogs(
        args.sip_port,
        lambda call_id, to: reactor.callFromThread(streams.answered, call_id, to),
        lambda call_id: reactor.callFromThread(streams.ended, call_id)).capture()
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    capture.start()
    reactor.callWhenRunning(streams.start)
    reactor.callWhenRunning(lambda: print("ready", flush=True))
    reactor.run(installSignalHandlers=False)
    capture.stop()
    streams.stop()
    sock.close()
    print(json.dumps(streams.summary()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
