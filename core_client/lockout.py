"""The platform's password lockout, around any backend: N wrong passwords lock self-service.

The count lives in the platform database (core_lockout), so the rule holds
whatever the center's core does about wrong passwords; a stricter core still
wins (its own AccountLocked passes through, and attempts_left is the smaller).
A right password resets the count. Every other operation goes straight through.
"""
from __future__ import annotations

import datetime as dt
from typing import Any
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from twisted.logger import Logger

from common.masking import mask_account
from core_client.interface import (
    Account,
    AccountEvent,
    AccountLocked,
    Balance,
    CoreClient,
    Detail,
    Loan,
    WrongPassword,
)
from core_client.tables import CoreLockout

log = Logger(namespace="hotline.core.lockout")


class LockoutCore:
    """A CoreClient that counts wrong query passwords per account and locks after ``attempts``."""

    def __init__(self, inner: CoreClient, db: Any, clock: Any, *, attempts: int = 3,
                 lock_minutes: int = 30):
        self.inner, self.center = inner, inner.center
        self._db, self._clock = db, clock
        self.attempts, self.lock_seconds = attempts, lock_minutes * 60

    async def verify_password(self, account_no: str, password: str) -> None:
        await self._guarded(account_no, lambda: self.inner.verify_password(account_no, password))

    async def change_password(self, account_no: str, old: str, new: str) -> None:
        await self._guarded(account_no, lambda: self.inner.change_password(account_no, old, new))

    async def _guarded(self, account_no: str, call: Callable[[], Awaitable[None]]) -> None:
        until = await self._db.run(self._locked_until, account_no, self._clock.seconds())
        if until is not None:
            raise AccountLocked(dt.datetime.fromtimestamp(until))
        try:
            await call()
        except WrongPassword as e:
            failures, until = await self._count_failure(account_no)
            if until is not None:
                log.info("self-service locked for account {account} after {n} wrong passwords",
                         account=mask_account(account_no), n=self.attempts)
                raise AccountLocked(dt.datetime.fromtimestamp(until)) from None
            raise WrongPassword(min(self.attempts - failures, e.attempts_left)) from None
        await self._db.run(self._reset, account_no)

    async def _count_failure(self, account_no: str) -> tuple[int, float | None]:
        try:
            return await self._db.run(self._fail, account_no, self._clock.seconds())
        except IntegrityError:  # a concurrent first failure inserted the row: count on it
            return await self._db.run(self._fail, account_no, self._clock.seconds())

    def _locked_until(self, session: Session, account_no: str, now: float) -> float | None:
        row = session.get(CoreLockout, (self.center, account_no))
        if row is not None and row.locked_until is not None and row.locked_until > now:
            return row.locked_until
        return None

    def _fail(self, session: Session, account_no: str, now: float) -> tuple[int, float | None]:
        row = session.get(CoreLockout, (self.center, account_no), with_for_update=True)
        if row is None:
            row = CoreLockout(center=self.center, account_no=account_no, failures=0,
                              updated_at=now)
            session.add(row)
        if row.locked_until is not None and row.locked_until <= now:
            row.failures, row.locked_until = 0, None  # an expired lock starts a fresh count
        row.failures += 1
        row.updated_at = now
        if row.failures >= self.attempts:
            row.failures, row.locked_until = 0, now + self.lock_seconds
            return self.attempts, row.locked_until
        return row.failures, None

    def _reset(self, session: Session, account_no: str) -> None:
        row = session.get(CoreLockout, (self.center, account_no))
        if row is not None and row.locked_until is None:
            session.delete(row)

    # -- everything else goes straight to the backend ---------------------------------------

    async def find_account(self, *, account_no: str | None = None,
                           id_number: str | None = None) -> Account:
        return await self.inner.find_account(account_no=account_no, id_number=id_number)

    async def balance(self, account_no: str) -> Balance:
        return await self.inner.balance(account_no)

    async def recent_details(self, account_no: str, limit: int = 3,
                             kinds: Sequence[str] = ("deposit",)) -> list[Detail]:
        return await self.inner.recent_details(account_no, limit, kinds)

    async def loan(self, account_no: str) -> Loan | None:
        return await self.inner.loan(account_no)

    async def registered_mobile(self, account_no: str) -> str:
        return await self.inner.registered_mobile(account_no)

    async def find_by_mobile(self, mobile: str) -> list[Account]:
        return await self.inner.find_by_mobile(mobile)

    async def events_since(self, cursor: int, limit: int = 1000
                           ) -> tuple[list[AccountEvent], int]:
        return await self.inner.events_since(cursor, limit)
