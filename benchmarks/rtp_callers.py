"""Callers light enough for 500 at once on two cores: sipp holds each SIP dialog and plays
no media, and this module sends every caller's RTP from one socket on one timer.

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

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from twisted.internet import task

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
