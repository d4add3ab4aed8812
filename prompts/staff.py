"""Administrators who may record by phone: PINs kept as scrypt hashes, attempts limited.

A login is three steps so the slow hash never runs inside a locked transaction:
``begin_login`` reserves one attempt for the staff number and for the caller's
number in one write-locked transaction (``Database.run_exclusive``), the PIN is
checked against the hash it returns (on a pool thread), and ``end_login``
records the outcome. Unknown and disabled numbers are checked against a hash
nobody can match and lock exactly like real ones, so neither the answer, the
time taken nor a lock tells which staff numbers exist. The per-caller rule
counts wrong PINs over every staff number together, so one line can lock at most
one administrator per lock period; a right PIN gives its try back. Trivial PINs (0000, 1234, the staff number) are
refused when set.

Functions taking a ``session`` run under ``Database.run`` / ``run_sync``;
hashing is deliberately slow, so it must never run on the reactor.
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from itertools import pairwise

from sqlalchemy import select
from sqlalchemy.orm import Session

from core_client import limits
from prompts.tables import PromptStaff

_N, _R, _P = 2**14, 8, 1
# Checked against when the number is unknown or disabled: no PIN (digits only) matches it.
_DUMMY = None


class StaffError(ValueError):
    """A staff change that cannot be made (bad number or PIN format, already exists)."""


class Login(enum.Enum):
    OK = "ok"
    BAD = "bad"  # unknown number, wrong PIN or disabled: the caller is not told which
    LOCKED = "locked"


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(digest) // 2)
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def trivial(pin: str, number: str = "") -> bool:
    """One digit repeated, a run up or down (1234, 9876, 0123), or the staff number itself."""
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    return len(steps) <= 1 and steps <= {-1, 0, 1} or bool(number) and (pin in number or number in pin)


def _validate(number: str, pin: str | None) -> None:
    if not (number.isdigit() and 3 <= len(number) <= 8):
        raise StaffError("a staff number is 3 to 8 digits")
    if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise StaffError("a PIN is 4 to 8 digits")
    if pin is not None and trivial(pin, number):
        raise StaffError("that PIN is too easy to guess (repeated or consecutive digits, "
                         "or the staff number)")


def add(session: Session, number: str, name: str, pin: str, now: float) -> None:
    _validate(number, pin)
    if session.get(PromptStaff, number) is not None:
        raise StaffError(f"staff number {number} already exists")
    session.add(PromptStaff(number=number, name=name, pin_hash=hash_pin(pin), disabled=0,
                            created_at=now))


def set_pin(session: Session, number: str, pin: str) -> None:
    """A new PIN (which also lifts a lockout of the number)."""
    _validate(number, pin)
    row = _get(session, number)
    row.pin_hash = hash_pin(pin)
    limits.unlock(session, STAFF_SCOPE, number)


def set_disabled(session: Session, number: str, disabled: bool) -> None:
    """Disable, or enable again (which also lifts a lockout)."""
    row = _get(session, number)
    row.disabled = int(disabled)
    if not disabled:
        limits.unlock(session, STAFF_SCOPE, number)


def _get(session: Session, number: str) -> PromptStaff:
    row = session.get(PromptStaff, number)
    if row is None:
        raise StaffError(f"no staff number {number}")
    return row


def listing(session: Session) -> list[PromptStaff]:
    return list(session.scalars(select(PromptStaff).order_by(PromptStaff.number)))


STAFF_SCOPE, CALLER_SCOPE = "pin-staff", "pin-caller"


@dataclass(frozen=True)
class PinRules:
    """``max_failures`` wrong PINs per staff number (known or not) lock it, and
    ``caller_failures`` per caller number within an hour lock that line, for ``lockout``."""

    max_failures: int = 5
    lockout_seconds: float = 1800.0
    caller_failures: int = 5

    @property
    def staff(self) -> limits.Rule:
        return limits.Rule(STAFF_SCOPE, self.max_failures, 86_400.0, self.lockout_seconds)

    @property
    def caller(self) -> limits.Rule:
        return limits.Rule(CALLER_SCOPE, self.caller_failures, 3600.0, self.lockout_seconds)


def begin_login(session: Session, number: str, caller: str, now: float,
                rules: PinRules) -> str | None:
    """Reserve one attempt for ``caller`` and ``number``; the hash to check the PIN
    against, or None when either is locked (nothing is counted then)."""
    global _DUMMY
    caller = caller or "anonymous"
    by_caller = limits.reserve(session, rules.caller, caller, now)
    if not by_caller.allowed:
        return None
    by_number = limits.reserve(session, rules.staff, number[:16], now)
    if not by_number.allowed:
        limits.refund(session, rules.caller, caller, now)
        return None
    row = session.get(PromptStaff, number) if number.isdigit() else None
    if row is None or row.disabled:
        if _DUMMY is None:
            _DUMMY = hash_pin(secrets.token_hex(8))
        return _DUMMY
    return row.pin_hash


def pin_matches(_session: Session, pin: str, stored: str) -> bool:
    """The slow check, for ``Database.run`` (a pool thread; no SQL is sent)."""
    return check_pin(pin, stored)


def end_login(session: Session, number: str, caller: str, ok: bool, now: float,
              rules: PinRules) -> Login:
    """Record a checked PIN: a right one clears the number's count and gives the caller's
    try back (only wrong PINs count against a line, so an administrator's own phone never
    locks itself by logging in often)."""
    if ok:
        limits.succeeded(session, rules.staff, number)
        limits.refund(session, rules.caller, caller or "anonymous", now)
        return Login.OK
    caller_lock = limits.failed(session, rules.caller, caller or "anonymous", now)
    number_lock = limits.failed(session, rules.staff, number[:16], now)
    return Login.LOCKED if caller_lock or number_lock else Login.BAD


def describe(session: Session, row: PromptStaff, now: float) -> str:
    """One line for ``hotline prompts staff list``; the hash is never shown."""
    locked = limits.locked_until(session, PinRules().staff, row.number, now) is not None
    state = "disabled" if row.disabled else ("locked" if locked else "active")
    return f"{row.number}  {row.name}  {state}"
