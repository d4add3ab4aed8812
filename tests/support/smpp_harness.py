"""Shared set-up (no tests) for bind and router tests: SmscConfig builders, a router on memory SMSCs."""
from __future__ import annotations

from dataclasses import replace

from twisted.internet.defer import succeed
from twisted.internet.task import Clock

from sandbox.smsc_sim import MemoryEndpoint, SimConfig, SmscFactory
from sms.config import SmscConfig
from sms.carrier.router import SmppRouter, SubmitPart

BASE = SmscConfig(name="a", endpoint="tcp:host=127.0.0.1:port=2775", system_id="hotline",
                  password="pw", system_type="", bind_mode="transceiver", binds=1, window=10,
                  throughput=0.0, response_timeout=5.0, enquire_link=30.0, prefixes=(),
                  source_addr="12329", reconnect_min=1.0, reconnect_max=8.0)


def smsc(name: str = "a", **changes) -> SmscConfig:
    return replace(BASE, name=name, **changes)


class Harness:
    """A router whose SMSCs are smsc_sim factories joined over memory, all on one Clock."""

    def __init__(self, *configs: SmscConfig, sims: dict | None = None):
        self.clock = Clock()
        self.receipts, self.mos = [], []
        self.sims = {c.name: SmscFactory(self.clock, (sims or {}).get(c.name) or
                                         SimConfig(password="pw")) for c in configs}
        self.endpoints = {name: MemoryEndpoint(sim) for name, sim in self.sims.items()}
        self.router = SmppRouter(list(configs), self.clock, on_receipt=self._receipt,
                                 on_mo=self._mo, endpoint_for=lambda c: self.endpoints[c.name],
                                 jitter=lambda: 0.0)

    def _receipt(self, r):
        self.receipts.append(r)
        return succeed(None)

    def _mo(self, m):
        self.mos.append(m)
        return succeed(None)

    def flush(self, rounds: int = 3) -> None:
        """Move bytes both ways ``rounds`` times, each after a reactor turn (callLater(0))."""
        for _ in range(rounds):
            self.clock.advance(0)
            for ep in self.endpoints.values():
                ep.flush()

    def advance(self, seconds: float, step: float = 0.01) -> None:
        """Move time in small steps, moving bytes after each (latency, timers, retries)."""
        steps = max(1, int(round(seconds / step)))
        for _ in range(steps):
            self.clock.advance(step)
            self.flush(2)
        self.clock.advance(1e-6)  # the last step lands on, not just short of, the target
        self.flush(2)

    def start(self) -> Harness:
        self.router.startService()
        self.flush()
        return self


DEST = "10690000"


def submit_part(i: int = 0) -> SubmitPart:
    return SubmitPart(destination=DEST, source="12329", short_message=f"m{i}".encode(),
                      data_coding=0, esm_class=0)


def collect(d):
    """What the Deferred fired with, so far (an empty list while it has not)."""
    out = []
    d.addBoth(out.append)
    return out
