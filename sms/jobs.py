"""What the SMS room's scheduled per-center jobs share: one run at a time, paused by core errors."""
from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from core_client.interface import CoreError

log = Logger(namespace="hotline.sms.jobs")


class CenterJob:
    """An APScheduler entry point for one center; subclasses define ``run_once``."""

    what = "job"  # named in the log when a core error pauses a run

    def __init__(self, center: str, core, outbox, config):
        self.center, self.core, self.outbox, self.config = center, core, outbox, config
        self._running: Deferred | None = None
        self.last_report = None

    def __call__(self) -> Deferred:
        """A run already in progress is not doubled; a core outage waits for the next run."""
        if self._running is not None:
            return self._running
        self._running = Deferred.fromCoroutine(self.run_once())
        self._running.addErrback(self._failed)
        self._running.addBoth(self._finished)
        return self._running

    async def run_once(self):
        raise NotImplementedError

    def _failed(self, failure):
        failure.trap(CoreError)
        log.warn("{what} for {center} paused: {why}", what=self.what, center=self.center,
                 why=failure.getErrorMessage())

    def _finished(self, result):
        self._running = None
        return result
