"""The platform database: work runs off the reactor thread, in one transaction per call,
on SQLite and on PostgreSQL alike."""
import threading

import pytest
import sqlalchemy as sa

from storage.db import Database, make_engine

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


def test_libpq_multi_host_url_becomes_the_drivers_host_list():
    """A libpq multi-host URL reaches the driver as its host list, in order, with
    target_session_attrs kept, so the driver connects to whichever host is writable."""
    from storage.db import engine_url

    url = engine_url("postgresql://u:p@127.0.0.1:5001,127.0.0.2:5002/hotline"
                     "?target_session_attrs=read-write")
    args = sa.create_engine(url).dialect.create_connect_args(url)[1]
    assert (args["host"], args["port"]) == ("127.0.0.1,127.0.0.2", "5001,5002")
    assert args["target_session_attrs"] == "read-write" and args["dbname"] == "hotline"
    assert engine_url("postgresql://u@h:5432/db").host == "h"


def test_a_transaction_that_lost_its_server_is_run_again(pg_url):
    """A connection killed under a transaction (as in a failover) is replaced and the
    work is done once, instead of failing the caller."""
    db = Database(pg_url, CallbacksOnWorkerThread(), threads=1, reconnect_for=10)
    _meta.create_all(db.engine)
    attempts = []

    def insert_once_killed(session):
        attempts.append(1)
        if len(attempts) == 1:
            session.execute(sa.text("select pg_terminate_backend(pg_backend_pid())"))
        session.execute(_items.insert().values(name="a"))

    try:
        db.run_sync(insert_once_killed)
        assert len(attempts) == 2
        assert db.run_sync(lambda s: s.execute(sa.select(sa.func.count()).select_from(_items)).scalar()) == 1
    finally:
        db.stopService()


def test_postgresql_statements_are_planned_with_their_values(pg_url):
    """No server-side prepared statements (whose generic plan ignored the idempotency-key
    index as the outbox grew): psycopg's prepare threshold is off on every connection."""
    db = Database(pg_url, CallbacksOnWorkerThread(), threads=1)
    try:
        with db.engine.connect() as conn:
            assert conn.connection.driver_connection.prepare_threshold is None
    finally:
        db.engine.dispose()


@pytest.mark.parametrize(("kind", "values"), [
    ("text", ["12", "ab", "", "NULL", 'quo"te', "back\\slash", " s p,{}", "短信", None]),
    ("text", ["0A1F", "1764547200"]),
    ("int8", [1, -2, 2**40]), ("int8", [3, None]), ("int8", []),
    ("float8", [1.5, 1764547200.123456, -0.0, 1e300]), ("float8", [None, 2.0])])
def test_array_literals_reach_postgresql_unchanged(pg_url, kind, values):
    """The hot statements bind lists as one text array (storage.driver_sql.array_literal):
    PostgreSQL reads back every element as given, quotes, backslashes, separators, an
    empty string, the word NULL and None (SQL NULL) included."""
    from storage.driver_sql import array_literal

    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            got = conn.exec_driver_sql(f"SELECT %s::{kind}[]", (array_literal(values),)).scalar()
        assert got == values
    finally:
        engine.dispose()


def test_sqlite_files_and_log_file_are_owner_only(tmp_path):
    """The database, its WAL and shared-memory files and the log file are created 0600,
    whatever the umask; an existing world-readable database is tightened."""
    import os
    import stat

    from common.logs import open_log_file
    from storage.db import Database

    old = os.umask(0o022)
    try:
        loose = tmp_path / "loose.db"
        loose.write_bytes(b"")
        os.chmod(loose, 0o644)
        for name in ("p.db", "loose.db"):
            db = Database(f"sqlite:///{tmp_path / name}", None, 1)
            db.run_sync(lambda s: s.connection().exec_driver_sql("CREATE TABLE t (n int)"))
            files = [p for p in tmp_path.iterdir() if p.name.startswith(name)]
            assert {p.name for p in files} >= {name, name + "-wal", name + "-shm"}
            assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
            db.engine.dispose()
        open_log_file(str(tmp_path / "daemon.log")).close()
        assert stat.S_IMODE((tmp_path / "daemon.log").stat().st_mode) == 0o600
    finally:
        os.umask(old)
