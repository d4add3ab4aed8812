"""The IVR room's tables: one row per call, key presses per menu item per call, and the
account of an identified caller while the call lives.

Times are epoch seconds (floats) from the reactor's clock, as in the other
rooms, so tests drive them with ``task.Clock``. Nothing secret is stored: the
caller number is masked, ID numbers and passwords never enter ``keys`` nor any
table, and an account number only lives as long as its call (``IvrIdentity``).
"""
from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class IvrCall(Base):
    """One call through the IVR; ``ended_at`` is null while it runs (or if the daemon died)."""

    __tablename__ = "ivr_call"
    __table_args__ = (
        Index("ix_ivr_call_center_started", "center", "started_at"),
        Index("ix_ivr_call_uniqueid", "uniqueid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance: Mapped[str] = mapped_column(String(40))
    center: Mapped[str] = mapped_column(String(32))
    uniqueid: Mapped[str] = mapped_column(String(64))
    caller: Mapped[str] = mapped_column(String(32))  # masked, 138****8000
    dnid: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[float] = mapped_column(Float)
    answered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    path: Mapped[str] = mapped_column(Text, default="")  # node names, space separated
    keys: Mapped[str] = mapped_column(Text, default="")  # menu keys, never secrets
    identified: Mapped[int] = mapped_column(Integer, default=0)
    served: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    survey: Mapped[int | None] = mapped_column(Integer, nullable=True)


class IvrKeyPress(Base):
    """How often a key was pressed in a menu node during one call."""

    __tablename__ = "ivr_keypress"
    __table_args__ = (Index("ix_ivr_keypress_center_node", "center", "node"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("ivr_call.id", ondelete="CASCADE"))
    center: Mapped[str] = mapped_column(String(32))
    node: Mapped[str] = mapped_column(String(48))
    key: Mapped[str] = mapped_column(String(8))
    count: Mapped[int] = mapped_column(Integer)


class IvrIdentity(Base):
    """Who the core said an identified caller is, while the call lives (``ivr.identities``):
    a daemon adopting the call resumes it as identified. Never the password or ID number;
    the account number goes with the call's record (deleted when it closes)."""

    __tablename__ = "ivr_identity"
    __table_args__ = (Index("ix_ivr_identity_expires_at", "expires_at"),)

    uniqueid: Mapped[str] = mapped_column(String(64), primary_key=True)  # Asterisk's, as ivr_call
    call_id: Mapped[int] = mapped_column(Integer)  # the ivr_call row it belongs to
    center: Mapped[str] = mapped_column(String(32))
    account_no: Mapped[str] = mapped_column(String(32))
    identified_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
