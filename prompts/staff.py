"""Administrators who may record by phone: PINs kept as scrypt hashes, lockout after failures.

Functions taking a ``session`` run under ``Database.run`` / ``run_sync``;
hashing is deliberately slow, so it must never run on the reactor.
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import os

from sqlalchemy import select
from sqlalchemy.orm import Session

from prompts.tables import PromptStaff

_N, _R, _P = 2**14, 8, 1
# Checked against when the staff number is unknown, so both cases take as long.
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


def _validate(number: str, pin: str | None) -> None:
    if not (number.isdigit() and 3 <= len(number) <= 8):
        raise StaffError("a staff number is 3 to 8 digits")
    if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise StaffError("a PIN is 4 to 8 digits")


def add(session: Session, number: str, name: str, pin: str, now: float) -> None:
    _validate(number, pin)
    if session.get(PromptStaff, number) is not None:
        raise StaffError(f"staff number {number} already exists")
    session.add(PromptStaff(number=number, name=name, pin_hash=hash_pin(pin), failures=0,
                            locked_until=0.0, disabled=0, created_at=now))


def set_pin(session: Session, number: str, pin: str) -> None:
    _validate(number, pin)
    row = _get(session, number)
    row.pin_hash, row.failures, row.locked_until = hash_pin(pin), 0, 0.0


def set_disabled(session: Session, number: str, disabled: bool) -> None:
    """Disable, or enable again (which also lifts a lockout)."""
    row = _get(session, number)
    row.disabled = int(disabled)
    if not disabled:
        row.failures, row.locked_until = 0, 0.0


def _get(session: Session, number: str) -> PromptStaff:
    row = session.get(PromptStaff, number)
    if row is None:
        raise StaffError(f"no staff number {number}")
    return row


def listing(session: Session) -> list[PromptStaff]:
    return list(session.scalars(select(PromptStaff).order_by(PromptStaff.number)))


def login(session: Session, number: str, pin: str, now: float, max_failures: int,
          lockout_seconds: float) -> Login:
    """Check a staff number and PIN, counting failures; locked numbers are not checked."""
    global _DUMMY
    row = session.get(PromptStaff, number) if number.isdigit() else None
    if row is None:
        if _DUMMY is None:
            _DUMMY = hash_pin("0000")
        check_pin(pin, _DUMMY)
        return Login.BAD
    if row.locked_until > now:
        return Login.LOCKED
    if not check_pin(pin, row.pin_hash) or row.disabled:
        row.failures += 1
        if row.failures >= max_failures:
            row.failures, row.locked_until = 0, now + lockout_seconds
            return Login.LOCKED
        return Login.BAD
    row.failures = 0
    return Login.OK


def describe(row: PromptStaff, now: float) -> str:
    """One line for ``hotline prompts staff list``; the hash is never shown."""
    state = "disabled" if row.disabled else ("locked" if row.locked_until > now else "active")
    return f"{row.number}  {row.name}  {state}"
