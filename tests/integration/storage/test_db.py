"""The platform database: work runs off the reactor thread, in one transaction per call,
on SQLite and on PostgreSQL alike."""
import threading

import pytest
import sqlalchemy as sa

from storage.db import Database

_meta = sa.MetaData()
_items = sa.Table("items", _meta, sa.Column("id", sa.Integer, primary_key=True),
                  sa.Column("name", sa.String(20), nullable=False))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'platform.db'}"
    return request.getfixturevalue("pg_url")


def run_blocking(d, timeout=20.0):
    """Wait for a Deferred whose work happens on pool threads (no reactor needed)."""
    done = threading.Event()
    box = {}
    d.addBoth(lambda r: (box.setdefault("r", r), done.set()))
    assert done.wait(timeout), "database call did not finish"
    result = box["r"]
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result


def test_run_is_off_the_calling_thread_and_commits(db_url):
    """run() executes on a pool thread and commits when the function returns."""
    db = Database(db_url, CallbacksOnWorkerThread(), threads=2)
    _meta.create_all(db.engine)
    caller = threading.get_ident()

    def insert(session):
        session.execute(_items.insert().values(name="a"))
        return threading.get_ident()

    db.startService()
    try:
        worker = run_blocking(db.run(insert))
        assert worker != caller
        assert db.run_sync(lambda s: s.execute(sa.select(sa.func.count()).select_from(_items)).scalar()) == 1
    finally:
        db.stopService()


def test_run_rolls_back_on_error(db_url):
    """A function that raises leaves nothing behind, and its error reaches the caller."""
    db = Database(db_url, CallbacksOnWorkerThread(), threads=1)
    _meta.create_all(db.engine)

    class Boom(Exception):
        pass

    def insert_then_fail(session):
        session.execute(_items.insert().values(name="b"))
        raise Boom()

    db.startService()
    try:
        with pytest.raises(Boom):
            run_blocking(db.run(insert_then_fail))
        assert db.run_sync(lambda s: s.execute(sa.select(sa.func.count()).select_from(_items)).scalar()) == 0
    finally:
        db.stopService()


class CallbacksOnWorkerThread:
    """A reactor stand-in whose callFromThread runs at once, so db.run needs no running reactor."""

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)


def test_migrations_create_every_room_table(db_url):
    """`hotline db upgrade` (every room's Alembic branch) builds the tables the models declare."""
    from storage.migrate import upgrade
    from storage.models import load_all_tables

    upgrade(db_url)
    engine = sa.create_engine(db_url)
    try:
        present = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    declared = set(load_all_tables().tables)
    assert declared <= present, f"missing tables: {sorted(declared - present)}"
    upgrade(db_url)  # idempotent
