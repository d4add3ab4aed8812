"""Platform-side tables of core_client: attempt limits and verification codes.

They live in the platform database (not the core's), so the lockout and the
code rules hold whatever the center's core does. Times are epoch seconds from
the injected clock. Codes are stored only as HMAC-SHA256 under the server's
pepper (from the environment, never stored); mobiles only as a SHA-256 digest
(enough to count sends per mobile).
"""
from __future__ import annotations

from sqlalchemy import Float, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class SecurityLimit(Base):
    """Attempts counted against one subject of one rule (core_client.limits), and its lock."""

    __tablename__ = "security_limit"
    __table_args__ = (Index("ix_security_limit_updated_at", "updated_at"),)

    scope: Mapped[str] = mapped_column(String(48), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[float] = mapped_column(Float)
    locked_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)


class CoreCode(Base):
    """One issued verification code: peppered hash, expiry, verify attempts, use, and the
    client system that asked for it (only that client may verify it)."""

    __tablename__ = "core_code"
    __table_args__ = (
        Index("ix_core_code_account", "center", "account_no", "purpose", "created_at"),
        Index("ix_core_code_mobile", "mobile_digest", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    center: Mapped[str] = mapped_column(String(32))
    account_no: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(32))
    mobile_digest: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64), default="")
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class CoreCodeSender(Base):
    """One row per mobile that got codes: locked while issuing, so rate limits hold
    under concurrent requests (PostgreSQL row lock, SQLite write lock)."""

    __tablename__ = "core_code_sender"

    mobile_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_sent_at: Mapped[float] = mapped_column(Float)
