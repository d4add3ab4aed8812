"""The embedded backend: a center's core system played by a demo core database (SQLite).

Every query runs on a thread pool (the reactor's by default) with one SQLite
connection per pool thread; the reactor thread only schedules and receives. The
demo core keeps its own wrong-password counter and lock, as real cores do; the
platform's stricter lockout (core_client.lockout) wraps it anyway.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

from twisted.internet.threads import deferToThreadPool

from common.masking import mask_account, mask_id_number
from core_client import demo_data, idnumber
from core_client.interface import (
    Account,
    AccountEvent,
    AccountLocked,
    AccountNotFound,
    Balance,
    CoreUnavailable,
    Detail,
    InvalidIdNumber,
    Loan,
    PasswordRejected,
    WrongPassword,
)

_SIX_DIGITS = re.compile(r"\d{6}")


def _money(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


class EmbeddedCore:
    """CoreClient over a demo core database file, generated on first use when missing."""

    def __init__(self, center: str, path: str | os.PathLike, reactor: Any, pool: Any = None, *,
                 persons: int = demo_data.DEFAULT_PERSONS, seed: int = demo_data.DEFAULT_SEED,
                 core_attempts: int = 5, core_lock_minutes: int = 24 * 60,
                 timeout: float = 10.0):
        self.center = center
        self.path = Path(path)
        self._reactor = reactor
        self._pool = pool if pool is not None else reactor.getThreadPool()
        self._persons, self._seed = persons, seed
        self._core_attempts, self._core_lock = core_attempts, core_lock_minutes * 60
        self.timeout = timeout
        self._local = threading.local()
        self._generate_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------

    def _run(self, fn: Callable[..., Any], *args: Any):
        """``fn(conn, *args)`` on a pool thread, failing with CoreUnavailable after ``timeout``
        (a stuck database must not stall a caller; the thread finishes on its own)."""

        def timed_out(_result: Any, timeout: float) -> None:
            raise CoreUnavailable(f"core {self.center}: demo database did not answer "
                                  f"within {timeout:g} s")

        d = deferToThreadPool(self._reactor, self._pool, self._in_thread, fn, *args)
        d.addTimeout(self.timeout, self._reactor, onTimeoutCancel=timed_out)
        return d

    def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self._ensure_generated()
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return fn(conn, *args)

    def _ensure_generated(self) -> None:
        with self._generate_lock:
            if not self.path.exists():
                demo_data.generate(self.path, self._persons, self._seed)

    def prepare(self):
        """Open (and, when missing, generate) the database now rather than on the first call.

        No timeout here: generating takes seconds, and nothing waits on it but startup.
        """
        return deferToThreadPool(self._reactor, self._pool, self._in_thread, lambda conn: None)

    # -- CoreClient -------------------------------------------------------------------------

    async def find_account(self, *, account_no: str | None = None,
                           id_number: str | None = None) -> Account:
        if (account_no is None) == (id_number is None):
            raise ValueError("give exactly one of account_no and id_number")
        if id_number is not None:
            id_number = idnumber.normalize(id_number)
            if not idnumber.is_valid(id_number):
                raise InvalidIdNumber(f"not a valid ID number: {mask_id_number(id_number)}")
            return await self._run(self._find, "p.ZJHM", id_number)
        return await self._run(self._find, "a.GRZH", account_no)

    def _find(self, conn: sqlite3.Connection, column: str, value: str) -> Account:
        row = conn.execute(
            "SELECT a.GRZH, p.XINGMING, p.ZJHM, a.GRZHZT FROM account a "
            f"JOIN person p ON p.id = a.person_id WHERE {column} = ?", (value,)).fetchone()
        if row is None:
            shown = mask_id_number(value) if column == "p.ZJHM" else mask_account(value)
            raise AccountNotFound(f"no account for {shown}")
        return Account(self.center, row[0], row[1], row[2], row[3])

    async def verify_password(self, account_no: str, password: str) -> None:
        await self._run(self._verify, account_no, password, self._reactor.seconds())

    def _verify(self, conn: sqlite3.Connection, account_no: str, password: str,
                now: float) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT CXMM, CXMM_CWCS, SDJZSJ FROM account WHERE GRZH = ?",
                               (account_no,)).fetchone()
            if row is None:
                raise AccountNotFound(f"no account {mask_account(account_no)}")
            stored, failures, locked_until = row
            if locked_until is not None and locked_until > now:
                raise AccountLocked(dt.datetime.fromtimestamp(locked_until))
            if demo_data.check_password(password, stored):
                if failures:
                    conn.execute("UPDATE account SET CXMM_CWCS = 0, SDJZSJ = NULL "
                                 "WHERE GRZH = ?", (account_no,))
                return
            failures += 1
            if failures >= self._core_attempts:
                until = now + self._core_lock
                conn.execute("UPDATE account SET CXMM_CWCS = 0, SDJZSJ = ? WHERE GRZH = ?",
                             (until, account_no))
                raise AccountLocked(dt.datetime.fromtimestamp(until))
            conn.execute("UPDATE account SET CXMM_CWCS = ? WHERE GRZH = ?",
                         (failures, account_no))
            raise WrongPassword(self._core_attempts - failures)
        finally:
            conn.execute("COMMIT")  # the counter and lock persist even though we raise

    async def change_password(self, account_no: str, old: str, new: str) -> None:
        if not _SIX_DIGITS.fullmatch(new):
            raise PasswordRejected("the new query password must be exactly 6 digits")
        now = self._reactor.seconds()
        await self._run(self._verify, account_no, old, now)
        await self._run(self._change, account_no, new, now)

    def _change(self, conn: sqlite3.Connection, account_no: str, new: str, now: float) -> None:
        stored = demo_data.hash_password(new, os.urandom(16), demo_data.CHANGED_PASSWORD_ITERATIONS)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("UPDATE account SET CXMM = ? WHERE GRZH = ?", (stored, account_no))
            conn.execute("INSERT INTO event (kind, GRZH, occurred_at, fields) VALUES (?,?,?,?)",
                         ("account_changed", account_no,
                          dt.datetime.fromtimestamp(now).isoformat(timespec="seconds"),
                          json.dumps({"what": "query_password"})))
        finally:
            conn.execute("COMMIT")

    async def balance(self, account_no: str) -> Balance:
        return await self._run(self._balance, account_no)

    def _balance(self, conn: sqlite3.Connection, account_no: str) -> Balance:
        row = conn.execute("SELECT GRZHYE, GRYJCE, DWYJCE, JZNY, GRZHZT FROM account "
                           "WHERE GRZH = ?", (account_no,)).fetchone()
        if row is None:
            raise AccountNotFound(f"no account {mask_account(account_no)}")
        return Balance(_money(row[0]), _money(row[1] + row[2]), row[3], row[4])

    async def recent_details(self, account_no: str, limit: int = 3,
                             kinds: Sequence[str] = ("deposit",)) -> list[Detail]:
        return await self._run(self._details, account_no, limit, tuple(kinds))

    def _details(self, conn: sqlite3.Connection, account_no: str, limit: int,
                 kinds: tuple[str, ...]) -> list[Detail]:
        self._require(conn, account_no)
        marks = ",".join("?" * len(kinds))
        rows = conn.execute(
            f"SELECT JZRQ, YWLX, FSE, YE, TQYY, YWLSH FROM detail WHERE GRZH = ? "
            f"AND YWLX IN ({marks}) ORDER BY XH DESC LIMIT ?", (account_no, *kinds, limit))
        return [Detail(dt.date.fromisoformat(r[0]), r[1], _money(r[2]), _money(r[3]), r[4], r[5])
                for r in rows]

    async def loan(self, account_no: str) -> Loan | None:
        return await self._run(self._loan, account_no)

    def _loan(self, conn: sqlite3.Connection, account_no: str) -> Loan | None:
        self._require(conn, account_no)
        row = conn.execute(
            "SELECT DKZH, DKYE, DQYHJE, YQBJZE, LJYQQS, DKQS, HKR, DKZT FROM loan WHERE GRZH = ? "
            "ORDER BY DKZT = 'repaying' DESC, FFRQ DESC LIMIT 1", (account_no,)).fetchone()
        if row is None:
            return None
        return Loan(row[0], _money(row[1]), _money(row[2]), _money(row[3]), row[4], row[5],
                    row[6], row[7])

    async def registered_mobile(self, account_no: str) -> str:
        return await self._run(self._mobile, account_no)

    def _mobile(self, conn: sqlite3.Connection, account_no: str) -> str:
        row = conn.execute("SELECT p.SJHM FROM account a JOIN person p ON p.id = a.person_id "
                           "WHERE a.GRZH = ?", (account_no,)).fetchone()
        if row is None:
            raise AccountNotFound(f"no account {mask_account(account_no)}")
        return row[0]

    async def find_by_mobile(self, mobile: str) -> list[Account]:
        return await self._run(self._by_mobile, mobile)

    def _by_mobile(self, conn: sqlite3.Connection, mobile: str) -> list[Account]:
        rows = conn.execute(
            "SELECT a.GRZH, p.XINGMING, p.ZJHM, a.GRZHZT FROM person p "
            "JOIN account a ON a.person_id = p.id WHERE p.SJHM = ? ORDER BY a.GRZH", (mobile,))
        return [Account(self.center, *r) for r in rows]

    async def events_since(self, cursor: int, limit: int = 1000
                           ) -> tuple[list[AccountEvent], int]:
        return await self._run(self._events, cursor, limit)

    def _events(self, conn: sqlite3.Connection, cursor: int, limit: int
                ) -> tuple[list[AccountEvent], int]:
        rows = conn.execute("SELECT cursor, kind, GRZH, occurred_at, fields FROM event "
                            "WHERE cursor > ? ORDER BY cursor LIMIT ?", (cursor, limit))
        events = [AccountEvent(r[0], r[1], r[2], dt.datetime.fromisoformat(r[3]), json.loads(r[4]))
                  for r in rows]
        return events, (events[-1].cursor if events else cursor)

    def _require(self, conn: sqlite3.Connection, account_no: str) -> None:
        if conn.execute("SELECT 1 FROM account WHERE GRZH = ?", (account_no,)).fetchone() is None:
            raise AccountNotFound(f"no account {mask_account(account_no)}")

