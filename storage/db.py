"""The platform database, used only from a thread pool so the reactor never waits on it."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import sessionmaker
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")

log = Logger(namespace="hotline.storage")

# How long a transaction is retried while the database is unreachable: a failover
# (primary lost, standby promoted) must not fail the work queued meanwhile.
RECONNECT_FOR = 60.0


def engine_url(url: str) -> URL:
    """The SQLAlchemy URL of a configured one. A libpq multi-host URL
    (``postgresql://u@h1:p1,h2:p2/db?target_session_attrs=read-write``, the form
    operators know from libpq) becomes SQLAlchemy's spelling of the same hosts
    (``?host=h1:p1&host=h2:p2``), which the driver tries in order."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not url.startswith("postgresql") or "," not in hosts:
        return make_url(url)
    base = make_url(f"{scheme}{sep}{userinfo}{at}{slash}{path}")
    return base.update_query_pairs([("host", h) for h in hosts.split(",")], append=True)


def lost_connection(error: DBAPIError) -> bool:
    """Whether PostgreSQL was lost or not reachable (so the transaction did not happen),
    rather than the statement failing: a connection that broke, a refused or
    failed connect (no SQLSTATE), a connection exception (class 08) or a server
    shutting down (57P01-57P03)."""
    if error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False
    sqlstate = getattr(error.orig, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")


class CommitOutcomeUnknown(Exception):
    """The connection was lost while committing: the transaction may or may not have
    happened, so it is not retried; the caller acknowledged nothing."""


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file owner-only (0600) before SQLite does, and tighten an
    existing one: it holds personal data, and SQLite gives its WAL and shared-memory files
    the database file's permissions."""
    database = make_url(url).database
    if not url.startswith("sqlite") or not database or database == ":memory:":
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for extra in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if extra.exists() and extra.stat().st_uid == os.getuid():
            os.chmod(extra, 0o600)


def make_engine(url: str, pool_size: int = 4) -> Engine:
    """An engine for SQLite (WAL, foreign keys; the file owner-only) or PostgreSQL by URL."""
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    sa_url = engine_url(url)
    extra = {}
    if sa_url.get_driver_name() == "psycopg2":
        # executemany UPDATEs in pages (execute_batch), not one round trip per row.
        extra["executemany_mode"] = "values_plus_batch"
    # A dead host must not hold a pool thread for the kernel's TCP timeout.
    connect_args: dict[str, object] = (
        {} if "connect_timeout" in sa_url.query else {"connect_timeout": 5})
    if sa_url.get_driver_name() == "psycopg":
        # No server-side prepared statements: after five runs psycopg prepares a statement
        # and PostgreSQL may settle on a generic plan that ignores the values, and the
        # outbox's idempotency-key lookup then scanned the center's rows (measured: 124 ms
        # per 250-message accept at 250 rows, 2,154 ms at 17,750; planned each time it
        # stays at 130-240 ms through 20,000 rows and uses the unique index).
        connect_args["prepare_threshold"] = None
    return create_engine(sa_url, pool_size=pool_size, max_overflow=2, pool_pre_ping=True,
                         connect_args=connect_args, **extra)


def _write_locked(session, fn: Callable[..., T], sqlite: bool, *args: Any) -> T:
    if sqlite:
        # pysqlite has begun nothing yet (it begins only before a write): take the lock now.
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    return fn(session, *args)


class Database(Service):
    """Runs session work in its own thread pool and hands back Deferreds.

    ``run(fn, ...)`` calls ``fn(session, ...)`` inside one transaction on a pool
    thread; the transaction commits when ``fn`` returns and rolls back if it raises.
    """

    # Twisted's Service leaves name = None unannotated; IService says "str or None".
    name: str | None = "database"  # type: ignore[assignment]

    def __init__(self, url: str, reactor: Any, threads: int = 4,
                 reconnect_for: float = RECONNECT_FOR):
        self.url = url
        self.reconnect_for = reconnect_for
        self.reactor = reactor
        self.engine = make_engine(url, pool_size=threads)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.pool = ThreadPool(minthreads=1, maxthreads=threads, name="database")

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def startService(self) -> None:
        super().startService()
        self.pool.start()

    def stopService(self) -> None:
        super().stopService()
        # Pool threads finish their current transaction before stop() returns.
        self.pool.stop()
        self.engine.dispose()

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        if not self.pool.started:
            self.pool.start()
        return deferToThreadPool(self.reactor, self.pool, self.run_sync, fn, *args, **kwargs)

    def run_exclusive(self, fn: Callable[..., T], *args: Any) -> Deferred[T]:
        """Like ``run``, for check-then-act work that must not lose updates under concurrency
        (attempt limits): on SQLite the transaction takes the write lock before its first
        read (``BEGIN IMMEDIATE``; SQLite ignores ``FOR UPDATE``); on PostgreSQL ``fn`` locks
        its rows with ``SELECT ... FOR UPDATE``."""
        return self.run(_write_locked, fn, self.is_sqlite, *args)

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The same transaction, on the calling thread: for CLI tools and pool threads only.

        On PostgreSQL a transaction that fails because the server was lost (a
        failover) is run again on a new connection, for up to ``reconnect_for``
        seconds; a commit whose answer was lost raises CommitOutcomeUnknown."""
        if self.is_sqlite:
            with self.sessions.begin() as session:
                return fn(session, *args, **kwargs)
        deadline = time.monotonic() + self.reconnect_for
        delay = 0.1
        while True:
            try:
                return self._once(fn, *args, **kwargs)
            except DBAPIError as e:
                if not lost_connection(e) or time.monotonic() + delay > deadline:
                    raise
                log.warn("database connection lost ({why}); retrying in {delay:.1f} s",
                         why=type(e.orig).__name__, delay=delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _once(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.sessions() as session:
            session.begin()
            result = fn(session, *args, **kwargs)
            try:
                session.commit()
            except DBAPIError as e:
                if lost_connection(e):
                    raise CommitOutcomeUnknown(str(e.orig).splitlines()[0]) from e
                raise
            return result

    def create_all(self) -> None:
        """Tables for tests and throwaway databases; real ones use ``hotline db upgrade``."""
        from storage.models import load_all_tables

        load_all_tables().create_all(self.engine)
