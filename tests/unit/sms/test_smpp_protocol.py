"""The SMPP protocol over StringTransport and Clock: matching, timeouts, nacks, keepalive, unbind."""
from __future__ import annotations

import struct

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from sms.smpp import codec
from sms.carrier.deliveries import PER_TURN as DELIVER_SLICE
from sms.smpp.protocol import (LinkLost, PermanentError, SmppProtocol, SmppTimeout,
                               TemporaryError, Throttled, error_for_status)


class Wire:
    """A protocol on a StringTransport, with helpers to read what it sent and answer it."""

    def __init__(self, **kw):
        self.clock = Clock()
        self.delivered: list = []
        self.proto = SmppProtocol(self.clock, response_timeout=5.0, enquire_link=30.0, **kw)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def sent(self) -> list:
        raw = self.transport.value()
        self.transport.clear()
        return [codec.decode(f) for f in codec.FrameSplitter().feed(raw)]

    def feed(self, raw: bytes) -> None:
        """Bytes arrive, then the reactor turns until the receipts read are all handled."""
        self.proto.dataReceived(raw)
        while len(self.proto._delivered):
            self.clock.advance(0)


def _results(d: Deferred) -> list:
    out: list = []
    d.addBoth(out.append)
    return out


def test_responses_match_requests_by_sequence_out_of_order():
    """Three submits answered in reverse order each get their own message id."""
    w = Wire()
    results = [_results(w.proto.submit_sm(source_addr="1", destination_addr=str(i),
                                          short_message=b"x")) for i in range(3)]
    seqs = [p.sequence for p in w.sent()]
    assert seqs == [1, 2, 3]
    for seq in reversed(seqs):
        w.feed(codec.encode("submit_sm_resp", seq, message_id=f"id{seq}"))
    assert [r[0] for r in results] == ["id1", "id2", "id3"]
    assert w.proto.pending_count == 0


def test_status_errors_are_typed():
    """THROTTLED/MSGQFUL -> Throttled, SYSERR -> TemporaryError, others -> PermanentError."""
    assert isinstance(error_for_status(0x58, "submit_sm"), Throttled)
    assert isinstance(error_for_status(0x14, "submit_sm"), Throttled)
    e = error_for_status(0x08, "submit_sm")
    assert isinstance(e, TemporaryError) and e.status == 0x08
    p = error_for_status(0x0B, "submit_sm")
    assert isinstance(p, PermanentError) and p.status == 0x0B
    w = Wire()
    r = _results(w.proto.submit_sm(source_addr="1", destination_addr="2", short_message=b"x"))
    w.feed(codec.encode("submit_sm_resp", 1, status=0x58, message_id=""))
    assert r[0].check(Throttled) and r[0].value.status == 0x58


def test_timeout_fails_request_and_late_response_is_ignored():
    """No response within the timeout: SmppTimeout; a response arriving later is dropped."""
    w = Wire()
    r = _results(w.proto.submit_sm(source_addr="1", destination_addr="2", short_message=b"x"))
    w.clock.advance(4.9)
    assert r == []
    w.clock.advance(0.2)
    assert r[0].check(SmppTimeout) and w.proto.pending_count == 0
    w.feed(codec.encode("submit_sm_resp", 1, message_id="late"))
    assert len(r) == 1


def test_generic_nack_fails_the_matching_request():
    """A generic_nack with the request's sequence fails it with the nack's status."""
    w = Wire()
    r = _results(w.proto.submit_sm(source_addr="1", destination_addr="2", short_message=b"x"))
    w.feed(codec.generic_nack(1, codec.ESME_RINVCMDLEN))
    assert r[0].check(PermanentError) and r[0].value.status == codec.ESME_RINVCMDLEN


