"""The IVR bench's light callers (benchmarks/rtp_callers.py): answers and BYEs read off SIP,
and every caller's RTP sent on one timer, on time and in order."""
from __future__ import annotations

from twisted.internet.task import Clock

from benchmarks.rtp_callers import SipDialogs, StreamCallers

OK_TO_INVITE = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5061\r\nCall-ID: 7-1@127.0.0.1\r\n"
                b"CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\r\n"
                b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                b"m=audio 10042 RTP/AVP 0 101\r\n")


class Sent:
    """A socket that keeps what is sent, or is full."""

    def __init__(self, full: bool = False):
        self.packets: list[tuple[bytes, tuple[str, int]]] = []
        self.full = full

    def sendto(self, packet: bytes, address: tuple[str, int]) -> int:
        if self.full:
            raise BlockingIOError
        self.packets.append((packet, address))
        return len(packet)


def dialogs():
    seen: list[tuple] = []
    d = SipDialogs(5060, lambda call_id, to: seen.append(("answered", call_id, to)),
                   lambda call_id: seen.append(("ended", call_id)))
    return d, seen


def test_asterisks_answer_gives_the_calls_rtp_address_and_a_bye_either_way_ends_it():
    """A 200 OK to an INVITE from the SIP port names the call's RTP address; a 200 OK to
    anything else names nothing; a BYE from either side (compact Call-ID too) ends it."""
    d, seen = dialogs()
    d.payload(0.0, 5060, 5061, OK_TO_INVITE)
    d.payload(0.0, 5060, 5061, b"SIP/2.0 200 OK\r\nCall-ID: 7-1@127.0.0.1\r\nCSeq: 2 BYE\r\n\r\n")
    d.payload(0.0, 5061, 5060, OK_TO_INVITE)  # the caller's side never answers with media
    d.payload(0.0, 5060, 5061, b"BYE sip:c@127.0.0.1 SIP/2.0\r\ni: 7-1@127.0.0.1\r\n\r\n")
    d.payload(0.0, 5061, 5060, b"BYE sip:s@127.0.0.1 SIP/2.0\r\nCall-ID: 8-1@127.0.0.1\r\n\r\n")
    assert seen == [("answered", "7-1@127.0.0.1", ("127.0.0.1", 10042)),
                    ("ended", "7-1@127.0.0.1"), ("ended", "8-1@127.0.0.1")]


def streams(packets_per_caller: int, sock: Sent):
    clock = Clock()
    callers = (iter([bytes([c, i]) for i in range(packets_per_caller)]) for c in range(2))
    s = StreamCallers(clock, callers, sock)  # type: ignore[arg-type]
    s.start()
    return clock, s


def test_each_answered_call_gets_its_own_caller_one_packet_every_20_ms():
    """Two answered calls each get the next caller's packets, in order, one per tick, to
    their own RTP address; a retransmitted answer changes nothing."""
    sock = Sent()
    clock, s = streams(100, sock)
    s.answered("a", ("127.0.0.1", 10000))
    s.answered("b", ("127.0.0.1", 10002))
    s.answered("a", ("127.0.0.1", 10000))
    for _ in range(3):
        clock.advance(0.02)
    to_a = [p for p, to in sock.packets if to[1] == 10000]
    to_b = [p for p, to in sock.packets if to[1] == 10002]
    assert to_a == [bytes([0, i]) for i in range(4)]
    assert to_b == [bytes([1, i]) for i in range(4)]


def test_a_late_tick_sends_the_backlog_and_the_end_of_a_call_stops_its_stream():
    """A tick 100 ms late sends the five packets due at once; after the BYE nothing more
    goes to that call, and a script that runs out ends its stream."""
    sock = Sent()
    clock, s = streams(8, sock)
    s.answered("a", ("127.0.0.1", 10000))
    clock.advance(0.1)
    assert len(sock.packets) == 6 and s.most_behind == 6
    s.ended("a")
    clock.advance(0.02)
    assert len(sock.packets) == 6
    s.answered("b", ("127.0.0.1", 10002))
    for _ in range(20):
        clock.advance(0.02)
    assert [p for p, _ in sock.packets[6:]] == [bytes([1, i]) for i in range(8)]
    assert s.streams == {} and s.summary()["calls_streamed"] == 2


def test_a_full_socket_drops_packets_as_a_network_would_and_counts_them():
    """When the socket's buffer is full the packet is dropped and counted; the stream
    goes on in time rather than falling behind."""
    clock, s = streams(10, Sent(full=True))
    s.answered("a", ("127.0.0.1", 10000))
    clock.advance(0.02)
    assert s.packets_dropped == 2 and s.packets_sent == 0
