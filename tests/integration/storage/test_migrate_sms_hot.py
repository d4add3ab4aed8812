"""sms_0004: the outbox's fill factor and narrowed indexes, migrated up from an outbox in use and
back down, the same as the tables the models create, and still serving the claim, the crash
recovery and the expiry sweep."""
import re

import pytest
import sqlalchemy as sa
from alembic import command

from sms.outbox.sql import HotSql, M
from sms.outbox.states import QUEUED, SUBMITTED, SUBMITTING
from storage.db import Database
from storage.migrate import alembic_config, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'platform.db'}"
    return request.getfixturevalue("pg_url")


def _engine(url):
    return Database(url, None, 1).engine


def _schema(engine) -> dict:
    """Index definitions of the outbox's two tables (normalised), and their storage options."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(sa.text(
                "select name, sql from sqlite_master where type = 'index' and sql is not null"
                " and tbl_name in ('sms_message', 'sms_part')")).all()
            options = {}
        else:
            rows = conn.execute(sa.text(
                "select indexname, indexdef from pg_indexes"
                " where tablename in ('sms_message', 'sms_part')")).all()
            options = dict(conn.execute(sa.text(
                "select relname, coalesce(array_to_string(reloptions, ','), '') from pg_class"
                " where relname in ('sms_message', 'sms_part')")).all())
    return {"indexes": {name: re.sub(r'[\s"]+', "", sql).lower() for name, sql in rows},
            "options": options}


def _add_messages(engine) -> None:
    """An outbox in use: a queued message, one in flight and a delivered one, with parts."""
    with engine.begin() as conn:
        for i, (state, smpp_id) in enumerate(((QUEUED, None), (SUBMITTED, "a1"),
                                              ("delivered", "a2")), start=1):
            conn.execute(sa.text(
                "insert into sms_message (id, center, klass, priority, template, params, text,"
                " sensitive, destination, idem_key, part_count, state, attempts,"
                " possible_duplicates, next_attempt_at, valid_until, created_at) values"
                " (:i, 'demo', 'bulk', 1, 't', '{}', 'x', 0, '13900000001', :k, 1, :s, 0, 0,"
                " 0, 1e12, 0)"), {"i": i, "k": f"k{i}", "s": state})
            conn.execute(sa.text(
                "insert into sms_part (message_id, seq, payload, data_coding, esm_class, state,"
                " smpp_id) values (:i, 1, :p, 8, 0, :s, :m)"),
                {"i": i, "p": b"x", "s": state, "m": smpp_id})


def test_sms_0004_upgrades_an_outbox_in_use_and_downgrades_cleanly(db_url):
    """From sms_0003 with messages in it, the upgrade rebuilds the ready index in the claim's
    order (on PostgreSQL: only messages in flight, the SMSC-id index only parts with an id, pages
    filled to 70 %); the rows stay; the downgrade restores sms_0003's indexes and options, and
    the upgrade runs again after it."""
    upgrade(db_url)
    command.downgrade(alembic_config(db_url), "sms_0003")  # every other room at its head
    engine = _engine(db_url)
    try:
        old = _schema(engine)
        _add_messages(engine)
        upgrade(db_url)
        new = _schema(engine)
        ready = new["indexes"]["ix_sms_message_ready"]
        assert "(state,prioritydesc,next_attempt_at,id)" in ready
        if engine.dialect.name == "postgresql":
            assert "where" in ready and "'queued'" in ready and "'delivered'" not in ready
            assert "where(smpp_idisnotnull)" in new["indexes"]["ix_sms_part_smpp_id"]
            assert new["options"] == {"sms_message": "fillfactor=70", "sms_part": "fillfactor=70"}
        else:
            assert "where" not in ready
            assert new["indexes"]["ix_sms_part_smpp_id"] == old["indexes"]["ix_sms_part_smpp_id"]
        with engine.connect() as conn:
            assert conn.execute(sa.text(
                "select id, state from sms_message order by id")).all() == [
                (1, QUEUED), (2, SUBMITTED), (3, "delivered")]
        command.downgrade(alembic_config(db_url), "sms_0003")
        assert _schema(engine) == old
        upgrade(db_url)
        assert _schema(engine) == new
    finally:
        engine.dispose()


def test_migrated_outbox_tables_are_the_ones_the_models_create(db_url):
    """The benchmarks and tests build tables from the models (create_all), the installations
    through the migrations: both give the same sms indexes and storage options (the
    console's migrations add indexes of their own to sms_message, outside these models)."""
    from storage.models import load_all_tables

    tables = load_all_tables()
    outbox = [tables.tables["sms_message"], tables.tables["sms_part"]]
    declared = {ix.name for table in outbox for ix in table.indexes}

    def declared_schema():
        schema = _schema(engine)
        schema["indexes"] = {k: v for k, v in schema["indexes"].items() if k in declared}
        return schema

    upgrade(db_url)
    engine = _engine(db_url)
    try:
        migrated = declared_schema()
        assert set(migrated["indexes"]) == declared
        with engine.begin() as conn:
            conn.execute(sa.text("drop table sms_part"))
            conn.execute(sa.text("drop table sms_message"))
        tables.create_all(engine, tables=outbox)
        assert declared_schema() == migrated
    finally:
        engine.dispose()


def _plan(conn, sql: str, params=()) -> str:
    explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
    return "\n".join(str(r[-1]) if conn.dialect.name == "sqlite" else r[0]
                     for r in conn.exec_driver_sql(explain + sql, params))


def test_claim_recovery_and_expiry_are_served_by_the_ready_index(db_url):
    """The claim reads the ready index in its own order (no sort of the queued messages); the
    crash recovery's and the expiry sweep's lookups by state use it too (on PostgreSQL the
    partial index's states cover theirs). Sequential scans are disabled on PostgreSQL so that
    the few test rows do not hide an index the planner could not use."""
    upgrade(db_url)
    engine = _engine(db_url)
    try:
        _add_messages(engine)
        sqlite = engine.dialect.name == "sqlite"
        hot = HotSql(engine.dialect.paramstyle, sqlite)
        with engine.connect() as conn:
            if not sqlite:
                conn.exec_driver_sql("SET enable_seqscan = off")
            due = _plan(conn, hot.due, (1.0, 128))
            assert "ix_sms_message_ready" in due
            assert "Sort" not in due and "TEMP B-TREE" not in due
            literal = {"literal_binds": True}
            recovery = sa.select(M.c.id).where(
                M.c.state == SUBMITTING, (M.c.claimed_by == "d1") | M.c.claimed_by.is_(None))
            expiry = sa.select(M.c.id).where(
                ((M.c.state == QUEUED) & (M.c.valid_until <= 5.0))
                | ((M.c.state == SUBMITTED) & (M.c.valid_until <= 1.0)))
            # SQLite scans for the expiry's OR with either index: only PostgreSQL's is asserted
            for query in (recovery,) if sqlite else (recovery, expiry):
                sql = str(query.compile(dialect=engine.dialect, compile_kwargs=literal))
                assert "ix_sms_message_ready" in _plan(conn, sql)
    finally:
        engine.dispose()
