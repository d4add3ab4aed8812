"""Console accounts: roles, scrypt password hashes, and lockout counted atomically in the row.

A wrong password is one ``UPDATE ... SET failures = failures + 1`` statement, so
parallel guesses from several browsers or daemons are all counted and the account
locks after exactly ``max_failures`` of them.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from console import audit
from console.tables import ConsoleUser
from prompts.staff import check_pin as check_password
from prompts.staff import hash_pin as hash_password

PROVINCE, CENTER, AUDITOR, RECORDER = "province", "center", "auditor", "recorder"
ROLES = {
    PROVINCE: ("省级管理员", "provincial administrator"),
    CENTER: ("中心管理员", "center administrator"),
    AUDITOR: ("审计员", "auditor"),
    RECORDER: ("录音员", "prompt recorder"),
}
MIN_PASSWORD = 10


class AccountError(ValueError):
    """A request the account rules refuse, phrased for the operator."""


class Login(enum.Enum):
    OK = "ok"
    BAD = "bad"  # unknown name, wrong password or disabled: the form does not say which
    LOCKED = "locked"


@dataclass(frozen=True)
class User:
    """What a session knows of its administrator."""

    name: str
    role: str
    center: str | None

    def may_see(self, center: str) -> bool:
        """Provincial administrators and auditors see every center; the others their own."""
        return self.role in (PROVINCE, AUDITOR) or self.center == center

    def centers(self, all_centers) -> list[str]:
        return [c for c in all_centers if self.may_see(c)]

    @property
    def may_change(self) -> bool:
        return self.role in (PROVINCE, CENTER)

    @property
    def may_see_full_numbers(self) -> bool:
        return self.role == PROVINCE

    @property
    def may_read_audit(self) -> bool:
        return self.role in (PROVINCE, AUDITOR)


def add(session: Session, name: str, role: str, center: str | None, password: str,
        now: float, who: str, centers) -> User:
    """Create an account (audited); a center administrator or recorder needs a center."""
    if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum() \
            or len(name) > 64:
        raise AccountError("name: letters, digits, . _ - (at most 64)")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if role in (CENTER, RECORDER):
        if center not in centers:
            raise AccountError(f"role {role} needs one of the centers {', '.join(centers)}")
    else:
        center = None
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")
    if session.get(ConsoleUser, name) is not None:
        raise AccountError(f"account {name} exists")
    session.add(ConsoleUser(name=name, role=role, center=center,
                            password_hash=hash_password(password), failures=0,
                            locked_until=0.0, disabled=False, created_at=now))
    audit.append(session, who, "account.add", f"user:{name}", None,
                 {"role": role, "center": center}, now, center=center)
    return User(name, role, center)


def login(session: Session, name: str, password: str, now: float, max_failures: int,
          lockout_seconds: float) -> tuple[Login, User | None]:
    """Check a password; a failure is counted, and the lock set, in one statement."""
    row = session.get(ConsoleUser, name)
    if row is not None and row.locked_until > now:
        return Login.LOCKED, None
    if row is not None and not row.disabled and check_password(password, row.password_hash):
        row.failures = 0
        audit.append(session, name, "session.login", f"user:{name}", None, None, now,
                     center=row.center)
        return Login.OK, User(row.name, row.role, row.center)
    if row is None:
        return Login.BAD, None
    locked = session.execute(
        update(ConsoleUser).where(ConsoleUser.name == name)
        .values(failures=ConsoleUser.failures + 1,
                locked_until=case((ConsoleUser.failures + 1 >= max_failures,
                                   now + lockout_seconds), else_=ConsoleUser.locked_until))
        .returning(ConsoleUser.locked_until)).scalar_one() > now
    if locked:
        audit.append(session, "-", "account.locked", f"user:{name}", None,
                     {"until": now + lockout_seconds}, now, center=row.center)
        return Login.LOCKED, None
    return Login.BAD, None


def set_password(session: Session, name: str, password: str, now: float, who: str) -> None:
    """A new password (audited); it also lifts a lockout."""
    row = session.get(ConsoleUser, name)
    if row is None:
        raise AccountError(f"no account {name}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")
    row.password_hash, row.failures, row.locked_until = hash_password(password), 0, 0.0
    audit.append(session, who, "account.password", f"user:{name}", None, None, now,
                 center=row.center)


def listing(session: Session) -> list[ConsoleUser]:
    return list(session.scalars(select(ConsoleUser).order_by(ConsoleUser.name)))
