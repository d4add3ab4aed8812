"""The SMS room's tables: the durable outbox, its SMPP parts, MO messages and alert cursors.

Times are epoch seconds (floats) from the reactor's clock, so tests drive them
with ``task.Clock`` and PostgreSQL and SQLite store them alike.
"""
from __future__ import annotations

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from sms.outbox.states import QUEUED, SUBMITTED, SUBMITTING
from storage.models import Base

# Per cent of a PostgreSQL heap page that inserts fill (sms_0004). A message and its parts
# are rewritten about three times each; an update that changes no indexed column (a part's
# claim and its receipt) writes no index entry (a HOT update) only if its page has room.
FILLFACTOR = 70
# The messages the ready index keeps on PostgreSQL (sms_0004): the states the claim, the
# crash recovery and the expiry sweep look up; final and ``unknown`` ones are only counted.
READY_INDEXED = f"state IN ('{QUEUED}', '{SUBMITTING}', '{SUBMITTED}')"


class SmsMessage(Base):
    """One logical message: committed before the submitter hears it was accepted."""

    __tablename__ = "sms_message"
    __table_args__ = (
        UniqueConstraint("center", "idem_key", name="uq_sms_message_center_idem"),
        # In the claim's order (sms.outbox.sql: priority first, then due time and id), so a
        # claim reads its LIMIT and sorts nothing; on PostgreSQL only the messages in
        # flight, so it stays their size however many are kept, and no final state adds
        # an entry to it.
        Index("ix_sms_message_ready", "state", text("priority DESC"), "next_attempt_at", "id",
              postgresql_where=text(READY_INDEXED)),
        Index("ix_sms_message_dest", "destination", "created_at"),
        {"postgresql_with": {"fillfactor": FILLFACTOR}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    center: Mapped[str] = mapped_column(String(32))
    klass: Mapped[str] = mapped_column(String(16))  # code / transaction / bulk / reply
    priority: Mapped[int] = mapped_column(Integer)  # higher goes first
    template: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)  # JSON, sensitive values masked
    text: Mapped[str] = mapped_column(Text)  # scrubbed once submitted (or final) if sensitive
    sensitive: Mapped[int] = mapped_column(Integer, default=0)
    destination: Mapped[str] = mapped_column(String(24))
    idem_key: Mapped[str] = mapped_column(String(128))
    part_count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    possible_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    valid_until: Mapped[float] = mapped_column(Float)
    claimed_by: Mapped[str | None] = mapped_column(String(48), nullable=True)
    smsc: Mapped[str | None] = mapped_column(String(48), nullable=True)
    error: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    submitted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    final_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class SmsPart(Base):
    """One submit_sm: marked ``submitting`` (committed) before it goes out."""

    __tablename__ = "sms_part"
    __table_args__ = (
        UniqueConstraint("message_id", "seq", name="uq_sms_part_message_seq"),
        # On PostgreSQL only the parts an SMSC answered (sms_0004): a part is inserted
        # without one and gets it once, so its insert writes no entry here.
        Index("ix_sms_part_smpp_id", "smpp_id", postgresql_where=text("smpp_id IS NOT NULL")),
        {"postgresql_with": {"fillfactor": FILLFACTOR}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("sms_message.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    data_coding: Mapped[int] = mapped_column(Integer)
    esm_class: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))
    smpp_id: Mapped[str | None] = mapped_column(String(72), nullable=True)
    smsc: Mapped[str | None] = mapped_column(String(48), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    submitted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    done_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class SmsUnmatchedReceipt(Base):
    """A DLR that arrived before its submit_sm_resp was recorded; matched later."""

    __tablename__ = "sms_unmatched_receipt"
    __table_args__ = (Index("ix_sms_unmatched_receipt_smpp_id", "smpp_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    smpp_id: Mapped[str] = mapped_column(String(72))
    smsc: Mapped[str] = mapped_column(String(48))
    state: Mapped[str] = mapped_column(String(12))
    error: Mapped[str | None] = mapped_column(String(32), nullable=True)
    done_at: Mapped[float] = mapped_column(Float)
    received_at: Mapped[float] = mapped_column(Float)
    # the address the receipt names (its part's destination), when it names one
    destination: Mapped[str | None] = mapped_column(String(24), nullable=True)


class SmsOptOut(Base):
    """A mobile that replied TD to a center: no bulk or alert SMS until DY."""

    __tablename__ = "sms_optout"
    __table_args__ = (UniqueConstraint("center", "mobile", name="uq_sms_optout_center_mobile"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    center: Mapped[str] = mapped_column(String(32))
    mobile: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[float] = mapped_column(Float)


class SmsMo(Base):
    """A mobile-originated message as received, and how it was answered."""

    __tablename__ = "sms_mo"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    center: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source: Mapped[str] = mapped_column(String(24))
    destination: Mapped[str] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(Text)
    smsc: Mapped[str] = mapped_column(String(48))
    received_at: Mapped[float] = mapped_column(Float)
    keyword: Mapped[str | None] = mapped_column(String(16), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)


class SmsAlertCursor(Base):
    """How far each center's account-event journal has been turned into alerts."""

    __tablename__ = "sms_alert_cursor"

    center: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[float] = mapped_column(Float)


class SmsRepaymentDue(Base):
    """A repayment the core said is due: the daily reminder job sends its reminder once."""

    __tablename__ = "sms_repayment_due"
    __table_args__ = (
        UniqueConstraint("center", "account_no", "due_date", name="uq_sms_repayment_due"),
        Index("ix_sms_repayment_due_open", "center", "reminded_at", "due_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    center: Mapped[str] = mapped_column(String(32))
    account_no: Mapped[str] = mapped_column(String(32))
    loan_tail: Mapped[str] = mapped_column(String(8))
    amount: Mapped[str] = mapped_column(String(24))
    due_date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the center's zone
    method: Mapped[str] = mapped_column(String(24))
    reminded_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class SmsCounter(Base):
    """Monotonic counters kept across restarts (e.g. possible duplicates after a crash)."""

    __tablename__ = "sms_counter"

    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
