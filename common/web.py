"""The daemon's HTTP listener: rooms mount their resources under one root.

The listener is reachable by whoever can reach its port, so it must answer
every request and never let one peer hold it: ``GuardedSite`` caps bodies
before they are buffered (413 from the declared length, or as chunks arrive),
gives each request ``read_timeout`` seconds to arrive whole (a trickling client
is cut off however steadily it trickles), closes idle connections, and limits
connections and requests per peer address (429 with Retry-After).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

log = Logger(namespace="hotline.web")

# Peers remembered for the request rate (the oldest are forgotten beyond this).
MAX_TRACKED_PEERS = 10_000


class JsonResource(Resource):
    """A leaf answering GET with the JSON of ``produce()``."""

    isLeaf = True

    def __init__(self, produce):
        super().__init__()
        self.produce = produce

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        return json.dumps(self.produce(), ensure_ascii=False, default=str).encode()


def make_root(resources: dict[bytes, Resource]) -> Resource:
    root = Resource()
    root.putChild(b"healthz", JsonResource(lambda: {"status": "ok"}))
    for name, resource in resources.items():
        root.putChild(name, resource)
    return root


def _peer_host(transport) -> str:
    peer = transport.getPeer() if transport is not None else None
    return getattr(peer, "host", None) or "local"


class PeerBuckets:
    """A token bucket per peer address: ``rate`` requests a second, bursts of twice that."""

    def __init__(self, rate: float, clock):
        self.rate, self.burst, self.clock = rate, max(1.0, 2 * rate), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # host -> (tokens, at)

    def take(self, host: str) -> float:
        """0 when the request may go on, else the seconds until it could."""
        now = self.clock.seconds()
        tokens, at = self._buckets.pop(host, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if len(self._buckets) >= MAX_TRACKED_PEERS:
            del self._buckets[next(iter(self._buckets))]
        if tokens < 1:
            self._buckets[host] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[host] = (tokens - 1, now)
        return 0.0


def _refuse(transport, status: bytes) -> None:
    """Answer a request that cannot be read any further, then drop the connection."""
    transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n")
    transport.loseConnection()


class GuardedRequest(Request):
    """A request whose body is capped while it arrives and whose peer's rate is checked."""

    _received = 0

    def gotLength(self, length):
        if length is not None and length > self.channel.body_cap():
            self.channel.refuse(b"413 Payload Too Large")
            length = 0  # nothing more of it is buffered: the connection is going away
        super().gotLength(length)

    def handleContentChunk(self, data):
        self._received += len(data)
        if self._received > self.channel.body_cap():
            self.channel.refuse(b"413 Payload Too Large")
            return
        super().handleContentChunk(data)

    def process(self):
        wait = self.channel.site.buckets.take(_peer_host(self.transport))
        if wait:
            self.setResponseCode(429)
            self.setHeader(b"retry-after", str(max(1, math.ceil(wait))).encode())
            self.setHeader(b"content-type", b"application/json; charset=utf-8")
            self.write(b'{"error": "rate_limited", "message": "too many requests"}')
            self.finish()
            return
        super().process()