def test_malformed_request_gets_generic_nack_and_link_survives():
    """A garbled deliver_sm is nacked with ESME_RINVMSGLEN; the next PDU is still handled."""
    w = Wire()
    w.feed(struct.pack(">LLLL", 20, 0x05, 0, 77) + b"\x00\x01\x01\x31")
    nack = w.sent()[0]
    assert (nack.command, nack.status, nack.sequence) == ("generic_nack", 0x01, 77)
    w.feed(codec.encode("enquire_link", 78))
    assert w.sent()[0].command == "enquire_link_resp"
    assert not w.transport.disconnecting


def test_unknown_command_gets_invcmdid():
    """An unknown command id is nacked with ESME_RINVCMDID."""
    w = Wire()
    w.feed(struct.pack(">LLLL", 16, 0x0000_0999, 0, 5))
    nack = w.sent()[0]
    assert (nack.command, nack.status) == ("generic_nack", codec.ESME_RINVCMDID)


def test_length_attack_drops_the_link():
    """A command_length of 1 GiB is a framing error: the connection is aborted."""
    w = Wire()
    w.feed(struct.pack(">L", 1 << 30) + b"\x00" * 12)
    assert w.transport.disconnecting or getattr(w.transport, "aborted", False) or \
        w.transport.disconnected


def test_enquire_link_answered():
    """An enquire_link from the SMSC is answered with enquire_link_resp, same sequence."""
    w = Wire()
    w.feed(codec.encode("enquire_link", 1234))
    resp = w.sent()[0]
    assert (resp.command, resp.sequence) == ("enquire_link_resp", 1234)


def test_enquire_link_sent_when_idle_and_link_dropped_when_unanswered():
    """After 30 s without traffic an enquire_link goes out; unanswered, the link is closed."""
    w = Wire()
    w.clock.advance(20)
    w.feed(codec.encode("enquire_link", 9))  # traffic resets the idle timer
    w.sent()
    w.clock.advance(20)
    assert w.sent() == []
    w.clock.advance(10)
    sent = w.sent()
    assert [p.command for p in sent] == ["enquire_link"]
    w.feed(codec.encode("enquire_link_resp", sent[0].sequence))
    w.clock.advance(30)
    again = w.sent()
    assert [p.command for p in again] == ["enquire_link"]
    w.clock.advance(5.1)
    assert w.transport.disconnecting


def test_deliver_sm_acknowledged_only_after_handler_fires():
    """deliver_sm_resp waits for the handler's Deferred: OK on success, RX_T_APPN on failure."""
    handled: list[Deferred] = []

    def handler(pdu):
        d = Deferred()
        handled.append(d)
        return d

    w = Wire(on_deliver=handler)
    for seq in (10, 11):
        w.feed(codec.encode("deliver_sm", seq, source_addr="1", destination_addr="2",
                            esm_class=4, short_message=b"id:1 stat:DELIVRD"))
    assert w.sent() == [] and len(handled) == 2
    handled[1].errback(Failure(RuntimeError("database down")))
    handled[0].callback(None)
    resps = w.sent()
    assert [(p.command, p.sequence, p.status) for p in resps] == [
        ("deliver_sm_resp", 11, codec.ESME_RX_T_APPN), ("deliver_sm_resp", 10, 0)]


def test_a_burst_of_receipts_does_not_hold_back_the_responses_behind_it():
    """40 deliver_sm then a submit_sm_resp in one read: the response fires at once, the
    receipts go to the handler DELIVER_SLICE per reactor turn, each acknowledged."""
    handled = []
    w = Wire(on_deliver=lambda pdu: handled.append(pdu.sequence))
    answer = _results(w.proto.submit_sm(source_addr="1", destination_addr="2",
                                        short_message=b"x"))
    seq = w.sent()[0].sequence
    burst = b"".join(codec.encode("deliver_sm", 100 + i, source_addr="1", destination_addr="2",
                                  esm_class=4, short_message=b"id:1 stat:DELIVRD")
                     for i in range(40))
    slices = []  # receipts handled when each next slice was scheduled
    real_call_later = w.clock.callLater

    def call_later(delay, f, *args, **kw):
        if f == w.proto._delivered._slice:
            slices.append(len(handled))
        return real_call_later(delay, f, *args, **kw)

    w.clock.callLater = call_later
    w.proto.dataReceived(burst + codec.encode("submit_sm_resp", seq, message_id="7"))
    assert answer == ["7"] and handled == []
    w.clock.advance(0)
    assert slices == [0, DELIVER_SLICE, 2 * DELIVER_SLICE]
    assert handled == list(range(100, 140))
    assert [p.sequence for p in w.sent()] == list(range(100, 140))  # each deliver_sm_resp


