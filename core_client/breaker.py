"""A circuit breaker on an injected clock: a dead core fails fast instead of stalling callers.

Closed: calls pass; ``threshold`` consecutive failures open it. Open: calls fail
at once with CoreUnavailable until ``reset_after`` seconds have passed. Half-open:
one trial call passes; its success closes the breaker, its failure opens it again.
"""
from __future__ import annotations

from typing import Any

from core_client.interface import CoreUnavailable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(self, clock: Any, threshold: int = 5, reset_after: float = 10.0):
        self._clock = clock
        self.threshold, self.reset_after = threshold, reset_after
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_at: float | None = None  # when the half-open trial call started

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._trial_at is not None or \
                self._clock.seconds() - self._opened_at >= self.reset_after:
            return HALF_OPEN
        return OPEN

    def before_call(self) -> None:
        """Let a call through, or raise CoreUnavailable while the breaker is open."""
        state = self.state
        if state == OPEN:
            wait = self.reset_after - (self._clock.seconds() - self._opened_at)
            raise CoreUnavailable(f"core circuit open, next trial in {wait:.1f} s")
        if state == HALF_OPEN:
            now = self._clock.seconds()
            # A trial that never reported back (a caller gone) must not block the core forever.
            if self._trial_at is not None and now - self._trial_at < self.reset_after:
                raise CoreUnavailable("core circuit half-open, a trial call is in flight")
            self._trial_at = now

    def success(self) -> None:
        self._failures, self._opened_at, self._trial_at = 0, None, None

    def failure(self) -> None:
        if self._opened_at is not None:  # the half-open trial failed
            self._opened_at, self._trial_at = self._clock.seconds(), None
            return
        self._failures += 1
        if self._failures >= self.threshold:
            self._opened_at = self._clock.seconds()
