"""The console's tables: accounts, the hash-chained audit log, per-center menu switches."""
from __future__ import annotations

from sqlalchemy import Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class ConsoleUser(Base):
    """An administrator; the password only as a scrypt hash, failures counted in the row."""

    __tablename__ = "console_user"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # see console.accounts.ROLES
    center: Mapped[str | None] = mapped_column(String(32), nullable=True)  # own center
    password_hash: Mapped[str] = mapped_column(String(256))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class AuditEntry(Base):
    """One change; ``digest`` chains each row to the one before (console.audit)."""

    __tablename__ = "console_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[float] = mapped_column(Float)
    who: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    center: Mapped[str | None] = mapped_column(String(32), nullable=True)
    target: Mapped[str] = mapped_column(String(256))
    old: Mapped[str | None] = mapped_column(Text, nullable=True)
    new: Mapped[str | None] = mapped_column(Text, nullable=True)
    digest: Mapped[str] = mapped_column(String(64))


class MenuSwitch(Base):
    """A menu item an administrator switched off (or back on) for one center."""

    __tablename__ = "console_menu_switch"

    center: Mapped[str] = mapped_column(String(32), primary_key=True)
    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[float] = mapped_column(Float)
    who: Mapped[str] = mapped_column(String(64))
