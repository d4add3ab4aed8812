"""The one door to an HPF core system: what IVR and SMS may ask of it.

Every backend (embedded demo core, HTTPS core) implements ``CoreClient``. All
methods are coroutines so flows can ``await`` them on the reactor; backends do
their blocking work off the reactor thread.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol
from collections.abc import Sequence


class CoreError(Exception):
    """Base of every error the core client raises."""


class AccountNotFound(CoreError):
    """No account matches the given account number or ID number."""


class UnknownCenter(AccountNotFound):
    """No core is configured for the given center code."""


class InvalidIdNumber(CoreError):
    """An 18-character ID number whose check digit or shape is wrong."""


class WrongPassword(CoreError):
    """The query password did not match; ``attempts_left`` before lockout."""

    def __init__(self, attempts_left: int):
        super().__init__(f"wrong query password, {attempts_left} attempts left")
        self.attempts_left = attempts_left


class AccountLocked(CoreError):
    """Self-service is locked for this account until ``until``."""

    def __init__(self, until: dt.datetime):
        super().__init__(f"self-service locked until {until:%Y-%m-%d %H:%M}")
        self.until = until


class CoreUnavailable(CoreError):
    """The core did not answer in time, answered 5xx, or the breaker is open."""


class CoreProtocolError(CoreError):
    """The core answered something this client cannot understand."""


class CoreAuthFailed(CoreProtocolError):
    """The core refused this client's request signature (wrong key, clock skew, replay)."""


class PasswordRejected(CoreError):
    """The new query password is not acceptable (the core wants exactly 6 digits)."""


class CodeRateLimited(CoreError):
    """Too many verification codes for this mobile; retry after ``retry_after`` s."""

    def __init__(self, retry_after: int):
        super().__init__(f"verification code rate limit, retry after {retry_after} s")
        self.retry_after = retry_after


class CodeInvalid(CoreError):
    """The verification code is wrong, expired, used, or out of attempts."""


@dataclass(frozen=True)
class Account:
    """An identified deposit account. ``account_no`` is the 个人账号 (GRZH)."""

    center: str
    account_no: str
    name: str
    id_number: str
    status: str  # GRZHZT: normal / sealed / closed


@dataclass(frozen=True)
class Balance:
    balance: Decimal  # GRZHYE
    monthly_deposit: Decimal  # GRYJCE + DWYJCE
    paid_up_to: str  # JZNY, "YYYYMM"
    status: str


@dataclass(frozen=True)
class Detail:
    """One business detail: deposit, withdrawal, interest, repayment deduction."""

    date: dt.date  # JZRQ
    kind: str  # deposit / withdrawal / interest / transfer_in / transfer_out
    amount: Decimal  # FSE
    balance_after: Decimal
    reason: str | None = None  # TQYY for withdrawals
    serial: str | None = None  # YWLSH


@dataclass(frozen=True)
class Loan:
    loan_no: str  # DKZH (shown by its last 4 digits only)
    balance: Decimal  # DKYE
    monthly_repayment: Decimal  # DQYHJE
    overdue_principal: Decimal  # YQBJZE
    overdue_periods: int  # LJYQQS
    term_months: int
    repayment_day: int
    status: str  # repaying / settled


@dataclass(frozen=True)
class AccountEvent:
    """An event in the core's account journal, read in order by cursor."""

    cursor: int
    kind: str  # deposit_credited / withdrawal / repayment_due / repayment_posted /
    #            loan_disbursed / loan_settled / interest_credited / account_changed
    account_no: str
    occurred_at: dt.datetime
    fields: dict  # template parameters, amounts as strings


@dataclass(frozen=True)
class IssuedCode:
    """A verification code to deliver. ``code`` must never be logged."""

    code_id: str
    account_no: str
    mobile: str = field(repr=False)
    purpose: str
    code: str = field(repr=False)
    expires_at: dt.datetime


class CoreClient(Protocol):
    """What IVR and SMS may ask of one center's core system."""

    center: str

    async def find_account(
        self, *, account_no: str | None = None, id_number: str | None = None
    ) -> Account: ...

    async def verify_password(self, account_no: str, password: str) -> None:
        """Raise WrongPassword or AccountLocked; return None when it matches."""

    async def balance(self, account_no: str) -> Balance: ...

    async def recent_details(
        self, account_no: str, limit: int = 3, kinds: Sequence[str] = ("deposit",)
    ) -> list[Detail]: ...

    async def loan(self, account_no: str) -> Loan | None: ...

    async def change_password(self, account_no: str, old: str, new: str) -> None: ...

    async def registered_mobile(self, account_no: str) -> str: ...

    async def find_by_mobile(self, mobile: str) -> list[Account]: ...

    async def events_since(
        self, cursor: int, limit: int = 1000
    ) -> tuple[list[AccountEvent], int]: ...
