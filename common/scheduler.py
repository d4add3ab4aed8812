"""APScheduler's TwistedScheduler as a service in the daemon's tree: jobs run on the reactor."""
from __future__ import annotations

from apscheduler.schedulers.twisted import TwistedScheduler
from twisted.application.service import Service


class SchedulerService(Service):
    """Owns one TwistedScheduler; rooms add their jobs before the daemon starts."""

    name = "scheduler"

    def __init__(self, reactor, timezone: str = "Asia/Shanghai", cluster=None):
        self.scheduler = TwistedScheduler(reactor=reactor, timezone=timezone)
        self.cluster = cluster  # a storage.cluster.Membership, None when alone

    def once_in_cluster(self, name: str, job):
        """``job`` wrapped to run on one daemon of the cluster at a time (lease ``name``)."""
        return job if self.cluster is None else self.cluster.exclusive(name, job)

    def startService(self) -> None:
        super().startService()
        self.scheduler.start()

    def stopService(self) -> None:
        super().stopService()
        # Running jobs are Deferred-based; they finish or are cancelled with the reactor.
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
