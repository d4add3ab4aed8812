"""Prompt versions, what is installed, the audit trail and the staff who may record."""
from __future__ import annotations

from sqlalchemy import Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class PromptVersion(Base):
    """One immutable version of one prompt for one center and language."""

    __tablename__ = "prompt_version"
    __table_args__ = (UniqueConstraint("prompt_id", "center", "lang", "version",
                                       name="uq_prompt_version_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prompt_id: Mapped[str] = mapped_column(String(128))
    center: Mapped[str] = mapped_column(String(32))
    lang: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(8))  # tts | import | phone
    who: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64))  # of the 8 kHz wav
    duration: Mapped[float] = mapped_column(Float)
    formats: Mapped[str] = mapped_column(String(64))  # comma-separated extensions
    text_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # tts only


class PromptCurrent(Base):
    """Which version is installed in ``current/`` for a prompt, center and language."""

    __tablename__ = "prompt_current"

    prompt_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    center: Mapped[str] = mapped_column(String(32), primary_key=True)
    lang: Mapped[str] = mapped_column(String(8), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[float] = mapped_column(Float)


class PromptAudit(Base):
    """Every change to what callers hear: who, when, which prompt, old and new version."""

    __tablename__ = "prompt_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    who: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # tts | import | phone | rollback
    prompt_id: Mapped[str] = mapped_column(String(128))
    center: Mapped[str] = mapped_column(String(32))
    lang: Mapped[str] = mapped_column(String(8))
    old_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    new_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PromptStaff(Base):
    """An administrator allowed to record by phone; the PIN is kept only as a scrypt hash.
    Wrong PINs are counted in core_client's security_limit (scope ``pin-staff``)."""

    __tablename__ = "prompt_staff"

    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    pin_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
