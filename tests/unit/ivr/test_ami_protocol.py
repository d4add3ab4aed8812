"""The AMI protocol over StringTransport and Clock: correlation, timeouts, errors, lists, fuzz."""
from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.internet.error import ConnectionLost

from ivr.asterisk.ami_protocol import (AmiActionError, AmiConnectionLost, AmiLoginError, AmiProtocol,
                              AmiTimeout, ListResult)


def connect(**kw):
    clock = Clock()
    events = []
    p = AmiProtocol(clock, action_timeout=5, on_event=events.append, **kw)
    t = StringTransport()
    p.makeConnection(t)
    p.dataReceived(b"Asterisk Call Manager/9.0.0\r\n")
    return p, t, clock, events


def sent_ids(t):
    return re.findall(rb"ActionID: (\S+)\r\n", t.value())


def results(d):
    out = []
    d.addBoth(out.append)
    return out


def test_response_matched_by_action_id_out_of_order():
    """Two actions answered in reverse order each get their own response."""
    p, t, _, _ = connect()
    r1, r2 = results(p.action("Ping")), results(p.action("Ping"))
    a, b = sent_ids(t)
    p.dataReceived(b"Response: Success\r\nActionID: " + b + b"\r\nPing: Pong\r\n\r\n")
    assert r1 == [] and r2[0].get("Ping") == "Pong"
    p.dataReceived(b"Response: Success\r\nActionID: " + a + b"\r\n\r\n")
    assert r1[0].response == "Success"


def test_error_response_is_typed_failure():
    """Response: Error fails the action with AmiActionError carrying Asterisk's Message."""
    p, t, _, _ = connect()
    r = results(p.action("Setvar", {"Variable": "X"}))
    (aid,) = sent_ids(t)
    p.dataReceived(b"Response: Error\r\nActionID: " + aid + b"\r\nMessage: No such channel\r\n\r\n")
    assert isinstance(r[0], Failure) and r[0].check(AmiActionError)
    assert r[0].value.message == "No such channel"


def test_login_refused_is_login_error_without_secret():
    """A refused login fails with AmiLoginError whose text does not contain the secret."""
    p, t, _, _ = connect()
    r = results(p.login("hotline", "s3cretpw"))
    (aid,) = sent_ids(t)
    p.dataReceived(b"Response: Error\r\nActionID: " + aid
                   + b"\r\nMessage: Authentication failed\r\n\r\n")
    assert r[0].check(AmiLoginError)
    assert "s3cretpw" not in str(r[0].value)


def test_action_times_out_on_clock():
    """An unanswered action fails with AmiTimeout exactly when its timeout passes."""
    p, t, clock, _ = connect()
    r = results(p.action("Ping", timeout=2))
    clock.advance(1.9)
    assert r == []
    clock.advance(0.2)
    assert r[0].check(AmiTimeout)
    (aid,) = sent_ids(t)
    p.dataReceived(b"Response: Success\r\nActionID: " + aid + b"\r\n\r\n")  # late: ignored
    assert len(r) == 1


def test_list_action_collects_events_until_complete():
    """EventList start..Complete events with the ActionID become one ListResult."""
    p, t, _, events = connect()
    r = results(p.list_action("CoreShowChannels"))
    (aid,) = sent_ids(t)
    p.dataReceived(b"Response: Success\r\nActionID: " + aid + b"\r\nEventList: start\r\n\r\n"
                   b"Event: CoreShowChannel\r\nActionID: " + aid + b"\r\nChannel: A\r\n\r\n"
                   b"Event: Newchannel\r\nChannel: Z\r\n\r\n"
                   b"Event: CoreShowChannel\r\nActionID: " + aid + b"\r\nChannel: B\r\n\r\n")
    assert r == []
    p.dataReceived(b"Event: CoreShowChannelsComplete\r\nActionID: " + aid
                   + b"\r\nEventList: Complete\r\nListItems: 2\r\n\r\n")
    (res,) = r
    assert isinstance(res, ListResult)
    assert [e.get("Channel") for e in res.events] == ["A", "B"]
    assert res.complete.get("ListItems") == "2"
    assert [e.event for e in events] == ["Newchannel"]


def test_events_dispatched_and_handler_errors_isolated():
    """Unsolicited events go to on_event; a raising handler does not break later frames."""
    seen = []

    def handler(m):
        seen.append(m.event)
        if m.event == "Boom":
            raise RuntimeError("handler bug")

    p = AmiProtocol(Clock(), on_event=handler)
    p.makeConnection(StringTransport())
    p.dataReceived(b"Event: Boom\r\n\r\nEvent: After\r\n\r\n")
    assert seen == ["Boom", "After"]


def test_connection_lost_fails_pending_and_refuses_new():
    """Losing the connection fails every pending action with AmiConnectionLost."""
    p, t, _, _ = connect()
    r1, r2 = results(p.action("Ping")), results(p.list_action("CoreShowChannels"))
    p.connectionLost(Failure(ConnectionLost()))
    assert r1[0].check(AmiConnectionLost) and r2[0].check(AmiConnectionLost)
    assert results(p.action("Ping"))[0].check(AmiConnectionLost)


def test_keepalive_pings_and_drops_on_silence():
    """Keepalive sends Ping each interval and aborts the connection when one goes unanswered."""
    p, t, clock, _ = connect()
    p.start_keepalive(10)
    clock.advance(10)
    (aid,) = sent_ids(t)
    assert b"Action: Ping" in t.value()
    p.dataReceived(b"Response: Success\r\nActionID: " + aid + b"\r\n\r\n")
    clock.advance(10)
    assert len(sent_ids(t)) == 2
    clock.advance(5)  # the second Ping times out
    assert t.disconnecting or t.disconnected


def test_malformed_frame_skipped_and_counted():
    """A malformed frame is logged and skipped; the next valid one is processed."""
    p, t, _, events = connect()
    p.dataReceived(b"total garbage\r\n\r\nEvent: Good\r\n\r\n")
    assert p.malformed == 1 and [e.event for e in events] == ["Good"]


VALID = (b"Event: Marker\r\nSeq: 1\r\n\r\n", b"Event: Marker\r\nSeq: 2\r\n\r\n")


@settings(max_examples=150, deadline=None)
@given(garbage=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_fuzz_never_raises_and_recovers(garbage, cuts):
    """Random bytes (terminated by a blank line) fed in random pieces never raise,
    and valid frames after them are still parsed."""
    events = []
    p = AmiProtocol(Clock(), on_event=events.append)
    p.makeConnection(StringTransport())
    stream = garbage + b"\r\n\r\n" + VALID[0] + VALID[1]
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces, last = [], 0
    for c in points + [len(stream)]:
        pieces.append(stream[last:c])
        last = c
    for piece in pieces:
        p.dataReceived(piece)
    markers = [e.get("Seq") for e in events if e.event == "Marker"]
    assert markers[-2:] == ["1", "2"]
