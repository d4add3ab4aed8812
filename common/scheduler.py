"""APScheduler's TwistedScheduler as a service in the daemon's tree: jobs run on the reactor."""
from __future__ import annotations

from apscheduler.schedulers.twisted import TwistedScheduler
from twisted.application.service import Service


class SchedulerService(Service):
    """Owns one TwistedScheduler; rooms add their jobs before the daemon starts."""

    name = "scheduler"

    def __init__(self, reactor, timezone: str = "Asia/Shanghai"):
        self.scheduler = TwistedScheduler(reactor=reactor, timezone=timezone)

    def startService(self) -> None:
        super().startService()
        self.scheduler.start()

    def stopService(self) -> None:
        super().stopService()
        # Running jobs are Deferred-based; they finish or are cancelled with the reactor.
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
