"""Monitoring: the platform's link states, readiness, and the Prometheus ``/metrics`` page.

``Status`` is the one place that knows the daemon's links (the AMI link, the SMPP
binds) and its database; the console's dashboard, ``/readyz`` and ``/metrics`` all
ask it. Figures kept in the database are read on the thread pool before each
scrape and handed to a collector registered on the daemon's own registry (never
prometheus-client's global one), so a scrape never blocks the reactor.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

log = Logger(namespace="hotline.metrics")
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
# The IVR's reply time: a caller waits this long between one AGI command's end and the next.
IVR_REPLY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class LinkView:
    kind: str  # ami | smpp
    name: str
    state: str
    up: bool
    detail: str = ""


class Status:
    """The daemon's links and database as the dashboard, readiness and metrics see them."""

    def __init__(self, db, ami_links: dict | None = None, router=None):
        # ami_links: node name -> AMI link, one per Asterisk the daemon drives
        self.db, self.ami_links, self.router = db, dict(ami_links or {}), router

    def links(self) -> list[LinkView]:
        out = []
        for name, link in self.ami_links.items():
            snap = link.snapshot()
            out.append(LinkView("ami", name, snap.state, link.is_up, snap.last_error or ""))
        if self.router is not None:
            for smsc, binds in self.router.states().items():
                for bind, snap in binds.items():
                    out.append(LinkView("smpp", f"{smsc}/{bind}", snap["state"],
                                        snap["ready"],
                                        f"window {snap['inflight']}/{snap['window']}"))
        return out

    async def readiness(self) -> dict:
        """Ready when the database answers, an AMI link is up (calls can be driven) and at
        least one bind is."""
        checks = {}
        try:
            await self.db.run(lambda s: s.execute(text("SELECT 1")).scalar())
            checks["database"] = "ok"
        except SQLAlchemyError as e:
            checks["database"] = f"failing: {type(e).__name__}"
        if self.ami_links:
            up = [name for name, link in self.ami_links.items() if link.is_up]
            checks["ami"] = "ok" if up else ", ".join(
                f"{name} {link.state}" for name, link in self.ami_links.items())
        if self.router is not None:
            checks["smpp"] = "ok" if self.router.bound_count() else "no bind is up"
        return {"ready": all(v == "ok" for v in checks.values()), "checks": checks}


class PlatformCollector:
    """Turns the last database read and the live link states into metric families."""

    def __init__(self, status: Status):
        self.status = status
        self.figures: dict = {"messages": [], "calls": [], "latencies": []}

    def collect(self):
        g = GaugeMetricFamily("hotline_sms_messages_24h",
                              "SMS created in the last 24 h, by center, state and carrier",
                              labels=["center", "state", "carrier"])
        queued = GaugeMetricFamily("hotline_sms_queue_depth",
                                   "Messages waiting to be submitted", labels=["center"])
        depth: dict[str, int] = {}
        for center, state, smsc, n in self.figures["messages"]:
            g.add_metric([center, state, smsc or ""], n)
            if state in ("queued", "submitting"):
                depth[center] = depth.get(center, 0) + n
        for center, n in depth.items():
            queued.add_metric([center], n)
        yield g
        yield queued
        calls = GaugeMetricFamily("hotline_calls_24h", "Calls started in the last 24 h, by "
                                  "center and outcome (open: in progress)",
                                  labels=["center", "outcome"])
        for center, outcome, n in self.figures["calls"]:
            calls.add_metric([center, outcome or "open"], n)
        yield calls
        lat = GaugeMetricFamily("hotline_sms_receipt_latency_seconds",
                                "Submit-to-delivery-receipt time over the last hour",
                                labels=["quantile"])
        values = self.figures["latencies"]
        for q in (0.5, 0.95, 0.99):
            if values:
                lat.add_metric([str(q)], values[min(len(values) - 1, int(q * len(values)))])
        yield lat
        up = GaugeMetricFamily("hotline_link_up", "1 when the link is logged in or bound",
                               labels=["kind", "name", "state"])
        for link in self.status.links():
            up.add_metric([link.kind, link.name, link.state], 1 if link.up else 0)
        yield up


class Metrics:
    """The daemon's registry: the platform collector plus counters other parts increment.

    ``read_figures(session, now)`` (the rooms' figures, given by the composition root)
    returns ``messages`` (center, state, carrier, n), ``calls`` (center, outcome, n)
    and sorted receipt ``latencies``."""

    def __init__(self, status: Status, read_figures: Callable, clock):
        self.status, self.read_figures, self.clock = status, read_figures, clock
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = PlatformCollector(status)
        self.registry.register(self.collector)
        self.http_responses = Counter("hotline_http_responses", "HTTP responses by door "
                                      "(console, door, api) and status class",
                                      ["listener", "code"], registry=self.registry)
        self.ivr_reply = Histogram("hotline_ivr_reply_seconds", "From an AGI command's result "
                                   "to the daemon's next command on that call",
                                   buckets=IVR_REPLY_BUCKETS, registry=self.registry)

    def http_counter(self, door_of: Callable[[bytes], str]) -> Callable[[bytes, int], None]:
        """What a GuardedSite calls with each answer's path and status: counted under
        ``door_of(path)`` and the status class (2xx ... 5xx)."""
        def count(path: bytes, code: int) -> None:
            self.http_responses.labels(door_of(path), f"{code // 100}xx").inc()
        return count

    async def render(self) -> bytes:
        self.collector.figures = await self.status.db.run(self.read_figures,
                                                          self.clock.seconds())
        return generate_latest(self.registry)


class _AsyncLeaf(Resource):
    isLeaf = True

    def __init__(self, produce: Callable):
        super().__init__()
        self.produce = produce

    def render_GET(self, request):
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        d = Deferred.fromCoroutine(self.produce(request))
        d.addCallback(self._write, request, gone)
        d.addErrback(self._failed, request, gone)
        return NOT_DONE_YET

    def _write(self, body: bytes, request, gone: list[bool]) -> None:
        if not gone:
            request.write(body)
            request.finish()

    def _failed(self, failure, request, gone: list[bool]) -> None:
        log.failure("monitoring page failed", failure)
        if not gone and not request.finished:
            request.setResponseCode(500)
            request.write(b"error\n")
            request.finish()


def resources(metrics: Metrics) -> dict[bytes, Resource]:
    """``/metrics`` and ``/readyz`` (503 until ready), for the daemon's HTTP listener."""
    import json

    async def metrics_page(request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE)
        return await metrics.render()

    async def ready_page(request) -> bytes:
        result = await metrics.status.readiness()
        request.setResponseCode(200 if result["ready"] else 503)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        return json.dumps(result).encode()

    return {b"metrics": _AsyncLeaf(metrics_page), b"readyz": _AsyncLeaf(ready_page)}
