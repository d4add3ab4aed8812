"""The platform database, used only from a thread pool so the reactor never waits on it."""
from __future__ import annotations

from typing import Any, TypeVar
from collections.abc import Callable

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")


def make_engine(url: str, pool_size: int = 4) -> Engine:
    """An engine for SQLite (WAL, foreign keys) or PostgreSQL by URL."""
    if url.startswith("sqlite"):
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


class Database(Service):
    """Runs session work in its own thread pool and hands back Deferreds.

    ``run(fn, ...)`` calls ``fn(session, ...)`` inside one transaction on a pool
    thread; the transaction commits when ``fn`` returns and rolls back if it raises.
    """

    name = "database"

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

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The same transaction, on the calling thread: for CLI tools and pool threads only."""
        with self.sessions.begin() as session:
            return fn(session, *args, **kwargs)

    def create_all(self) -> None:
        """Tables for tests and throwaway databases; real ones use ``hotline db upgrade``."""
        from storage.models import load_all_tables

        load_all_tables().create_all(self.engine)