class GuardedChannel(HTTPChannel):
    """An HTTP connection that must deliver each request within ``read_timeout``."""

    site: GuardedSite
    _deadline = None
    _refused = False
    _request_path: bytes | None = None  # of the request being read, from its request line

    def lineReceived(self, line):
        if self._request_path is None and line:  # the request line: what body cap applies
            parts = line.split()
            self._request_path = parts[1] if len(parts) > 1 else b""
        super().lineReceived(line)

    def body_cap(self) -> int:
        return self.site.body_cap(self._request_path or b"")

    def connectionMade(self):
        super().connectionMade()
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.site.reactor.callLater(self.site.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        log.info("HTTP peer {peer} too slow: request not received within {s} s",
                 peer=_peer_host(self.transport), s=self.site.read_timeout)
        self.transport.abortConnection()

    def refuse(self, status: bytes) -> None:
        """Answer ``status`` and close without reading the rest (body too large)."""
        if not self._refused:
            self._refused = True
            self._disarm()
            _refuse(self.transport, status)
            self.site.responded(self._request_path or b"", int(status[:3]))

    def allContentReceived(self):
        self._disarm()
        self._request_path = None  # the next line starts the next request
        if self._refused:
            return
        super().allContentReceived()

    def requestDone(self, request):
        if self.persistent:
            self._arm()  # the next request on this connection gets its own deadline
        super().requestDone(request)

    def connectionLost(self, reason):
        self._disarm()
        self.site.connection_closed(self)
        super().connectionLost(reason)


class GuardedSite(Site):
    """A Site with the limits of ``[http]``; the reactor is passed in (never the global)."""

    protocol = GuardedChannel
    requestFactory = GuardedRequest

    def __init__(self, resource, reactor, *, max_body: int, read_timeout: float,
                 idle_timeout: float, per_peer_connections: int, per_peer_rate: float,
                 log_formatter=None, body_caps: dict[bytes, int] | None = None,
                 on_response: Callable[[bytes, int], None] | None = None):
        super().__init__(resource, timeout=idle_timeout, reactor=reactor,
                         logFormatter=log_formatter)
        # (path, status) of every answer, refusals too: the metrics' HTTP counters.
        self.on_response = on_response
        self.max_body, self.read_timeout = max_body, read_timeout
        # Path prefixes whose resource reads larger bodies (the send API's batches).
        self.body_caps = sorted((body_caps or {}).items(), key=lambda kv: -len(kv[0]))
        self.per_peer_connections = per_peer_connections
        self.buckets = PeerBuckets(per_peer_rate, reactor)
        self._open: dict[str, int] = {}
        self.displayTracebacks = False

    def body_cap(self, path: bytes) -> int:
        """The largest body a request to ``path`` may send: its prefix's cap, or the site's."""
        for prefix, cap in self.body_caps:
            if path == prefix or path.startswith(prefix + b"/") or path.startswith(prefix + b"?"):
                return cap
        return self.max_body

    def log(self, request) -> None:
        """Twisted calls this as every request finishes (a 429 too): log it and count it."""
        super().log(request)
        self.responded(request.path, request.code)

    def responded(self, path: bytes, code: int) -> None:
        if self.on_response is not None:
            self.on_response(path.split(b"?", 1)[0], code)

    def buildProtocol(self, addr):
        host = getattr(addr, "host", None) or "local"
        if self._open.get(host, 0) >= self.per_peer_connections:
            log.info("HTTP peer {peer} refused: {n} connections open", peer=host,
                     n=self._open[host])
            return None
        channel = super().buildProtocol(addr)
        self._open[host] = self._open.get(host, 0) + 1
        channel._peer_key = host
        return channel

    def connection_closed(self, channel) -> None:
        host = getattr(channel, "_peer_key", None)
        if host in self._open:
            self._open[host] -= 1
            if self._open[host] <= 0:
                del self._open[host]


def make_site(config, reactor, resources: dict[bytes, Resource],
              body_caps: dict[bytes, int] | None = None,
              on_response: Callable[[bytes, int], None] | None = None) -> GuardedSite:
    http = config.http
    return GuardedSite(make_root(resources), reactor, max_body=http.max_body,
                       read_timeout=http.read_timeout, idle_timeout=http.idle_timeout,
                       per_peer_connections=http.per_peer_connections,
                       per_peer_rate=http.per_peer_requests_per_second, body_caps=body_caps,
                       on_response=on_response)


def make_http_service(config, reactor, resources: dict[bytes, Resource],
                      body_caps: dict[bytes, int] | None = None,
                      on_response: Callable[[bytes, int], None] | None = None):
    endpoint = serverFromString(reactor, config.http.listen)
    service = StreamServerEndpointService(
        endpoint, make_site(config, reactor, resources, body_caps, on_response))
    service.setName("http")
    return service
