"""The outbox's tables and the statements every message goes through, built once.

The hot statements are in the driver's own SQL (storage.driver_sql); Core
statements serve the rest. Every room of the outbox runs its SQL through here.
"""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, insert, select, update

from sms.outbox.states import QUEUED, SUBMITTED, SUBMITTING
from sms.tables import (
    SmsAlertCursor,
    SmsCounter,
    SmsMessage,
    SmsOptOut,
    SmsPart,
    SmsRepaymentDue,
    SmsUnmatchedReceipt,
)
from storage.driver_sql import DriverSql, array_literal
from storage.models import table_of

M = table_of(SmsMessage)
P = table_of(SmsPart)
U = table_of(SmsUnmatchedReceipt)
OPTOUT = table_of(SmsOptOut)
C = table_of(SmsCounter)
A = table_of(SmsAlertCursor)
R = table_of(SmsRepaymentDue)


def ids(name: str = "ids"):
    return bindparam(name, expanding=True)


# Statements built once: a transaction then only binds values, instead of building a
# statement and coercing every value of its IN list each time.
SENSITIVE = select(M.c.id).where(M.c.id.in_(ids()), M.c.sensitive == 1)
SCRUBBED = "(scrubbed: sensitive text removed once submitted)"
SCRUB_TEXT = update(M).where(M.c.id.in_(ids())).values(text=SCRUBBED, params="{}")
SCRUB_PARTS = update(P).where(P.c.message_id.in_(ids())).values(payload=b"")


LIMITED = frozenset({"transaction", "bulk"})  # classes under the per-destination limit
_VALUE = object()  # a placeholder's slot in an INSERT's VALUES row


def _literal(token: str, mark: str):
    """A VALUES token as COPY needs it: the placeholder, a quoted string or an integer."""
    if token == mark:
        return _VALUE
    if token.startswith("'"):
        return token[1:-1]
    return int(token)


