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


def array_literal(values: Sequence) -> str:
    """A one-dimensional PostgreSQL array in its text form (``{1,2}``, ``{"a","b"}``), for a
    parameter the statement casts or compares to an array. The driver dumps a list element
    by element in Python, holding the interpreter the reactor needs (measured: a tenth of
    the database threads' hold on it on the SMS path); this joins the list in C. Elements
    are of one type: ints, floats or strings, or None."""
    if not isinstance(next((v for v in values if v is not None), None), str):
        if None in values:
            return "{" + ",".join("NULL" if v is None else repr(v) for v in values) + "}"
        return "{" + ",".join(map(repr, values)) + "}"
    if None not in values:
        joined = "".join(values)
        if '"' not in joined and "\\" not in joined:
            return '{"' + '","'.join(values) + '"}'
    return "{" + ",".join("NULL" if v is None else
                          '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for v in values) + "}"


class DriverSql:
    """Turns ``?``-placeholder SQL into the driver's paramstyle; ``IN ({in})`` marks an IN
    list. With ``arrays`` (PostgreSQL's drivers bind a list as an array) the list is one
    parameter, ``= ANY(%s)``: the statement's text is then the same whatever the count, so
    the driver and the server parse it once, not once per size."""

    def __init__(self, paramstyle: str, arrays: bool = False):
        self.arrays = arrays
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
        if self.arrays:
            text = text.replace("IN ({in})", "= ANY({in})")
        return text.replace("?", self.mark)

    def with_in(self, text: str, values: Sequence) -> tuple[str, tuple]:
        """``text`` (already through ``sql``) and the parameters its IN list takes for
        ``values``: one array, or one mark per value (``NULL`` for none: ``IN (NULL)``
        matches no row)."""
        if self.arrays:
            return text.replace("{in}", self.mark), (array_literal(values),)
        return text.replace("{in}", ", ".join([self.mark] * len(values)) or "NULL"), tuple(values)
