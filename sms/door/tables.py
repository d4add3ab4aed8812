"""The door's tables: clients and their audit trail, nonces, quota counters, the link from
an outbox message to the client that sent it, tallies per reason, and callbacks to deliver.

Secrets are never stored: a client row names the environment variable that holds them.
Times are epoch seconds from the reactor's clock.
"""
from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class DoorClient(Base):
    """One sending system of a center (or of the province, center ``*``)."""

    __tablename__ = "door_client"
    __table_args__ = (UniqueConstraint("system_id", name="uq_door_client_system_id"),)

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    center: Mapped[str] = mapped_column(String(32))
    secret_env: Mapped[str] = mapped_column(String(64))  # env var with the shared secret
    system_id: Mapped[str] = mapped_column(String(16))  # SMPP bind name
    templates: Mapped[str] = mapped_column(Text)  # JSON list; ["*"] = every template
    classes: Mapped[str] = mapped_column(Text)  # JSON list of message classes
    free_text: Mapped[int] = mapped_column(Integer, default=0)
    daily_quota: Mapped[int] = mapped_column(Integer)
    rate_per_second: Mapped[int] = mapped_column(Integer)
    source_exts: Mapped[str] = mapped_column(Text)  # JSON list of extensions after 12329
    keywords: Mapped[str] = mapped_column(Text)  # JSON list of MO keywords the client owns
    ip_allow: Mapped[str] = mapped_column(Text)  # JSON list of CIDRs; [] = any address
    callback_url: Mapped[str | None] = mapped_column(String(255), nullable=True)
    callback_parts: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class DoorAudit(Base):
    """Every change to a client: who, when, what (secrets never appear, only env names)."""

    __tablename__ = "door_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)  # JSON of the changed fields
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)


class DoorNonce(Base):
    """A signed request's nonce, kept for the signature window so a replay is refused."""

    __tablename__ = "door_nonce"

    client: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[float] = mapped_column(Float)


class DoorCounter(Base):
    """Atomic usage counters: ``d:YYYY-MM-DD`` (daily quota), ``s:EPOCH`` (rate per second)."""

    __tablename__ = "door_counter"

    client: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(24), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class DoorMessage(Base):
    """Which client sent an outbox message, so queries, cancels and receipts find it."""

    __tablename__ = "door_message"
    __table_args__ = (Index("ix_door_message_client", "client", "created_at"),
                      Index("ix_door_message_notified", "notified"))

    message_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # sms_message.id
    client: Mapped[str] = mapped_column(String(32))
    center: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str] = mapped_column(String(8), default="rest")  # rest / smpp
    created_at: Mapped[float] = mapped_column(Float)
    notified: Mapped[str | None] = mapped_column(String(12), nullable=True)  # final state told


class DoorTally(Base):
    """Counts per center, client, template and day: ``pushed`` and each filter reason."""

    __tablename__ = "door_tally"

    center: Mapped[str] = mapped_column(String(32), primary_key=True)
    client: Mapped[str] = mapped_column(String(32), primary_key=True)
    template: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    what: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class DoorEvent(Base):
    """A receipt or MO owed to a client, by HTTP callback or SMPP deliver_sm; kept until
    acknowledged (at least once; ``dedup_id`` lets the client drop a repeat)."""

    __tablename__ = "door_event"
    __table_args__ = (
        UniqueConstraint("dedup_id", name="uq_door_event_dedup_id"),
        Index("ix_door_event_due", "channel", "state", "next_at"),
        Index("ix_door_event_client", "client", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))  # http / smpp
    kind: Mapped[str] = mapped_column(String(8))  # receipt / mo
    dedup_id: Mapped[str] = mapped_column(String(96))
    payload: Mapped[str] = mapped_column(Text)  # JSON
    state: Mapped[str] = mapped_column(String(8))  # pending / acked / dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[float] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    acked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
