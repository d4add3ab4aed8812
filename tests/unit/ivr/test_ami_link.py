"""The AMI link: login in prepareConnection, backoff on the clock, state, fan-out across reconnects."""
from __future__ import annotations

import re

from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from ivr.asterisk.ami_link import AmiLink
from ivr.asterisk.ami_protocol import AmiConnectionLost


def make_link():
    reactor = MemoryReactorClock()
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", 5038)
    link = AmiLink(endpoint, "hotline", "pw", reactor, action_timeout=5, ping_interval=30,
                   initial_delay=1.0, max_delay=8.0, jitter=lambda: 0.0)
    return reactor, link


def accept(reactor, index=-1):
    """Complete the pending TCP connect; return (protocol, transport)."""
    factory = reactor.tcpClients[index][2]
    proto = factory.buildProtocol(None)
    t = StringTransport()
    proto.makeConnection(t)
    proto.dataReceived(b"Asterisk Call Manager/9.0.0\r\n")
    return proto, t


def answer_login(proto, t, ok=True):
    aid = re.findall(rb"ActionID: (\S+)\r\n", t.value())[-1]
    if ok:
        proto.dataReceived(b"Response: Success\r\nActionID: " + aid
                           + b"\r\nMessage: Authentication accepted\r\n\r\n")
    else:
        proto.dataReceived(b"Response: Error\r\nActionID: " + aid
                           + b"\r\nMessage: Authentication failed\r\n\r\n")


def test_login_then_up_and_events_reach_subscribers():
    """After a successful login the link is up, on_up runs, and subscribed events arrive."""
    reactor, link = make_link()
    ups, seen = [], []
    link.on_up(lambda: ups.append(link.snapshot().reconnects))
    link.subscribe("asyncagistart", seen.append)
    link.start()
    assert link.state == "down"
    proto, t = accept(reactor)
    assert link.state == "logging-in"
    assert b"Action: Login\r\nUsername: hotline\r\nSecret: pw" in t.value()
    answer_login(proto, t)
    assert link.is_up and ups == [0]
    proto.dataReceived(b"Event: AsyncAGIStart\r\nChannel: PJSIP/x\r\n\r\nEvent: Other\r\n\r\n")
    assert [m.get("Channel") for m in seen] == ["PJSIP/x"]


def test_failed_login_counts_as_failed_connection_and_backs_off():
    """A refused login closes the connection and retries after the backoff delay."""
    reactor, link = make_link()
    link.start()
    proto, t = accept(reactor)
    answer_login(proto, t, ok=False)
    assert t.disconnecting
    assert link.state == "down" and link.snapshot().failed_attempts == 1
    assert "Authentication failed" in link.last_error
    assert len(reactor.tcpClients) == 1
    reactor.advance(0.99)
    assert len(reactor.tcpClients) == 1
    reactor.advance(0.01)  # the first retry after initial_delay, not twice that
    assert len(reactor.tcpClients) == 2


def test_reconnect_after_drop_and_subscribers_survive():
    """A dropped link fails actions at once, reconnects with backoff, and counts the reconnect."""
    reactor, link = make_link()
    ups, downs, seen = [], [], []
    link.on_up(lambda: ups.append(1))
    link.on_down(lambda: downs.append(1))
    link.subscribe(None, seen.append)
    link.start()
    proto, t = accept(reactor)
    answer_login(proto, t)
    pending = []
    link.action("Ping").addBoth(pending.append)
    proto.connectionLost(Failure(ConnectionLost()))
    assert pending[0].check(AmiConnectionLost) and downs == [1]
    failed_now = []
    link.action("Ping").addBoth(failed_now.append)
    assert failed_now[0].check(AmiConnectionLost)
    reactor.advance(1.0)  # backoff: the first retry after initial_delay
    proto2, t2 = accept(reactor)
    answer_login(proto2, t2)
    assert link.is_up and link.snapshot().reconnects == 1 and ups == [1, 1]
    proto2.dataReceived(b"Event: Hello\r\n\r\n")
    assert [m.event for m in seen] == ["Hello"]


def test_stop_logs_off():
    """Stopping an up link sends Logoff before closing."""
    reactor, link = make_link()
    link.start()
    proto, t = accept(reactor)
    answer_login(proto, t)
    stopped = []
    link.stop().addCallback(stopped.append)
    assert b"Action: Logoff" in t.value()
    assert link.state == "logging-off" and not link.is_up
    aid = re.findall(rb"ActionID: (\S+)\r\n", t.value())[-1]
    proto.dataReceived(b"Response: Goodbye\r\nActionID: " + aid + b"\r\n\r\n")
    assert t.disconnecting
    proto.connectionLost(Failure(ConnectionDone()))
    assert link.state == "down" and stopped == [None]
    reactor.advance(60)
    assert len(reactor.tcpClients) == 1  # stopped: no reconnect


def test_refused_login_then_closed_connection_reconnects_without_error():
    """The gap in ClientService: the refused connection's close, reported after the failed
    prepareConnection, raises nothing, and the link retries and logs in on the next attempt."""
    reactor, link = make_link()
    link.start()
    proto, t = accept(reactor)
    answer_login(proto, t, ok=False)
    proto.connectionLost(Failure(ConnectionDone()))  # the refused connection really closes
    reactor.advance(1.0)
    proto2, t2 = accept(reactor)
    answer_login(proto2, t2)
    assert link.is_up and len(reactor.tcpClients) == 2


def test_connection_lost_during_login_reconnects_without_error():
    """A connection that drops while the Login is pending counts as a failed attempt (no
    NoTransition from ClientService), and the next attempt logs in."""
    reactor, link = make_link()
    link.start()
    proto, t = accept(reactor)
    proto.connectionLost(Failure(ConnectionLost()))
    assert link.state == "down" and link.snapshot().failed_attempts == 1
    reactor.advance(1.0)
    proto2, t2 = accept(reactor)
    answer_login(proto2, t2)
    assert link.is_up
