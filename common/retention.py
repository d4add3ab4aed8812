"""Personal data kept no longer than it serves: a daily purge after ``[database] retention_days``.

PIPL asks that personal information be kept only as long as its purpose needs.
Each room offers a ``purge(session, cutoff, now)`` for its own tables
(``sms.retention``, ``core_client.retention``) that anonymises or deletes rows
older than ``cutoff`` and returns counts per table; this module runs them all in
one transaction, daily, and logs what they did. Call records already keep only
a masked caller; opt-outs are kept (they are what the person asked for).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger

log = Logger(namespace="hotline.retention")

DAY = 86_400.0
Purge = Callable[..., dict]


def purge_all(session, purges: list[Purge], now: float, days: float) -> dict[str, int]:
    """Every room's purge for rows older than ``days``; counts per table."""
    done: dict[str, int] = {}
    for purge in purges:
        done.update(purge(session, now - days * DAY, now))
    return done


async def run_retention(db, clock, days: float, purges: list[Purge]) -> dict[str, int]:
    """One purge on the database's pool; logs what it did."""
    done = await db.run(purge_all, purges, clock.seconds(), days)
    if any(done.values()):
        log.info("retention ({days:g} days): {done}", days=days,
                 done=", ".join(f"{table} {n}" for table, n in sorted(done.items()) if n))
    return done


def schedule_retention(scheduler, db, clock, days: float, purges: list[Purge],
                       once: Callable | None = None) -> None:
    """A daily job on the daemon's scheduler, the first five minutes after start (so a
    daemon restarted daily still purges); ``days`` 0 keeps everything. ``once(name, job)``
    (SchedulerService.once_in_cluster) runs it on one daemon of a cluster at a time."""
    if days <= 0:
        return

    def job() -> Deferred:
        d = Deferred.fromCoroutine(run_retention(db, clock, days, purges))
        d.addErrback(lambda f: log.failure("retention purge failed", f))
        return d

    first = dt.datetime.now(scheduler.timezone) + dt.timedelta(minutes=5)
    scheduler.add_job(once("retention", job) if once else job, "interval", hours=24,
                      id="retention", max_instances=1,
                      coalesce=True, replace_existing=True, next_run_time=first)
