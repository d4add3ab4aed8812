"""What goes in and out of the outbox: messages to accept, claimed messages, submit results,
receipts, and the reasons a message is refused."""
from __future__ import annotations

from dataclasses import dataclass, field
from common.records import frozen_record


class OutboxError(Exception):
    """Base of the reasons a message is refused at accept."""


class OptedOut(OutboxError):
    """The destination opted out of this class of messages for this center."""


class BadDestination(OutboxError):
    """The destination is not a number this center may send to (sms.carrier.destinations)."""


class Unrenderable(OutboxError):
    """The template refused the values (or the text does not fit its parts)."""


class BadIdempotencyKey(OutboxError):
    """The idempotency key is empty or longer than its column (IDEM_KEY_MAX) holds."""


class DestinationLimited(OutboxError):
    """The destination reached its hourly limit for alerts and bulk messages."""


@frozen_record
class EncodedPart:
    payload: bytes
    data_coding: int
    esm_class: int


@frozen_record
class Outgoing:
    """A rendered, encoded message ready to be accepted."""

    center: str
    klass: str
    template: str
    params: dict  # already masked where sensitive
    text: str
    destination: str
    idem_key: str
    parts: tuple[EncodedPart, ...]
    sensitive: bool = False
    valid_for: float | None = None  # seconds; None = the class default


@dataclass(frozen=True)
class Draft:
    """A message still to be rendered: what alerts and keyword replies hand the outbox."""

    template: str
    params: dict
    destination: str
    idem_key: str
    valid_until: float | None = None


@dataclass(frozen=True)
class Due:
    """A repayment the core said is due, kept for the daily reminder job (sms.reminders)."""

    account_no: str
    loan_tail: str
    amount: str
    due_date: str  # YYYY-MM-DD
    method: str


@frozen_record
class Accepted:
    message_id: int
    part_count: int
    duplicate: bool


@dataclass
class ClaimedMessage:
    """A message the dispatcher holds in memory, with the parts still to send."""

    message_id: int
    center: str
    klass: str
    priority: int
    destination: str
    valid_until: float
    part_ids: list[int] = field(default_factory=list)
    parts: list[EncodedPart] = field(default_factory=list)


@frozen_record
class SubmitResult:
    """What became of one submit_sm: ok (message id), temporary or permanent error, or
    doubtful: a temporary error after which the SMSC may hold the part all the same (no
    response in time, the link lost with the part in flight), so its resend is a possible
    duplicate."""

    part_id: int
    message_id: int
    outcome: str  # ok / temporary / doubtful / permanent
    smpp_id: str | None = None
    smsc: str | None = None
    error: str | None = None


@frozen_record
class ReceiptIn:
    smpp_id: str
    smsc: str
    state: str  # a final part state
    error: str | None
    done_at: float
    destination: str | None = None  # the address the receipt names, when it names one
