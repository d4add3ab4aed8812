"""Scheduled jobs run on the reactor thread, and a failing job is logged at once with its name."""
from __future__ import annotations

import threading

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from common.scheduler import SchedulerService


class ReactorClock(Clock):
    """A Clock with callFromThread, as the scheduler needs; no thread pool at all."""

    def callFromThread(self, f, *args, **kwargs):
        self.callLater(0, f, *args, **kwargs)


def _run(service, clock):
    service.startService()
    for _ in range(5):
        clock.advance(0)


def test_a_job_body_runs_on_the_reactor_thread_and_holds_its_instance_until_it_fires():
    """The job starts on the calling (reactor) thread; while its Deferred is pending a second
    run is not started (max_instances)."""
    clock = ReactorClock()
    service = SchedulerService(clock)
    seen, pending = [], Deferred()

    def job():
        seen.append(threading.get_ident())
        return pending

    service.scheduler.add_job(job, id="sms-alerts-demo", max_instances=1)
    service.scheduler.add_job(job, id="sms-alerts-demo-2", max_instances=1)
    _run(service, clock)
    assert seen == [threading.get_ident()] * 2
    pending.callback(None)
    service.stopService()
    clock.advance(0)


def test_a_failing_job_is_logged_at_once_with_its_job_and_center():
    """A job whose Deferred fails is reported when it fails, naming the job and the center."""
    clock = ReactorClock()
    service = SchedulerService(clock)
    lines = []
    observer = lambda event: lines.append(formatEvent(event))  # noqa: E731
    globalLogPublisher.addObserver(observer)
    try:
        job = lambda: fail(ValueError("duplicate key"))  # noqa: E731
        job.center = "demo"
        service.scheduler.add_job(job, id="sms-reminders-demo")
        _run(service, clock)
    finally:
        globalLogPublisher.removeObserver(observer)
    failures = [line for line in lines if "sms-reminders-demo" in line]
    assert failures and "center demo" in failures[0]
    service.stopService()
    clock.advance(0)