def test_receipts_not_handled_when_the_link_drops_are_left_for_the_smsc_to_resend():
    """The link drops with receipts read but not yet handled: none is handled or answered."""
    handled = []
    w = Wire(on_deliver=lambda pdu: handled.append(pdu.sequence))
    w.proto.dataReceived(codec.encode("deliver_sm", 5, source_addr="1", destination_addr="2",
                                      esm_class=4, short_message=b"id:1 stat:DELIVRD"))
    w.proto.connectionLost(Failure(ConnectionDone()))
    w.clock.advance(0)
    assert handled == [] and w.sent() == []


def test_smsc_unbind_is_answered_and_link_closed():
    """An unbind from the SMSC is answered with unbind_resp, then the connection closes."""
    w = Wire()
    w.feed(codec.encode("unbind", 3))
    assert w.sent()[0].command == "unbind_resp" and w.transport.disconnecting


def test_our_unbind_waits_for_resp_then_closes():
    """unbind() sends unbind, closes after unbind_resp, and fires."""
    w = Wire()
    r = _results(w.proto.unbind())
    sent = w.sent()
    assert sent[0].command == "unbind" and not w.transport.disconnecting
    w.feed(codec.encode("unbind_resp", sent[0].sequence))
    assert r == [None] and w.transport.disconnecting


def test_connection_lost_fails_everything_pending_with_link_lost():
    """Every pending request fails with LinkLost; later requests fail at once; no timer stays."""
    w = Wire()
    rs = [_results(w.proto.submit_sm(source_addr="1", destination_addr="2", short_message=b"x"))
          for _ in range(4)]
    w.proto.connectionLost(Failure(ConnectionLost("peer went away")))
    assert all(r[0].check(LinkLost) for r in rs)
    assert w.proto.pending_count == 0
    late = _results(w.proto.submit_sm(source_addr="1", destination_addr="2", short_message=b"x"))
    assert late[0].check(LinkLost)
    assert not w.clock.getDelayedCalls() or all(not c.active() for c in w.clock.getDelayedCalls())


def test_sequence_numbers_wrap():
    """After 0x7FFFFFFF the sequence restarts at 1."""
    w = Wire()
    w.proto._sequence = 0x7FFFFFFE
    w.proto.request("enquire_link")
    w.proto.request("enquire_link")
    assert [p.sequence for p in w.sent()] == [0x7FFFFFFF, 1]


def test_field_too_long_fails_the_request_not_the_link():
    """An over-long address fails that request with FieldTooLong and sends nothing."""
    w = Wire()
    r = _results(w.proto.submit_sm(source_addr="1", destination_addr="9" * 30,
                                   short_message=b"x"))
    assert r[0].check(codec.FieldTooLong) and w.sent() == []


@pytest.mark.parametrize("command", ["bind_transceiver", "bind_transmitter", "bind_receiver"])
def test_bind_modes(command):
    """bind() sends the mode's bind PDU with credentials and fires with the SMSC's system_id."""
    w = Wire()
    mode = command.split("_")[1]
    r = _results(w.proto.bind(mode, "hotline", "pw", ""))
    sent = w.sent()[0]
    assert sent.command == command and sent.system_id == b"hotline"
    w.feed(codec.encode(command + "_resp", sent.sequence, system_id="SMSC"))
    assert r == ["SMSC"]
