"""The outbox's hot lookups on PostgreSQL use their indexes on tables never analysed.

A new installation's outbox, or one a campaign grew since autovacuum last analysed
it, has no statistics: the planner then guesses that a list of keys matches a large
share of the table and scanned sms_part and sms_message whole for every batch of
receipts, roll-ups, part updates and accepts (issue 18, point 6: a quarter of the
server's statement time in the one-daemon bench).
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from sms.outbox.sql import HotSql
from storage.db import make_engine
from storage.models import load_all_tables

ROWS = 20000  # the bench's outbox size: a scan of a whole table looks dear next to an index


@pytest.fixture
def engine(pg_url):
    engine = make_engine(pg_url)
    load_all_tables().create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO sms_message (id, center, klass, priority, template, params, text,"
            " sensitive, destination, idem_key, part_count, state, attempts,"
            " possible_duplicates, next_attempt_at, valid_until, created_at)"
            " SELECT i, 'demo', 'bulk', 1, 'bench', '{}', repeat('x', 120), 0,"
            " '1390' || lpad(i::text, 7, '0'), 'k' || i, 1, 'submitted', 0, 0, 0, 9e9, 0"
            f" FROM generate_series(1, {ROWS}) AS i")
        conn.exec_driver_sql(
            "INSERT INTO sms_part (id, message_id, seq, payload, data_coding, esm_class,"
            " state, smpp_id, smsc)"
            " SELECT i, i, 0, decode(repeat('ab', 70), 'hex'), 8, 0, 'submitted',"
            f" 'id' || i, 'bench' FROM generate_series(1, {ROWS}) AS i")
    yield engine
    engine.dispose()


def _plan(conn, sql: str, params) -> str:
    return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, params))


def test_hot_lookups_use_indexes_without_statistics(engine):
    """With 128 keys per batch and no ANALYZE yet, the receipts' lookup by SMSC id, the
    roll-up's read of messages with their parts, the parts' updates from arrays and the
    accept's count per destination read their rows through indexes, never a sequential
    scan of sms_part or sms_message."""
    hot = HotSql(engine.dialect.paramstyle, sqlite=False)
    ids = list(range(1000, 1128))
    with engine.connect() as conn:
        analysed = conn.execute(sa.text(
            "select count(*) from pg_stat_user_tables where relname in ('sms_message',"
            " 'sms_part') and (last_analyze is not null or last_autoanalyze is not null)"))
        assert analysed.scalar() == 0
        plans = {}
        for name, sql, params, keys in (
                ("receipts", hot.parts_by_smpp_id, (), [f"id{i}" for i in ids]),
                ("rollup", hot.rollup, (), ids),
                ("per destination", hot.recent_per_destination, (-1.0,),
                 [f"1390{i:07d}" for i in ids])):
            text, values = hot.driver.with_in(sql, keys)
            plans[name] = _plan(conn, text, (*params, *values))
        plans["part_ok"] = _plan(conn, hot.part_ok, hot.by_id_params(
            [("x", "bench", 1.0, i) for i in ids]))
        plans["part_receipt"] = _plan(conn, hot.part_receipt, hot.by_id_params(
            [("delivered", None, 1.0, i) for i in ids]))
    for name, plan in plans.items():
        assert "Seq Scan" not in plan, f"{name}:\n{plan}"
