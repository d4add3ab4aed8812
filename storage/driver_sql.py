"""Statements in the driver's own SQL, for the few transactions that run once per SMPP window.

SQLAlchemy Core compiles a statement once, but each execution still builds its
parameters row by row, runs bind processors and renders expanding IN lists; on
the outbox's hot path that was two thirds of the database thread's time, all of
it holding the GIL the reactor needs (measured: 25 us of CPU per message to record
submit results through Core, 8 us through the driver). The few statements that
run per window are written here as plain SQL, with ``?`` placeholders turned into
the driver's own (``?`` for sqlite3, ``%s`` for psycopg2) and run with
``Connection.exec_driver_sql``. Tables, migrations and every other statement stay
in SQLAlchemy. The SQL is portable except where a statement says why PostgreSQL runs
its own form (sms.outbox.sql: claims that skip locked rows, COPY, updates from arrays).
"""
from __future__ import annotations

from collections.abc import Sequence


class DriverSql:
    """Turns ``?``-placeholder SQL into the driver's paramstyle; ``{in}`` marks an IN list."""

    def __init__(self, paramstyle: str):
        if paramstyle == "qmark":
            self.mark = "?"
        elif paramstyle in ("format", "pyformat"):
            self.mark = "%s"
        else:
            raise ValueError(f"unsupported DB-API paramstyle {paramstyle!r}")

    def sql(self, text: str) -> str:
        """Placeholders for this driver; the text must hold no other ``?`` (or ``%``)."""
        if "%" in text:
            raise ValueError("a literal % would be read as a placeholder by format drivers")
        return text.replace("?", self.mark)

    def with_in(self, text: str, values: Sequence) -> str:
        """``text`` (already through ``sql``) with ``{in}`` replaced by one mark per value
        (``NULL`` for none: ``IN (NULL)`` matches no row)."""
        return text.replace("{in}", ", ".join([self.mark] * len(values)) or "NULL")
