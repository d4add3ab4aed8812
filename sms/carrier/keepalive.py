"""The idle-link rule every SMS protocol keeps: SMPP's enquire_link, CMPP's and SMGP's
ACTIVE_TEST, and SGIP's Unbind (it has no keep-alive: the idle side unbinds), written once.

A link that has read nothing for ``idle`` seconds sends a probe (the protocol's own
request, with its own timeout); ``retries`` probes in a row without an answer mean the
peer is gone and ``on_dead`` drops the link. CMPP's specification gives the timers:
idle C = 3 min, answer T = 60 s, N = 3 tries; SMPP practice is 30 s and one try.
Anything read resets the idle time (``touch``), so a busy link is never probed.
For SGIP the "probe" is the Unbind itself (``CarrierProtocol._idle``), and a request
sent counts as activity too.
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure


class IdleProbe:
    """Probe the peer after ``idle`` quiet seconds; give up after ``retries`` silent probes."""

    def __init__(self, clock: IReactorTime, idle: float, probe: Callable[[], Deferred],
                 on_dead: Callable[[Failure], None], retries: int = 1):
        self.clock, self.idle, self.retries = clock, idle, retries
        self.probe, self.on_dead = probe, on_dead
        self.last_rx = clock.seconds()
        self.failed = 0  # probes in a row without an answer
        self._probing = False
        self._running = False
        self._call = None

    def start(self) -> None:
        self._running = True
        self.last_rx = self.clock.seconds()
        self._call = self.clock.callLater(self.idle, self._check)

    def stop(self) -> None:
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def touch(self) -> None:
        """Something was read: the peer is alive."""
        self.last_rx = self.clock.seconds()

    def _check(self) -> None:
        self._call = None
        quiet = self.clock.seconds() - self.last_rx
        if quiet >= self.idle and not self._probing:
            self._probing = True
            self.probe().addCallbacks(self._answered, self._silent)
        # While a probe waits for its answer, look again an idle time later, not every
        # millisecond until it comes.
        delay = self.idle if quiet >= self.idle else max(self.idle - quiet, 0.001)
        if self._call is None and self._running:
            self._call = self.clock.callLater(delay, self._check)

    def _answered(self, _response) -> None:
        self._probing = False
        self.failed = 0

    def _silent(self, failure: Failure) -> None:
        self._probing = False
        self.failed += 1
        if self.failed >= self.retries:
            self.stop()
            self.on_dead(failure)
        elif self._call is not None:
            # Try again at once rather than after another idle period (CMPP: N tries, T apart).
            self._call.cancel()
            self._call = self.clock.callLater(0, self._check)
