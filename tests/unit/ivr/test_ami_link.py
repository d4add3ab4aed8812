"""The AMI link: login in prepareConnection, backoff on the clock, state, fan-out across reconnects."""
from __future__ import annotations

import re

from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionLost
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
    link.on_up(lambda: ups.append(link.state.reconnects))
    link.subscribe("asyncagistart", seen.append)
    link.start()
    assert link.state.state == "connecting"
    proto, t = accept(reactor)
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
    assert link.state.state == "down" and link.state.failed_attempts == 1
    assert "Authentication failed" in link.state.last_error
    assert len(reactor.tcpClients) == 1
    reactor.advance(2.0)  # backoff: initial 1 s times factor 2 for the first retry
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
    reactor.advance(2.0)  # backoff: initial 1 s times factor 2 for the first retry
    proto2, t2 = accept(reactor)
    answer_login(proto2, t2)
    assert link.is_up and link.state.reconnects == 1 and ups == [1, 1]
    proto2.dataReceived(b"Event: Hello\r\n\r\n")
    assert [m.event for m in seen] == ["Hello"]


def test_stop_logs_off():
    """Stopping an up link sends Logoff before closing."""
    reactor, link = make_link()
    link.start()
    proto, t = accept(reactor)
    answer_login(proto, t)
    link.stop()
    assert b"Action: Logoff" in t.value()
    assert link.state.state == "stopped"
