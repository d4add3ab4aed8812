"""Several daemons on one database: who is alive, and who holds which lease.

Every daemon heartbeats a row in ``cluster_instance`` (its id, host, pid and a
status summary its rooms report) whose ``expires_at`` says until when it counts
as alive. Work that must run on one daemon at a time (the scheduled jobs) takes
a named row in ``cluster_lease``: an insert that takes the row over only when it
is expired or already ours, so the database decides, not a home-made protocol.
The holder's heartbeat renews its leases; a dead holder's leases lapse after
``ttl`` seconds and the next daemon to ask takes them over.

Expiry is measured on the database server's clock, so daemons on machines whose
clocks differ still agree on it.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from sqlalchemy import Float, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from storage.models import Base

log = Logger(namespace="hotline.cluster")


class ClusterInstance(Base):
    """One daemon: alive while ``expires_at`` is ahead of the database's clock."""

    __tablename__ = "cluster_instance"

    instance: Mapped[str] = mapped_column(String(40), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[float] = mapped_column(Float, nullable=False)
    heartbeat_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)  # JSON from the rooms


class ClusterLease(Base):
    """A named piece of work held by one instance until ``expires_at``."""

    __tablename__ = "cluster_lease"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    holder: Mapped[str] = mapped_column(String(40), nullable=False)
    acquired_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False)


def _now_sql(session) -> str:
    """The database server's clock in epoch seconds, as SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return "extract(epoch from clock_timestamp())::float8"
    return "((julianday('now') - 2440587.5) * 86400.0)"


def acquire(session, name: str, holder: str, ttl: float) -> bool:
    """Take or renew lease ``name`` for ``holder``; False while another holds it unexpired."""
    now = _now_sql(session)
    row = session.execute(text(
        "INSERT INTO cluster_lease (name, holder, acquired_at, expires_at)"
        f" VALUES (:name, :holder, {now}, {now} + :ttl)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
        " acquired_at = CASE WHEN cluster_lease.holder = excluded.holder"
        " THEN cluster_lease.acquired_at ELSE excluded.acquired_at END,"
        " expires_at = excluded.expires_at"
        " WHERE cluster_lease.holder = excluded.holder"
        " OR cluster_lease.expires_at < excluded.acquired_at"
        " RETURNING holder"), {"name": name, "holder": holder, "ttl": ttl}).first()
    return row is not None


def heartbeat(session, instance: str, ttl: float, status: dict, starting: bool) -> None:
    """Mark ``instance`` alive for ``ttl`` more seconds and renew every lease it holds."""
    now = _now_sql(session)
    params = {"instance": instance, "host": socket.gethostname(), "pid": os.getpid(),
              "ttl": ttl, "status": json.dumps(status, sort_keys=True)}
    started = "excluded.started_at" if starting else "cluster_instance.started_at"
    session.execute(text(
        "INSERT INTO cluster_instance (instance, host, pid, started_at, heartbeat_at,"
        " expires_at, status)"
        f" VALUES (:instance, :host, :pid, {now}, {now}, {now} + :ttl, :status)"
        " ON CONFLICT (instance) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
        f" started_at = {started}, heartbeat_at = excluded.heartbeat_at,"
        " expires_at = excluded.expires_at, status = excluded.status"), params)
    session.execute(text(f"UPDATE cluster_lease SET expires_at = {now} + :ttl"
                         " WHERE holder = :instance"), params)


def lapsed_instances(session) -> list[str]:
    """Instances whose lease has lapsed: dead or stopped, whatever their name does next."""
    now = _now_sql(session)
    return list(session.execute(text(
        f"SELECT instance FROM cluster_instance WHERE expires_at < {now} ORDER BY instance"
    )).scalars())


def lapsed_with_holder(session, prefix: str) -> list[tuple[str, str | None]]:
    """Every lapsed instance with the live holder of lease ``prefix + instance`` (None when
    nobody holds it): who took over that instance's share of some work."""
    now = _now_sql(session)
    return [(r[0], r[1]) for r in session.execute(text(
        "SELECT i.instance, l.holder FROM cluster_instance i"
        " LEFT JOIN cluster_lease l ON l.name = :prefix || i.instance"
        f" AND l.expires_at >= {now}"
        f" WHERE i.expires_at < {now} ORDER BY i.instance"), {"prefix": prefix})]


def holder(session, name: str) -> str | None:
    """Who holds lease ``name`` unexpired (None when nobody does)."""
    now = _now_sql(session)
    return session.execute(text(f"SELECT holder FROM cluster_lease WHERE name = :name"
                                f" AND expires_at >= {now}"), {"name": name}).scalar()


def release(session, name: str, holder: str) -> None:
    """Give lease ``name`` back, if ``holder`` still holds it."""
    session.execute(text("DELETE FROM cluster_lease WHERE name = :name AND holder = :holder"),
                    {"name": name, "holder": holder})


def leave(session, instance: str) -> None:
    """A clean stop: the instance's leases are free at once and it shows as stopped."""
    now = _now_sql(session)
    session.execute(text("DELETE FROM cluster_lease WHERE holder = :i"), {"i": instance})
    session.execute(text(f"UPDATE cluster_instance SET expires_at = {now}"
                         " WHERE instance = :i"), {"i": instance})


@dataclass(frozen=True)
class InstanceRow:
    instance: str
    host: str
    pid: int
    started_at: float
    heartbeat_age: float  # seconds since the last heartbeat, on the database's clock
    alive: bool
    status: dict


