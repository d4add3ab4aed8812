"""The platform's password lockout, around any backend: N wrong passwords lock self-service.

The count lives in the platform database (``core_client.limits``), so the rule
holds whatever the center's core does about wrong passwords; a stricter core
still wins (its own AccountLocked passes through, and attempts_left is the
smaller). Each try is reserved before the core is asked, so concurrent calls
cannot get more than ``attempts`` passwords checked. A second rule counts wrong
passwords per caller number across accounts (``for_caller``), so one common
password cannot be sprayed over many accounts from one line. A right password
resets the account's count and gives the caller's try back. One daemon checks one
account's passwords one at a time, so callers keying the right password together are
never refused because each other's answers held every attempt (the reservation still
bounds what several daemons check at once). Every other operation goes straight through.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredLock
from twisted.logger import Logger
from twisted.python.failure import Failure

from common.masking import mask_account, mask_mobile
from core_client import limits
from core_client.interface import (
    Account,
    AccountEvent,
    AccountLocked,
    Balance,
    CoreClient,
    CoreError,
    Detail,
    Loan,
    WrongPassword,
)

log = Logger(namespace="hotline.core.lockout")

HOUR = 3600.0


class LockoutCore:
    """A CoreClient that counts wrong query passwords per account and locks after ``attempts``;
    with ``caller_attempts``, also per caller number (see ``for_caller``)."""

    def __init__(self, inner: CoreClient, db: Any, clock: Any, *, attempts: int = 3,
                 lock_minutes: int = 30, caller_attempts: int = 10, caller: str | None = None,
                 turns: dict[str, DeferredLock] | None = None):
        self.inner, self.center = inner, inner.center
        # account -> its check in flight; shared by the per-call copies (``for_caller``)
        self._turns: dict[str, DeferredLock] = {} if turns is None else turns
        self._db, self._clock = db, clock
        self.attempts, self.lock_seconds = attempts, lock_minutes * 60
        self.caller_attempts, self.caller = caller_attempts, caller
        # Failures count until a right password or the lock; a day bounds forgotten ones.
        self.account_rule = limits.Rule(f"password:{self.center}", attempts, 86_400.0,
                                        self.lock_seconds)
        self.caller_rule = limits.Rule("password-caller", caller_attempts, HOUR,
                                       self.lock_seconds)

    def for_caller(self, caller: str | None) -> LockoutCore:
        """The same core for one call: its wrong passwords also count against ``caller``
        (a withheld number counts as ``anonymous``)."""
        return LockoutCore(self.inner, self._db, self._clock, attempts=self.attempts,
                           lock_minutes=self.lock_seconds // 60,
                           caller_attempts=self.caller_attempts,
                           caller=(caller or "").strip() or "anonymous", turns=self._turns)

    async def verify_password(self, account_no: str, password: str) -> None:
        await self._guarded(account_no, lambda: self.inner.verify_password(account_no, password))

    async def change_password(self, account_no: str, old: str, new: str) -> None:
        await self._guarded(account_no, lambda: self.inner.change_password(account_no, old, new))

    async def _guarded(self, account_no: str, call: Callable[[], Awaitable[None]]) -> None:
        """The account's checks one at a time. A right password returns at once while its
        count reset commits: the caller hears the next prompt sooner, and the account's
        turn is held until the reset is stored, so its next check sees it."""
        turn = self._turns.setdefault(account_no, DeferredLock())
        await turn.acquire()
        reset: Deferred[None] | None = None
        try:
            reset = await self._checked(account_no, call)
        finally:
            if reset is None:
                self._end_turn(account_no, turn)
            else:
                reset.addErrback(self._reset_lost, account_no)
                reset.addBoth(lambda _: self._end_turn(account_no, turn))

    def _end_turn(self, account_no: str, turn: DeferredLock) -> None:
        turn.release()
        if not turn.locked:  # nobody was waiting for it
            self._turns.pop(account_no, None)

    @staticmethod
    def _reset_lost(failure: Failure, account_no: str) -> None:
        """The right password stands; only its count reset was not stored (the count then
        lapses with its window)."""
        log.failure("the count reset after a right password for account {account} was not "
                    "stored", failure, account=mask_account(account_no))

    async def _checked(self, account_no: str, call: Callable[[], Awaitable[None]]
                       ) -> Deferred[None]:
        """The reservation, the check, the outcome counted; on a right password, the
        Deferred of its count reset, still committing."""
        now = self._clock.seconds()
        granted = await limits.run(self._db, self._reserve, account_no, now)
        if not granted.allowed:
            raise AccountLocked.at(granted.locked_until)
        try:
            await call()
        except WrongPassword as e:
            until = await limits.run(self._db, self._failed, account_no,
                                     self._clock.seconds())
            if until is not None:
                log.info("self-service locked for account {account} after {n} wrong passwords",
                         account=mask_account(account_no), n=self.attempts)
                raise AccountLocked.at(until) from None
            raise WrongPassword(min(granted.left, e.attempts_left)) from None
        except CoreError:  # unavailable, locked by the core ...: this try was never judged
            await limits.run(self._db, self._refund, account_no, self._clock.seconds())
            raise
        return self._db.run_exclusive(self._succeeded, account_no, self._clock.seconds())

    def _reserve(self, session, account_no: str, now: float) -> limits.Reservation:
        """One transaction: the caller's count, then the account's (both or neither)."""
        if self.caller is not None:
            by_caller = limits.reserve(session, self.caller_rule, self.caller, now)
            if not by_caller.allowed:
                log.info("password tries refused for caller {caller}: too many wrong "
                         "passwords from this number", caller=mask_mobile(self.caller))
                return by_caller
        granted = limits.reserve(session, self.account_rule, account_no, now)
        if not granted.allowed and self.caller is not None:
            limits.refund(session, self.caller_rule, self.caller, now)
        return granted

    def _failed(self, session, account_no: str, now: float) -> float | None:
        if self.caller is not None:
            limits.failed(session, self.caller_rule, self.caller, now)
        return limits.failed(session, self.account_rule, account_no, now)

    def _succeeded(self, session, account_no: str, now: float) -> None:
        """A right password: the account starts afresh and the caller's try is given back
        (only wrong passwords count against a number)."""
        if self.caller is not None:
            limits.refund(session, self.caller_rule, self.caller, now)
        limits.succeeded(session, self.account_rule, account_no)

    def _refund(self, session, account_no: str, now: float) -> None:
        if self.caller is not None:
            limits.refund(session, self.caller_rule, self.caller, now)
        limits.refund(session, self.account_rule, account_no, now)

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
