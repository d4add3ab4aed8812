"""APScheduler's TwistedScheduler as a service in the daemon's tree: jobs run on the reactor.

APScheduler's own Twisted executor runs job bodies on the reactor's thread pool, where
a coroutine would start outside the reactor thread and take reactor-only locks from the
wrong thread. ``ReactorExecutor`` calls each job on the reactor thread instead (its
database work still goes to the pool through storage.db) and holds the job's instance
until the Deferred it returns has fired, so ``max_instances`` counts real runs.
"""
from __future__ import annotations

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.twisted import TwistedScheduler
from twisted.application.service import Service
from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger

log = Logger(namespace="hotline.scheduler")


class ReactorExecutor(BaseExecutor):
    """Runs jobs on the reactor thread; a job's failure is logged when it happens."""

    def __init__(self, reactor):
        super().__init__()
        self._reactor = reactor

    def _do_submit_job(self, job, run_times) -> None:
        self._reactor.callFromThread(self._run, job, run_times[-1])  # coalesced: the latest

    def _run(self, job, run_time) -> None:
        d = maybeDeferred(job.func, *job.args, **job.kwargs)
        d.addCallbacks(self._succeeded, self._failed, callbackArgs=(job, run_time),
                       errbackArgs=(job, run_time))

    def _succeeded(self, result, job, run_time) -> None:
        self._run_job_success(job.id, [JobExecutionEvent(
            EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time, retval=result)])

    def _failed(self, failure, job, run_time) -> None:
        center = getattr(job.func, "center", None)
        log.failure("scheduled job {job}{where} failed", failure, job=job.id,
                    where=f" (center {center})" if center else "")
        # Logged above, in our format: hand the scheduler its event, not a second traceback.
        self._run_job_success(job.id, [JobExecutionEvent(
            EVENT_JOB_ERROR, job.id, job._jobstore_alias, run_time, exception=failure.value,
            traceback=failure.getTraceback())])


class SchedulerService(Service):
    """Owns one TwistedScheduler; rooms add their jobs before the daemon starts."""

    name = "scheduler"

    def __init__(self, reactor, timezone: str = "Asia/Shanghai"):
        self.scheduler = TwistedScheduler(reactor=reactor, timezone=timezone,
                                          executors={"default": ReactorExecutor(reactor)})

    def startService(self) -> None:
        super().startService()
        self.scheduler.start()

    def stopService(self) -> None:
        super().stopService()
        # Running jobs are Deferred-based; they finish or are cancelled with the reactor.
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
