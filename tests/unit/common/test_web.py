"""The guarded HTTP site: per-peer limits, body cap and read deadline, in memory."""
from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from common.web import GuardedSite, PeerBuckets, make_root


def site(clock, **limits):
    options = dict(max_body=1024, read_timeout=2.0, idle_timeout=30.0,
                   per_peer_connections=2, per_peer_rate=1.0)
    options.update(limits)
    return GuardedSite(make_root({}), clock, **options)


def connect(s, host="10.0.0.1"):
    addr = IPv4Address("TCP", host, 40000)
    channel = s.buildProtocol(addr)
    if channel is None:
        return None, None
    transport = StringTransport(peerAddress=addr)
    channel.makeConnection(transport)
    return channel, transport


def test_connections_per_peer_are_capped_and_freed_on_close():
    """The third connection from one address is refused; another address is not; a closed
    connection frees its slot."""
    clock = Clock()
    s = site(clock)
    first, _ = connect(s)
    connect(s)
    assert connect(s) == (None, None)
    assert connect(s, "10.0.0.2")[0] is not None
    first.connectionLost(None)
    assert connect(s)[0] is not None


def test_requests_per_peer_are_rate_limited_with_retry_after():
    """Beyond the burst a peer gets 429 with Retry-After until its bucket refills."""
    clock = Clock()
    buckets = PeerBuckets(1.0, clock)
    assert [buckets.take("a") for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("a") > 0 and buckets.take("b") == 0.0
    clock.advance(1)
    assert buckets.take("a") == 0.0
    s = site(clock, per_peer_rate=0.5)
    channel, transport = connect(s)
    channel.dataReceived(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
    assert transport.value().count(b"200 OK") == 1 and b"429" in transport.value()
    assert b"retry-after: 2" in transport.value().lower()


def test_declared_body_over_the_cap_is_refused_unread():
    """A Content-Length over max_body is answered 413 and the connection closed at once."""
    clock = Clock()
    channel, transport = connect(site(clock))
    channel.dataReceived(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 413") and transport.disconnecting


def test_a_path_with_its_own_cap_takes_bodies_up_to_it_and_others_keep_the_sites():
    """The send API's batches (``/v1/messages``) may be larger than the site's cap; a body
    over that path's own cap, and a large body to any other path, are still refused unread,
    also on the second request of a kept-alive connection."""
    clock = Clock()
    s = site(clock, body_caps={b"/v1/messages": 4096})
    channel, transport = connect(s)
    body = b"x" * 3000
    channel.dataReceived(b"POST /v1/messages/batch HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 3000\r\n\r\n" + body)
    assert not transport.value().startswith(b"HTTP/1.1 413")
    assert not transport.disconnecting
    channel.dataReceived(b"POST /v1/codes HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n")
    assert b"413 Payload Too Large" in transport.value() and transport.disconnecting
    channel, transport = connect(s, "10.0.0.3")
    channel.dataReceived(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 413") and transport.disconnecting


def test_a_request_that_arrives_too_slowly_is_aborted():
    """Headers trickling in are cut off read_timeout after the connection opened, however
    recently the last byte came."""
    clock = Clock()
    channel, transport = connect(site(clock))
    for _ in range(19):
        channel.dataReceived(b"G")
        clock.advance(0.1)
    assert not transport.disconnected
    clock.advance(0.2)
    assert transport.disconnected


def test_every_answer_is_reported_with_its_path_and_status():
    """``on_response`` hears each answer's path (without its query) and status: a page, a
    missing one, a 429 from the per-peer rate and a 413 refused unread (the metrics'
    HTTP counters)."""
    clock = Clock()
    heard: list[tuple[bytes, int]] = []
    s = site(clock, per_peer_rate=1.0, on_response=lambda path, code: heard.append((path, code)))
    channel, _ = connect(s)
    channel.dataReceived(b"GET /healthz?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    channel, _ = connect(s, "10.0.0.2")
    channel.dataReceived(b"POST /v1/codes HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n")
    assert heard == [(b"/healthz", 200), (b"/nowhere", 404), (b"/healthz", 429),
                     (b"/v1/codes", 413)]