@dataclass(frozen=True)
class LeaseRow:
    name: str
    holder: str
    held_for: float
    expires_in: float  # negative once lapsed


@dataclass(frozen=True)
class ClusterState:
    instances: list[InstanceRow]
    leases: list[LeaseRow]


def database_now(session) -> float:
    return session.execute(text(f"SELECT {_now_sql(session)}")).scalar()


def read_state(session) -> ClusterState:
    """Every instance and lease as the database sees them now."""
    now = database_now(session)
    instances = [InstanceRow(r.instance, r.host, r.pid, r.started_at, now - r.heartbeat_at,
                             r.expires_at > now, json.loads(r.status))
                 for r in session.execute(text(
                     "SELECT * FROM cluster_instance ORDER BY instance"))]
    leases = [LeaseRow(r.name, r.holder, now - r.acquired_at, r.expires_at - now)
              for r in session.execute(text("SELECT * FROM cluster_lease ORDER BY name"))]
    return ClusterState(instances, leases)


class Membership(Service):
    """This daemon's heartbeat, and the door to leased work.

    ``exclusive(name, job)`` wraps a scheduled job so that it runs only on the
    instance holding lease ``name``; rooms add what ``cluster status`` shows
    with ``report(room, fn)``.
    """

    name = "cluster"

    def __init__(self, db, clock, instance: str, ttl: float = 10.0):
        self.db, self.clock, self.instance, self.ttl = db, clock, instance, ttl
        self._reporters: dict[str, Callable[[], Any]] = {}
        self._beat = LoopingCall(self._heartbeat)
        self._beat.clock = clock
        self._starting = True
        self._last_beat: float | None = None
        self._steady_since: float | None = None

    def report(self, room: str, fn: Callable[[], Any]) -> None:
        self._reporters[room] = fn

    def status(self) -> dict:
        return {room: fn() for room, fn in self._reporters.items()}

    def startService(self) -> None:
        super().startService()
        # Three beats per lease time: one lost beat never lets a lease lapse.
        self._beat.start(self.ttl / 3, now=True)

    def stopService(self) -> Deferred:
        super().stopService()
        if self._beat.running:
            self._beat.stop()
        d = self.db.run(leave, self.instance)
        d.addErrback(lambda f: log.warn("could not leave the cluster cleanly: {why}",
                                        why=f.getErrorMessage()))
        return d

    def _heartbeat(self) -> Deferred:
        d = self.db.run(heartbeat, self.instance, self.ttl, self.status(), self._starting)

        def beaten(_):
            self._starting = False
            now = self.clock.seconds()
            if self._last_beat is None or now - self._last_beat > self.ttl:
                self._steady_since = now  # this instance may have looked dead meanwhile
            self._last_beat = now

        d.addCallbacks(beaten, lambda f: log.warn(
            "cluster heartbeat failed: {why}", why=f.getErrorMessage()))
        return d

    def steady_for(self) -> float:
        """Seconds this instance's heartbeats have landed with no gap longer than the lease
        time (0 before the first, or while one is overdue): after a database outage every
        instance looked dead for a while, and only a steady one may judge the others."""
        now = self.clock.seconds()
        if self._steady_since is None or self._last_beat is None \
                or now - self._last_beat > self.ttl:
            return 0.0
        return now - self._steady_since

    def leased_endpoint(self, name: str, endpoint: IStreamClientEndpoint) -> LeasedEndpoint:
        """``endpoint`` that connects only while this instance holds lease ``name``."""
        return LeasedEndpoint(self, name, endpoint)

    def exclusive(self, name: str, job: Callable[[], Any]) -> LeasedJob:
        """``job`` run only while this instance holds lease ``name`` (taken on the way)."""
        return LeasedJob(self, name, job)


class SlotHeldElsewhere(Exception):
    """The connection slot's lease is held by another live instance."""


@implementer(IStreamClientEndpoint)
class LeasedEndpoint:
    """A connection slot shared by the cluster (an SMSC's bind, capped per account): each
    connect first takes or renews the slot's lease, and fails while another instance
    holds it, so the link's reconnect backoff retries until a dead holder's lease lapses."""

    def __init__(self, membership: Membership, name: str, endpoint: IStreamClientEndpoint):
        self.membership, self.name, self.endpoint = membership, name, endpoint

    def connect(self, factory) -> Deferred:
        m = self.membership
        d = m.db.run(acquire, self.name, m.instance, m.ttl)
        d.addCallback(self._connect_if_held, factory)
        return d

    def _connect_if_held(self, held: bool, factory) -> Deferred:
        if not held:
            raise SlotHeldElsewhere(f"connection slot {self.name} is held by another instance")
        return self.endpoint.connect(factory)


class LeasedJob:
    """A scheduled job that runs only on the lease holder; the scheduler's log names
    its center as for the bare job."""

    def __init__(self, membership: Membership, name: str, job: Callable[[], Any]):
        self.membership, self.name, self.job = membership, name, job

    @property
    def center(self) -> str | None:
        return getattr(self.job, "center", None)

    def __call__(self) -> Deferred:
        m = self.membership
        d = m.db.run(acquire, self.name, m.instance, m.ttl)
        d.addCallbacks(self._held, self._not_asked)
        return d

    def _held(self, ok: bool):
        return self.job() if ok else None

    def _not_asked(self, failure) -> None:
        log.warn("lease {name} not asked for: {why}", name=self.name,
                 why=failure.getErrorMessage())
