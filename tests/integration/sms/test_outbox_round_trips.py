"""Statements per transaction on the dispatcher's hot path: a batch of submit results or
receipts costs the same number of statements however many messages it carries, and on
PostgreSQL the same statement texts.

On PostgreSQL an executemany is one statement per row, each parsed, planned and run by
the server: that was most of the progress lane's time (issue 18, point 6). Counted as
the server sees them: an executemany counts its rows on PostgreSQL and once on SQLite,
whose rows cost no round trip.
"""
from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from sms.outbox.outbox import Outbox
from sms.outbox.records import SubmitResult
from sms.outbox.states import DELIVERED, SUBMITTED
from sms.outbox.testing import split_encode
from sms.tables import SmsPart
from tests.support.outbox import clock, db, db_url, make_config, msg, result, states  # noqa: F401


@contextlib.contextmanager
def statements(db):
    """A list that grows by one per statement the database server runs."""
    seen: list[str] = []
    per_row = not db.is_sqlite

    def count(conn, cursor, statement, parameters, context, executemany):
        rows = len(parameters) if executemany and per_row else 1
        seen.extend([statement] * rows)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _send_and_deliver(db, clock, n: int, first: int) -> tuple[list[str], list[str]]:
    """Statements of the one transaction recording ``n`` messages' submit results, and of
    the one recording their receipts."""
    box = Outbox(db, clock, make_config(), encode=split_encode, batch_turns=True)
    accepted = [result(box.accept(msg(f"k{first + i}", dest=f"1390000{first + i:04d}")))
                for i in range(n)]
    clock.advance(0)
    claimed = result(box.claim(n))
    assert len(claimed) == n
    with statements(db) as submits:
        box.record(*(SubmitResult(m.part_ids[0], m.message_id, "ok", smpp_id=f"id{m.part_ids[0]}",
                                  smsc="s1") for m in claimed))
        clock.advance(0)  # the lane's turn ends: one transaction for the batch
    assert {states(db)[a.message_id] for a in accepted} == {SUBMITTED}
    with statements(db) as receipts:
        done = [box.receipt(f"id{m.part_ids[0]}", "s1", "DELIVRD", None, None) for m in claimed]
        clock.advance(0)
        for d in done:
            result(d)
    assert {states(db)[a.message_id] for a in accepted} == {DELIVERED}
    return submits, receipts


def test_submit_results_and_receipts_cost_statements_per_batch_not_per_message(db, clock):
    """Forty messages' submit results, then their receipts, run as many statements as
    three messages' do: the parts are written by one statement per batch, not one each."""
    few = _send_and_deliver(db, clock, 3, 0)
    many = _send_and_deliver(db, clock, 40, 100)
    assert [len(s) for s in many] == [len(s) for s in few]


def test_postgresql_runs_the_same_statement_texts_whatever_the_batch(db, clock):
    """On PostgreSQL the hot statements bind a list of ids as one array (``= ANY(%s)``), not
    a placeholder per id: their text does not change with the batch, so neither the driver
    nor the server parses a new statement for every size (the driver's parse was a tenth of
    the database threads' hold on the interpreter)."""
    if db.is_sqlite:
        pytest.skip("an IN list costs SQLite no round trip and no parse by a server")
    few = _send_and_deliver(db, clock, 3, 0)
    many = _send_and_deliver(db, clock, 40, 100)
    assert many == few


def test_postgresql_accept_learns_new_ids_without_a_second_lookup_by_key(db, clock):
    """On PostgreSQL accepting a batch reads sms_message by idempotency key once (the
    dedupe), not again after the insert to learn the new ids: they come from the sequence
    and are copied in with the rows. Every message still gets its own id, the one its
    parts point to."""
    if db.is_sqlite:
        pytest.skip("SQLite learns its ids by key after an executemany (no COPY, no sequence)")
    box = Outbox(db, clock, make_config(), encode=split_encode)
    with statements(db) as accepting:  # one transaction
        accepted = box.accept_blocking(
            [msg(f"k{i}", dest=f"1390000{i:04d}", parts=2) for i in range(30)])
    by_key = [s for s in accepting if "idem_key" in s and s.lstrip().startswith("SELECT")]
    assert len(by_key) == 1
    ids = [a.message_id for a in accepted]
    assert len(set(ids)) == 30
    with db.sessions() as s:
        owners = s.execute(sa.select(SmsPart.message_id)).scalars().all()
    assert sorted(owners) == sorted(ids * 2)
    assert set(states(db)) == set(ids)
