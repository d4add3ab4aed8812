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
    """A menu item an administrator switched off (or back on), or gave other service hours,
    for one center."""

    __tablename__ = "console_menu_switch"

    center: Mapped[str] = mapped_column(String(32), primary_key=True)
    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    hours: Mapped[str | None] = mapped_column(String(16), nullable=True)  # 09:00-17:00
    days: Mapped[str | None] = mapped_column(String(16), nullable=True)  # 1,2,3,4,5
    updated_at: Mapped[float] = mapped_column(Float)
    who: Mapped[str] = mapped_column(String(64))


class RollupCalls(Base):
    """Hotline figures per local day and center, added to as each call record closes."""

    __tablename__ = "console_rollup_calls"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, local
    center: Mapped[str] = mapped_column(String(32), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    ivr_handled: Mapped[int] = mapped_column(Integer, default=0)
    transferred: Mapped[int] = mapped_column(Integer, default=0)
    abandoned: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)  # failed and error outcomes
    lost: Mapped[int] = mapped_column(Integer, default=0)  # its daemon died (ivr.records)
    fallback: Mapped[int] = mapped_column(Integer, default=0)  # only the fallback answered
    agent_offered: Mapped[int] = mapped_column(Integer, default=0)  # sent to the queue
    agent_answered: Mapped[int] = mapped_column(Integer, default=0)  # AgentConnect seen
    timed: Mapped[int] = mapped_column(Integer, default=0)  # calls with a known duration
    seconds: Mapped[float] = mapped_column(Float, default=0.0)  # summed durations
    survey_1: Mapped[int] = mapped_column(Integer, default=0)  # 满意
    survey_2: Mapped[int] = mapped_column(Integer, default=0)  # 基本满意
    survey_3: Mapped[int] = mapped_column(Integer, default=0)  # 不满意


class RollupSms(Base):
    """SMS figures per local day (of creation), center, template and carrier, added to as
    each message reaches its final state (console.rollup.fold_sms)."""

    __tablename__ = "console_rollup_sms"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    center: Mapped[str] = mapped_column(String(32), primary_key=True)
    template: Mapped[str] = mapped_column(String(64), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(48), primary_key=True)  # '' if never sent
    pushed: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    expired: Mapped[int] = mapped_column(Integer, default=0)


class RollupMark(Base):
    """How far a rollup has folded its source (a time or an id)."""

    __tablename__ = "console_rollup_mark"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class TemplateEdit(Base):
    """A center's SMS template text: the draft awaiting review and the one published."""

    __tablename__ = "console_sms_template"

    center: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    draft_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    draft_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    draft_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    published_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    published_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class RollupKeys(Base):
    """Key presses per local day, center, menu and key, added as each call record closes."""

    __tablename__ = "console_rollup_keys"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    center: Mapped[str] = mapped_column(String(32), primary_key=True)
    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(8), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Holiday(Base):
    """A day a center's agents and office-hours services are closed (法定节假日)."""

    __tablename__ = "console_holiday"

    center: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, local
    name: Mapped[str] = mapped_column(String(64))