class HotSql:
    """The statements every message goes through (accept, claim, submit results, receipts,
    roll-up), in the driver's own SQL (storage.driver_sql)."""

    def __init__(self, paramstyle: str, sqlite: bool):
        self.sqlite = sqlite
        d = self.driver = DriverSql(paramstyle, arrays=not sqlite)
        lock = "" if sqlite else " FOR UPDATE SKIP LOCKED"  # instances claim disjoint rows
        self.due = d.sql(
            "SELECT id, center, klass, priority, destination, valid_until FROM sms_message"
            f" WHERE state = '{QUEUED}' AND next_attempt_at <= ?"
            " ORDER BY priority DESC, next_attempt_at, id LIMIT ?" + lock)
        self.claim = d.sql(f"UPDATE sms_message SET state = '{SUBMITTING}', claimed_by = ?"
                           " WHERE id IN ({in})")
        self.unsent_parts = d.sql(
            "SELECT id, message_id, payload, data_coding, esm_class FROM sms_part"
            f" WHERE message_id IN ({{in}}) AND state = '{QUEUED}' ORDER BY message_id, seq")
        self.mark = d.sql(f"UPDATE sms_part SET state = '{SUBMITTING}'"
                          f" WHERE message_id IN ({{in}}) AND state = '{QUEUED}'")
        # error_code cleared: an earlier attempt's error no longer describes the part
        self.part_ok = self._by_id("sms_part", f"state = '{SUBMITTED}', error_code = NULL",
                                   (("smpp_id", "text"), ("smsc", "text"),
                                    ("submitted_at", "float8")))
        self.early = d.sql("SELECT id, smpp_id, smsc, state, error, done_at, destination"
                           " FROM sms_unmatched_receipt WHERE smpp_id IN ({in})")
        if sqlite:
            self.parts_by_smpp_id = d.sql(
                "SELECT p.id, p.message_id, p.state, p.smpp_id, p.smsc, m.destination"
                " FROM sms_part p JOIN sms_message m ON m.id = p.message_id"
                " WHERE p.smpp_id IN ({in})")
        else:
            # Looked up one key at a time (LATERAL ... OFFSET 0 keeps the subquery apart),
            # so that the planner prices one value's lookup, not the list's: on tables
            # never analysed (a new installation, or an outbox that grew since its last
            # ANALYZE) it guesses that a list of 128 keys matches most of the table and
            # scans both tables whole (measured: 8 ms per receipt batch at 12,000 rows, a
            # quarter of the server's statement time in the one-daemon bench).
            self.parts_by_smpp_id = d.sql(
                "SELECT p.id, p.message_id, p.state, p.smpp_id, p.smsc,"
                " (SELECT m.destination FROM sms_message m WHERE m.id = p.message_id)"
                " FROM unnest({in}::text[]) AS k(smpp_id) CROSS JOIN LATERAL"
                " (SELECT id, message_id, state, smpp_id, smsc FROM sms_part"
                "  WHERE smpp_id = k.smpp_id OFFSET 0) AS p")
        self.part_receipt = self._by_id("sms_part", "", (
            ("state", "text"), ("error_code", "text"), ("done_at", "float8")))
        # On PostgreSQL each message's parts looked up by it, as the receipts' lookup above.
        parts = ("sms_part p ON p.message_id = m.id" if sqlite else
                 "LATERAL (SELECT state, error_code FROM sms_part"
                 " WHERE message_id = m.id OFFSET 0) AS p ON true")
        self.rollup = d.sql(
            "SELECT m.id, m.state, m.attempts, m.valid_until, m.sensitive, p.state, p.error_code"
            f" FROM sms_message m JOIN {parts} WHERE m.id IN ({{in}})")
        self.submitted = d.sql(f"UPDATE sms_message SET state = '{SUBMITTED}', submitted_at = ?"
                               " WHERE id IN ({in})")
        self.final = d.sql("UPDATE sms_message SET state = ?, final_at = ?, error = ?"
                           " WHERE id IN ({in})")
        # Accepting. By (center, key): the unique index serves it only with the center given.
        self.by_idem_key = d.sql("SELECT id, center, idem_key, part_count FROM sms_message"
                                 " WHERE center = ? AND idem_key IN ({in})")
        self.opted_out = d.sql("SELECT center, mobile FROM sms_optout"
                               " WHERE center = ? AND mobile IN ({in})")
        # The per-destination hourly limit: messages of the limited classes since a time.
        limited = ", ".join(repr(k) for k in sorted(LIMITED))
        if sqlite:
            self.recent_per_destination = d.sql(
                f"SELECT destination, count(*) FROM sms_message WHERE created_at > ?"
                f" AND klass IN ({limited}) AND destination IN ({{in}}) GROUP BY destination")
        else:  # one destination at a time, as the receipts' lookup above
            self.recent_per_destination = d.sql(
                "SELECT d.destination, c.n FROM (VALUES (?::float8)) AS s(since)"
                " CROSS JOIN unnest({in}::text[]) AS d(destination) CROSS JOIN LATERAL"
                " (SELECT count(*) AS n FROM sms_message WHERE destination = d.destination"
                f"  AND created_at > s.since AND klass IN ({limited}) OFFSET 0) AS c"
                " WHERE c.n > 0")
        # PostgreSQL takes the new messages' ids from their sequence first and writes them
        # with the rows: no lookup by key afterwards to learn them.
        self.new_message_ids = d.sql(
            "SELECT nextval(pg_get_serial_sequence('sms_message', 'id'))"
            " FROM generate_series(1, ?)")
        self.insert_message = d.sql(
            "INSERT INTO sms_message (center, klass, priority, template, params, text, sensitive,"
            " destination, idem_key, part_count, state, attempts, possible_duplicates,"
            " next_attempt_at, valid_until, created_at"
            + ("" if sqlite else ", id") +
            f") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{QUEUED}', 0, 0, ?, ?, ?"
            + ("" if sqlite else ", ?") + ")")
        self.insert_part = d.sql(
            "INSERT INTO sms_part (message_id, seq, payload, data_coding, esm_class, state)"
            f" VALUES (?, ?, ?, ?, ?, '{QUEUED}')")

    def _by_id(self, table: str, fixed: str, columns: tuple[tuple[str, str], ...]) -> str:
        """An UPDATE of rows by id, each with its own values for ``columns`` (name,
        PostgreSQL type), for ``update_by_id``. On SQLite one row's statement, run as an
        executemany (its rows cost no round trip); on PostgreSQL, where an executemany is a
        statement per row, each parsed, planned and run by the server, one statement
        joining the rows as arrays (``unnest``)."""
        sets = [fixed] if fixed else []
        if self.sqlite:
            sets += [f"{name} = ?" for name, _ in columns]
            return self.driver.sql(f"UPDATE {table} SET {', '.join(sets)} WHERE id = ?")
        sets += [f"{name} = v.{name}" for name, _ in columns]
        arrays = ", ".join(f"?::{kind}[]" for _, kind in (*columns, ("id", "int8")))
        names = ", ".join(name for name, _ in (*columns, ("id", "")))
        # The ids once more as a list: the primary key then finds the rows (its estimate is
        # exact), where the join alone was planned as a scan of a table never analysed.
        return self.driver.sql(f"UPDATE {table} SET {', '.join(sets)} FROM unnest({arrays})"
                               f" AS v({names}) WHERE {table}.id = ANY(?::int8[])"
                               f" AND {table}.id = v.id")

    def update_by_id(self, session, sql: str, rows: list[tuple]) -> None:
        """Run an UPDATE from ``_by_id`` for ``rows``, each its columns' values then the id
        (no id twice: PostgreSQL would apply one of them)."""
        if self.sqlite:
            self.run(session, sql, rows)
        elif rows:
            self.run(session, sql, self.by_id_params(rows))

    @staticmethod
    def by_id_params(rows: list[tuple]) -> tuple:
        """PostgreSQL's parameters of an UPDATE from ``_by_id``: one array per column, then
        the ids once more."""
        columns = [array_literal(column) for column in zip(*rows, strict=True)]
        return (*columns, columns[-1])

    def run(self, session, sql: str, params=(), ids: Sequence = ()):
        """Execute on the session's connection; ``ids`` fill the statement's IN list, after
        ``params``. A list of tuples as ``params`` is an executemany."""
        if "{in}" in sql:
            sql, values = self.driver.with_in(sql, ids)
            params = (*params, *values)
        return session.connection().exec_driver_sql(sql, params)

    def rows(self, session, sql: str, params=(), ids: Sequence = ()) -> list:
        """``run`` a query and take all its rows at once: one fetch from the driver instead
        of one per row (half the cost of iterating the result, on every message's rows)."""
        return self.run(session, sql, params, ids).fetchall()

    def insert(self, session, sql: str, rows: list[tuple]) -> None:
        """Insert ``rows`` with ``sql`` (an INSERT of one VALUES row, ``?`` for each value
        and literals for constants). On PostgreSQL through COPY, one stream for the
        batch instead of a statement per row; on SQLite as an executemany, whose rows
        cost no round trip."""
        if self.sqlite:
            self.run(session, sql, rows)
            return
        head, row = sql.split(" VALUES ", 1)
        table_columns = head[len("INSERT INTO "):]
        slots = [_literal(t.strip(), self.driver.mark) for t in row.strip()[1:-1].split(",")]
        cursor = session.connection().connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table_columns} FROM STDIN") as copy:
            for values in rows:
                it = iter(values)
                copy.write_row([next(it) if slot is _VALUE else slot for slot in slots])

    def insert_messages(self, session, rows: list[tuple], keys: list[tuple[str, str]]) -> list[int]:
        """Insert messages (``insert_message``'s values, no id) whose (center, idempotency
        key) are ``keys``, in order; their new ids, in order. SQLite looks them up by key
        after an executemany (RETURNING in parameter order costs it a statement per row);
        PostgreSQL draws them from the sequence and copies them in with the rows."""
        if self.sqlite:
            self.insert(session, self.insert_message, rows)
            new_ids = {(center, key): message_id for message_id, center, key, _parts
                       in self.by_center(session, self.by_idem_key, set(keys))}
            return [new_ids[key] for key in keys]
        ids = [i for (i,) in self.rows(session, self.new_message_ids, (len(rows),))]
        self.insert(session, self.insert_message,
                    [(*row, i) for row, i in zip(rows, ids, strict=True)])
        return ids

    def by_center(self, session, sql: str, pairs: set[tuple[str, str]]) -> list:
        """Rows by (center, key) pairs, one query per center, so that the unique index on
        (center, key) serves it."""
        by_center: dict[str, list[str]] = {}
        for center, key in pairs:
            by_center.setdefault(center, []).append(key)
        return [row for center, keys in by_center.items()
                for row in self.rows(session, sql, (center,), keys)]


def bump(session, name: str, n: int) -> None:
    """Add ``n`` to a named counter (sms_counter)."""
    row = session.execute(select(C.c.value).where(C.c.name == name)).first()
    if row is None:
        session.execute(insert(C).values(name=name, value=n))
    else:
        session.execute(update(C).where(C.c.name == name).values(value=C.c.value + n))
