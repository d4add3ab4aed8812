"""The platform database, used only from a thread pool so the reactor never waits on it."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")


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
    extra = {}
    if make_url(url).get_driver_name() == "psycopg2":
        # executemany UPDATEs in pages (execute_batch), not one round trip per row.
        extra["executemany_mode"] = "values_plus_batch"
    return create_engine(url, pool_size=pool_size, max_overflow=2, pool_pre_ping=True, **extra)


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

    def __init__(self, url: str, reactor: Any, threads: int = 4):
        self.url = url
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
        """The same transaction, on the calling thread: for CLI tools and pool threads only."""
        with self.sessions.begin() as session:
            return fn(session, *args, **kwargs)

    def create_all(self) -> None:
        """Tables for tests and throwaway databases; real ones use ``hotline db upgrade``."""
        from storage.models import load_all_tables

        load_all_tables().create_all(self.engine)
