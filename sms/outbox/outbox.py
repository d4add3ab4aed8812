"""The durable outbox: every accepted SMS is committed first, then moved by an explicit state machine.

Messages go queued -> submitting -> submitted -> delivered / failed / expired,
and back to queued on a temporary error. Each SMPP part has its own row and
state; the claim that hands a message to the dispatcher commits its unsent parts
as ``submitting``, before any submit_sm goes out, so after a crash the parts left
in ``submitting`` are the only ones that may have been sent twice. We resubmit
them (nothing accepted is lost) and count as possible duplicates those the send
journal (sms.carrier.send_journal) says went out unanswered, or all of them without one.

The hot path is batched: writes go through ``GroupCommit`` lanes that put
everything that arrived while one transaction ran into the next one, and all
lanes share one lock so SQLite never has two writers spinning on its lock.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam as _bind, delete, func, insert, select, update
from twisted.internet.defer import Deferred, DeferredLock, succeed
from twisted.logger import Logger

from common.masking import mask_mobile
from storage.driver_sql import DriverSql
from sms.tables import (
    SmsAlertCursor, SmsCounter, SmsMessage, SmsOptOut, SmsPart, SmsRepaymentDue,
    SmsUnmatchedReceipt,
)

log = Logger(namespace="hotline.sms.outbox")

M = SmsMessage.__table__
P = SmsPart.__table__
U = SmsUnmatchedReceipt.__table__
O = SmsOptOut.__table__
C = SmsCounter.__table__
A = SmsAlertCursor.__table__
R = SmsRepaymentDue.__table__

QUEUED, SUBMITTING, SUBMITTED = "queued", "submitting", "submitted"
DELIVERED, FAILED, EXPIRED = "delivered", "failed", "expired"
FINAL = frozenset({DELIVERED, FAILED, EXPIRED})

# A message may jump from submitting to a final state when a DLR that came
# before its submit_sm_resp is matched in the same transaction as the result.
MESSAGE_TRANSITIONS = {
    QUEUED: frozenset({SUBMITTING, EXPIRED, FAILED}),
    SUBMITTING: frozenset({QUEUED, SUBMITTED, DELIVERED, FAILED, EXPIRED}),
    SUBMITTED: frozenset({DELIVERED, FAILED, EXPIRED}),
}
PART_TRANSITIONS = {
    QUEUED: frozenset({SUBMITTING, EXPIRED, FAILED}),
    SUBMITTING: frozenset({QUEUED, SUBMITTED, FAILED}),
    SUBMITTED: frozenset({DELIVERED, FAILED, EXPIRED}),
}

CLASSES = ("code", "reply", "transaction", "bulk")
PRIORITY = {"code": 30, "reply": 25, "transaction": 20, "bulk": 10}
OPTABLE = frozenset({"transaction", "bulk"})  # classes a TD opt-out stops
LIMITED = frozenset({"transaction", "bulk"})  # classes under the per-destination limit
SCRUBBED = "(scrubbed: sensitive text removed at final state)"
EXPIRY_GRACE = 3600.0  # a submitted part with no DLR this long after validity is expired


def _ids(name: str = "ids"):
    return _bind(name, expanding=True)


# Statements built once: a transaction then only binds values, instead of building a
# statement and coercing every value of its IN list each time.
_SENSITIVE = select(M.c.id).where(M.c.id.in_(_ids()), M.c.sensitive == 1)
_SCRUB_TEXT = update(M).where(M.c.id.in_(_ids())).values(text=SCRUBBED, params="{}")
_SCRUB_PARTS = update(P).where(P.c.message_id.in_(_ids())).values(payload=b"")


class _HotSql:
    """The statements every message goes through (accept, claim, submit results, receipts,
    roll-up), in the driver's own SQL (storage.driver_sql); Core statements serve the rest."""

    def __init__(self, paramstyle: str, sqlite: bool):
        d = self.driver = DriverSql(paramstyle)
        lock = "" if sqlite else " FOR UPDATE SKIP LOCKED"  # instances claim disjoint rows
        self.due = d.sql(
            "SELECT id, center, klass, priority, destination, valid_until FROM sms_message"
            f" WHERE state = '{QUEUED}' AND next_attempt_at <= ?"
            " ORDER BY priority DESC, next_attempt_at, id LIMIT ?" + lock)
        self.claim = d.sql(f"UPDATE sms_message SET state = '{SUBMITTING}', claimed_by = ?"
                           " WHERE id IN ({in})")
        self.unsent_parts = d.sql(
            "SELECT id, message_id, payload, data_coding, esm_class FROM sms_part"
            f" WHERE message_id IN ({{in}}) AND state = '{QUEUED}' ORDER BY message_id, seq")
        self.mark = d.sql(f"UPDATE sms_part SET state = '{SUBMITTING}'"
                          f" WHERE message_id IN ({{in}}) AND state = '{QUEUED}'")
        self.part_ok = d.sql(f"UPDATE sms_part SET state = '{SUBMITTED}', smpp_id = ?, smsc = ?,"
                             " submitted_at = ? WHERE id = ?")
        self.early = d.sql("SELECT id, smpp_id, smsc, state, error, done_at"
                           " FROM sms_unmatched_receipt WHERE smpp_id IN ({in})")
        self.parts_by_smpp_id = d.sql("SELECT id, message_id, state, smpp_id, smsc FROM sms_part"
                                      " WHERE smpp_id IN ({in})")
        self.part_receipt = d.sql("UPDATE sms_part SET state = ?, error_code = ?, done_at = ?"
                                  " WHERE id = ?")
        self.rollup = d.sql(
            "SELECT m.id, m.state, m.attempts, m.valid_until, m.sensitive, p.state"
            " FROM sms_message m JOIN sms_part p ON p.message_id = m.id WHERE m.id IN ({in})")
        self.submitted = d.sql(f"UPDATE sms_message SET state = '{SUBMITTED}', submitted_at = ?"
                               " WHERE id IN ({in})")
        self.final = d.sql("UPDATE sms_message SET state = ?, final_at = ?, error = ?"
                           " WHERE id IN ({in})")
        # Accepting. By (center, key): the unique index serves it only with the center given.
        self.by_idem_key = d.sql("SELECT id, center, idem_key, part_count FROM sms_message"
                                 " WHERE center = ? AND idem_key IN ({in})")
        self.opted_out = d.sql("SELECT center, mobile FROM sms_optout"
                               " WHERE center = ? AND mobile IN ({in})")
        self.insert_message = d.sql(
            "INSERT INTO sms_message (center, klass, priority, template, params, text, sensitive,"
            " destination, idem_key, part_count, state, attempts, possible_duplicates,"
            " next_attempt_at, valid_until, created_at)"
            f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{QUEUED}', 0, 0, ?, ?, ?)")
        self.insert_part = d.sql(
            "INSERT INTO sms_part (message_id, seq, payload, data_coding, esm_class, state)"
            f" VALUES (?, ?, ?, ?, ?, '{QUEUED}')")

    def run(self, session, sql: str, params=(), ids: Sequence = ()):
        """Execute on the session's connection; ``ids`` fill the statement's IN list, after
        ``params``. A list of tuples as ``params`` is an executemany."""
        if "{in}" in sql:
            sql = self.driver.with_in(sql, ids)
            params = (*params, *ids)
        return session.connection().exec_driver_sql(sql, params)


class IllegalTransition(Exception):
    """A state change the outbox state machine does not allow."""


class OutboxError(Exception):
    """Base of the reasons a message is refused at accept."""


class OptedOut(OutboxError):
    """The destination opted out of this class of messages for this center."""


class DestinationLimited(OutboxError):
    """The destination reached its hourly limit for alerts and bulk messages."""


def check_transition(old: str, new: str, table: dict = MESSAGE_TRANSITIONS) -> None:
    if new not in table.get(old, ()):
        raise IllegalTransition(f"{old} -> {new}")


def rollup(part_states: Sequence[str]) -> str:
    """The message state its parts imply (a pure function, pinned by tests)."""
    states = set(part_states)
    if SUBMITTING in states:
        return SUBMITTING
    if QUEUED in states:
        return FAILED if FAILED in states else QUEUED
    if states <= FINAL:
        if states == {DELIVERED}:
            return DELIVERED
        return FAILED if FAILED in states else EXPIRED
    return SUBMITTED


def receipt_state(state: str) -> str | None:
    """SMPP DLR ``stat`` (or an already normalised state) to a final part state, None if not final."""
    s = (state or "").upper()
    if s in ("DELIVRD", "DELIVERED"):
        return DELIVERED
    if s in ("EXPIRED",):
        return EXPIRED
    if s in ("UNDELIV", "UNDELIVERABLE", "REJECTD", "REJECTED", "DELETED", "UNKNOWN", "FAILED"):
        return FAILED
    return None


@dataclass(frozen=True)
class EncodedPart:
    payload: bytes
    data_coding: int
    esm_class: int


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class SubmitResult:
    """What became of one submit_sm: ok (message id), temporary or permanent error."""

    part_id: int
    message_id: int
    outcome: str  # ok / temporary / permanent
    smpp_id: str | None = None
    smsc: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ReceiptIn:
    smpp_id: str
    smsc: str
    state: str  # a final part state
    error: str | None
    done_at: float


class GroupCommit:
    """Items added while one transaction runs are committed together in the next.

    ``fn(session, items)`` returns one result per item (an exception instance
    fails that item's Deferred); every Deferred fires only after the commit.
    Items added with ``add_quiet`` have no Deferred: ``on_committed(items)`` hears
    them once per transaction instead (the hot path's thousands of submit results).
    """

    def __init__(self, db, fn: Callable, lock: DeferredLock, max_batch: int = 2000,
                 on_committed: Callable[[list], None] | None = None):
        self.db, self.fn, self.lock, self.max_batch = db, fn, lock, max_batch
        self.on_committed = on_committed
        self._pending: list[tuple[Any, Deferred | None]] = []
        self._running = False

    def add(self, item: Any) -> Deferred:
        d: Deferred = Deferred()
        self._pending.append((item, d))
        self._kick()
        return d

    def add_quiet(self, item: Any) -> None:
        self._pending.append((item, None))
        self._kick()

    def _kick(self) -> None:
        if self._running or not self._pending:
            return
        self._running = True
        batch = self._pending[:self.max_batch]
        del self._pending[:self.max_batch]
        d = self.lock.run(self.db.run, self.fn, [item for item, _ in batch])
        d.addCallbacks(self._done, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))

    def _done(self, results, batch) -> None:
        self._running = False
        quiet = []
        for (item, d), result in zip(batch, results):
            if d is None:
                quiet.append(item)
            elif isinstance(result, Exception):
                d.errback(result)
            else:
                d.callback(result)
        if quiet and self.on_committed is not None:
            self.on_committed(quiet)
        self._kick()

    def _failed(self, failure, batch) -> None:
        self._running = False
        log.failure("outbox transaction failed ({n} items)", failure, n=len(batch))
        for _, d in batch:
            if d is not None:
                d.errback(failure)
        self._kick()


class QuietHours:
    """Per-class windows (local time) in which a message waits instead of going out."""

    def __init__(self, windows: dict, timezone: str):
        self.windows = windows
        self.tz = ZoneInfo(timezone)

    def release_at(self, klass: str, now: float) -> float:
        """``now`` if the class may send now, else the epoch second its quiet window ends."""
        window = self.windows.get(klass)
        if window is None:
            return now
        start, end = window
        local = dt.datetime.fromtimestamp(now, self.tz)
        minute = local.hour * 60 + local.minute
        inside = (start <= minute < end) if start <= end else (minute >= start or minute < end)
        if not inside:
            return now
        day = local.date()
        if start > end and minute >= start:
            day += dt.timedelta(days=1)
        release = dt.datetime.combine(day, dt.time(end // 60 % 24, end % 60), self.tz)
        return release.timestamp()


class Outbox:
    """Accepts messages durably and records what the dispatcher and the SMSC say about them."""

    def __init__(self, db, clock, config, *, encode: Callable, instance: str = "hotline-1",
                 templates=None):
        self.db, self.clock, self.config = db, clock, config
        self.encode = encode  # text, max_parts -> EncodedMessage (sms.carrier.text.encode)
        self.instance = instance
        self.templates = templates
        self.quiet = QuietHours(config.quiet_hours, config.timezone)
        self.lock = DeferredLock()
        # SQLite has one writer at a time, so every transaction takes the one lock. On
        # PostgreSQL accepting (inserts of new rows) runs beside the dispatcher's work,
        # which touches only rows already accepted; accepts still take turns among
        # themselves, so that twins in two batches meet as duplicates, not as a conflict.
        self.accept_lock = self.lock if db.is_sqlite else DeferredLock()
        self._hot = _HotSql(db.engine.dialect.paramstyle, db.is_sqlite)
        # Small accept batches: on SQLite the lock is shared, and a big batch would hold the
        # dispatcher's claims and results back while a bulk campaign is being accepted.
        self._accepts = GroupCommit(db, self._accept_batch, self.accept_lock, max_batch=250)
        # Submit results and receipts share one lane: one transaction carries them all.
        self._progress = GroupCommit(db, self._progress_batch, self.lock,
                                     on_committed=self._results_committed)
        # Told the submit results of each committed transaction (the send journal).
        self.recorded: list[Callable[[list[SubmitResult]], None]] = []
        self.listeners: list[Callable[[], None]] = []  # woken when new work is accepted
        self._wake_call = None

    # -- accepting --------------------------------------------------------------

    async def send(self, center: str, template: str, params: dict, destination: str,
                   idem_key: str) -> Accepted:
        """Render a template, encode it and accept it (the usual entry point)."""
        return await self.accept(self.build(center, Draft(template, params, destination,
                                                          idem_key)))

    def build(self, center: str, draft: Draft, now: float | None = None) -> Outgoing:
        """Render and encode a draft (pure; safe on a pool thread)."""
        rendered = self.templates.render(center, draft.template, draft.params)
        encoded = self.encode(rendered.text, max_parts=rendered.max_parts)
        parts = tuple(EncodedPart(bytes(p), encoded.data_coding, encoded.esm_class)
                      for p in encoded.parts)
        valid_for = None
        if draft.valid_until is not None:
            valid_for = max(1.0, draft.valid_until - (now or self.clock.seconds()))
        return Outgoing(
            center=center, klass=rendered.klass, template=draft.template,
            params=rendered.logged_params, text=rendered.text, destination=draft.destination,
            idem_key=draft.idem_key, parts=parts, sensitive=rendered.sensitive,
            valid_for=valid_for)

    def accept_drafts(self, center: str, drafts: list[Draft], cursor: int,
                      dues: Iterable = ()) -> Deferred[list]:
        """Render, accept, store repayments due (Due) and move the center's
        alert cursor in one transaction.

        Fires with one result per draft: Accepted, or the OutboxError that refused it.
        Rendering happens on the pool thread, so a big batch never stalls the reactor.
        """
        d = self.accept_lock.run(self.db.run, self._accept_drafts, center, drafts, cursor,
                                 list(dues))
        d.addCallback(self._woken)
        return d

    def open_dues(self, center: str, first: str, last: str, drop_before: str) -> Deferred[list]:
        """Repayments due from ``first`` to ``last`` (ISO dates) with no reminder yet, as
        (row id, Due); rows due before ``drop_before`` are deleted on the way."""
        return self.lock.run(self.db.run, self._open_dues, center, first, last, drop_before)

    @staticmethod
    def _open_dues(session, center: str, first: str, last: str, drop_before: str) -> list:
        session.execute(delete(R).where(R.c.center == center, R.c.due_date < drop_before))
        return [(r.id, Due(r.account_no, r.loan_tail, r.amount, r.due_date, r.method))
                for r in session.execute(select(R).where(
                    R.c.center == center, R.c.reminded_at.is_(None),
                    R.c.due_date >= first, R.c.due_date <= last).order_by(R.c.id))]

    def accept_reminders(self, center: str, drafts: list[Draft],
                         due_ids: list[int]) -> Deferred[list]:
        """Accept the reminders and mark their repayments reminded in one transaction."""
        d = self.accept_lock.run(self.db.run, self._accept_reminders, center, drafts, due_ids)
        d.addCallback(self._woken)
        return d

    def _accept_reminders(self, session, center: str, drafts: list[Draft],
                          due_ids: list[int]) -> list:
        now = self.clock.seconds()
        results = self._accept_batch(session, [self.build(center, d, now) for d in drafts])
        if due_ids:
            session.execute(update(R).where(R.c.id.in_(due_ids)).values(reminded_at=now))
        return results

    def _woken(self, results: list) -> list:
        if any(isinstance(r, Accepted) and not r.duplicate for r in results):
            self._wake()
        return results

    def _accept_drafts(self, session, center: str, drafts: list[Draft], cursor: int,
                       dues: list) -> list:
        now = self.clock.seconds()
        items = [self.build(center, d, now) for d in drafts]
        results = self._accept_batch(session, items) if items else []
        if dues:
            self._store_dues(session, center, dues)
        done = session.execute(update(A).where(A.c.center == center).values(
            cursor=cursor, updated_at=now)).rowcount
        if not done:
            session.execute(insert(A).values(center=center, cursor=cursor, updated_at=now))
        return results

    @staticmethod
    def _store_dues(session, center: str, dues: list) -> None:
        """One row per account and due date: a replayed event adds nothing."""
        known = {(r.account_no, r.due_date) for r in session.execute(
            select(R.c.account_no, R.c.due_date).where(
                R.c.center == center, R.c.account_no.in_({d.account_no for d in dues})))}
        rows = []
        for due in dues:
            if (due.account_no, due.due_date) not in known:
                known.add((due.account_no, due.due_date))
                rows.append(dict(center=center, account_no=due.account_no,
                                 loan_tail=due.loan_tail, amount=due.amount,
                                 due_date=due.due_date, method=due.method, reminded_at=None))
        if rows:
            session.execute(insert(R), rows)

    def _wake(self) -> None:
        self._wake_call = None
        for wake in list(self.listeners):
            wake()

    def alert_cursor(self, center: str) -> Deferred[int]:
        return self.db.run(lambda s: s.execute(
            select(A.c.cursor).where(A.c.center == center)).scalar() or 0)

    def accept(self, message: Outgoing) -> Deferred[Accepted]:
        """Commit the message (or find its twin by idempotency key); fires after the commit."""
        if message.klass not in PRIORITY:
            raise ValueError(f"unknown message class {message.klass!r}")
        d = self._accepts.add(message)
        d.addCallback(self._accepted)
        return d

    def accept_in(self, session, items: list[Outgoing]) -> list:
        """Accept within the caller's transaction (the door commits its own rows with them);
        one Accepted or OutboxError per item. Call ``notify_accepted`` after the commit."""
        return self._accept_batch(session, items)

    def notify_accepted(self) -> None:
        """Wake the dispatcher for messages committed through ``accept_in`` (once per
        reactor turn however many are told)."""
        if self._wake_call is None:
            self._wake_call = self.clock.callLater(0, self._wake)

    def _accepted(self, accepted: Accepted) -> Accepted:
        if not accepted.duplicate and self._wake_call is None:
            # Once for the whole committed batch, at the next reactor turn.
            self._wake_call = self.clock.callLater(0, self._wake)
        return accepted

    def _accept_batch(self, session, items: list[Outgoing]) -> list:
        now = self.clock.seconds()
        results: list = [None] * len(items)
        keys = {(m.center, m.idem_key) for m in items}
        hot = self._hot
        existing = {(r.center, r.idem_key): Accepted(r.id, r.part_count, True)
                    for r in self._by_center(session, hot.by_idem_key, keys)}
        optable = {(m.center, m.destination) for m in items if m.klass in OPTABLE}
        opted = {(r.center, r.mobile) for r in self._by_center(session, hot.opted_out, optable)}
        limited = {m.destination for m in items if m.klass in LIMITED}
        counts: dict[str, int] = {}
        if limited:
            for row in session.execute(
                    select(M.c.destination, func.count()).where(
                        M.c.destination.in_(limited), M.c.created_at > now - 3600,
                        M.c.klass.in_(LIMITED)).group_by(M.c.destination)):
                counts[row[0]] = row[1]
        rows, owners = [], []
        for i, m in enumerate(items):
            key = (m.center, m.idem_key)
            if key in existing:
                results[i] = existing[key]
                continue
            if (m.center, m.destination) in opted and m.klass in OPTABLE:
                results[i] = OptedOut(f"{mask_mobile(m.destination)} opted out of {m.klass}")
                continue
            if m.klass in LIMITED:
                counts[m.destination] = counts.get(m.destination, 0) + 1
                if counts[m.destination] > self.config.per_destination_per_hour:
                    results[i] = DestinationLimited(
                        f"{mask_mobile(m.destination)} reached "
                        f"{self.config.per_destination_per_hour} messages this hour")
                    continue
            valid_for = m.valid_for or self.config.validity[m.klass]
            existing[key] = None  # a twin later in this batch is a duplicate of this one
            rows.append((
                m.center, m.klass, PRIORITY[m.klass], m.template,
                json.dumps(m.params, ensure_ascii=False, default=str), m.text,
                int(m.sensitive), m.destination, m.idem_key, len(m.parts),
                self.quiet.release_at(m.klass, now), now + valid_for, now))
            owners.append(i)
        if rows:
            # A plain executemany and one lookup by key: RETURNING in parameter order costs
            # SQLite one statement per row.
            hot.run(session, hot.insert_message, rows)
            new_ids = {(r.center, r.idem_key): r.id for r in self._by_center(
                session, hot.by_idem_key, {(items[i].center, items[i].idem_key) for i in owners})}
            part_rows = []
            for i in owners:
                m = items[i]
                message_id = new_ids[(m.center, m.idem_key)]
                results[i] = Accepted(message_id, len(m.parts), False)
                existing[(m.center, m.idem_key)] = Accepted(message_id, len(m.parts), True)
                for seq, part in enumerate(m.parts):
                    part_rows.append((message_id, seq, part.payload, part.data_coding,
                                      part.esm_class))
            hot.run(session, hot.insert_part, part_rows)
        for i, m in enumerate(items):
            if results[i] is None:  # an in-batch twin of a message inserted above
                results[i] = existing[(m.center, m.idem_key)]
        return results

    def _by_center(self, session, sql: str, pairs: set[tuple[str, str]]) -> list:
        """Rows by (center, key) pairs, one query per center, so that the unique index on
        (center, key) serves it."""
        by_center: dict[str, list[str]] = {}
        for center, key in pairs:
            by_center.setdefault(center, []).append(key)
        return [row for center, ids in by_center.items()
                for row in self._hot.run(session, sql, (center,), ids)]

    # -- opt-out list -------------------------------------------------------------

    def set_opt_out(self, center: str, mobile: str, opted_out: bool) -> Deferred:
        return self.db.run(self._set_opt_out, center, mobile, opted_out, self.clock.seconds())

    @staticmethod
    def _set_opt_out(session, center, mobile, opted_out, now) -> None:
        session.execute(delete(O).where(O.c.center == center, O.c.mobile == mobile))
        if opted_out:
            session.execute(insert(O).values(center=center, mobile=mobile, created_at=now))

    def is_opted_out(self, center: str, mobile: str) -> Deferred[bool]:
        return self.db.run(lambda s: s.execute(select(O.c.id).where(
            O.c.center == center, O.c.mobile == mobile)).first() is not None)

    # -- the dispatcher's side ----------------------------------------------------------

    def recover(self, journal=None) -> Deferred[int]:
        """After a restart: settle the parts left ``submitting``; fires with the count of doubtful ones.

        With a trusted send journal (sms.carrier.send_journal) a part that was answered gets its
        answer, one that never left is requeued, and only one sent and unanswered is
        resent and counted as a possible duplicate. Without one, every such part counts.
        The journal (already open for this run) is read on the pool thread, and the
        earlier runs' segments are removed once this has committed.
        """
        d = self.lock.run(self.db.run, self._recover, self.clock.seconds(), journal)
        if journal is not None:
            d.addCallback(lambda n: (journal.discard_before_current(), n)[1])
        return d

    def _recover(self, session, now: float, journal=None) -> int:
        mine = (M.c.claimed_by == self.instance) | (M.c.claimed_by.is_(None))
        message_ids = [r[0] for r in session.execute(
            select(M.c.id).where(M.c.state == SUBMITTING, mine))]
        if not message_ids:
            return 0
        view = journal.read() if journal is not None else None
        parts = list(session.execute(select(P.c.id, P.c.message_id).where(
            P.c.message_id.in_(message_ids), P.c.state == SUBMITTING)))
        answered = []
        doubtful: dict[int, int] = {}
        for part_id, message_id in parts:
            if view is None or (part_id in view.last and view.last[part_id] is None):
                doubtful[message_id] = doubtful.get(message_id, 0) + 1
            elif part_id in view.last:
                answered.append(view.last[part_id])
        if answered:
            self._apply_results(session, answered, now)
        session.execute(update(P).where(P.c.message_id.in_(message_ids),
                                         P.c.state == SUBMITTING).values(state=QUEUED))
        for message_id, n in doubtful.items():
            session.execute(update(M).where(M.c.id == message_id).values(
                possible_duplicates=M.c.possible_duplicates + n))
        total = sum(doubtful.values())
        if total:
            self._bump(session, "possible_duplicates", total)
        self._rollup(session, message_ids, now, retry_now=True)
        log.info("outbox recovered {m} claimed messages: {a} parts answered before the crash, "
                 "{n} possibly sent twice{how}", m=len(message_ids), a=len(answered), n=total,
                 how="" if view is not None else " (no trusted send journal)")
        return total

    @staticmethod
    def _bump(session, name: str, n: int) -> None:
        row = session.execute(select(C.c.value).where(C.c.name == name)).first()
        if row is None:
            session.execute(insert(C).values(name=name, value=n))
        else:
            session.execute(update(C).where(C.c.name == name).values(value=C.c.value + n))

    def claim(self, limit: int) -> Deferred[list[ClaimedMessage]]:
        """Take up to ``limit`` due messages, highest priority first, and mark them ``submitting``.

        Their unsent parts are committed ``submitting`` here, in the claim, so that no
        transaction stands between a window slot freeing and the next submit_sm.
        """
        return self.lock.run(self.db.run, self._claim, self.clock.seconds(), limit)

    def _claim(self, session, now: float, limit: int) -> list[ClaimedMessage]:
        hot = self._hot
        claimed: dict[int, ClaimedMessage] = {}
        expired = []
        for id_, center, klass, priority, destination, valid_until in hot.run(
                session, hot.due, (now, limit)):
            if valid_until <= now:
                expired.append(id_)
            else:
                claimed[id_] = ClaimedMessage(id_, center, klass, priority, destination,
                                              valid_until)
        if expired:
            session.execute(update(P).where(P.c.message_id.in_(expired),
                                            P.c.state == QUEUED).values(state=EXPIRED, done_at=now))
            self._set_final(session, expired, EXPIRED, now, "validity")
        if not claimed:
            return []
        ids = list(claimed)
        hot.run(session, hot.claim, (self.instance,), ids)
        for part_id, message_id, payload, data_coding, esm_class in hot.run(
                session, hot.unsent_parts, (), ids):
            c = claimed[message_id]
            c.part_ids.append(part_id)
            c.parts.append(EncodedPart(bytes(payload), data_coding, esm_class))  # PG: memoryview
        hot.run(session, hot.mark, (), ids)
        return list(claimed.values())

    def record(self, result: SubmitResult) -> None:
        """Record one submit outcome, batched with its neighbours; ``recorded`` listeners
        hear it after the commit (a failed transaction is logged; recovery settles it)."""
        self._progress.add_quiet(("result", result))

    def _results_committed(self, items: list) -> None:
        results = [result for _kind, result in items]
        for listener in list(self.recorded):
            listener(results)

    def release(self, message_ids: list[int]) -> Deferred:
        """Give back claimed messages the dispatcher will not send now (on stop)."""
        return self.lock.run(self.db.run, self._release, message_ids)

    @staticmethod
    def _release(session, message_ids: list[int]) -> None:
        session.execute(update(P).where(P.c.message_id.in_(message_ids),
                                        P.c.state == SUBMITTING).values(state=QUEUED))
        session.execute(update(M).where(M.c.id.in_(message_ids), M.c.state == SUBMITTING)
                        .values(state=QUEUED, claimed_by=None))

    def _progress_batch(self, session, items: list) -> list:
        now = self.clock.seconds()
        touched: set[int] = set()
        results = [x for kind, x in items if kind == "result"]
        if results:
            touched |= self._apply_results(session, results, now)
        receipts = [x for kind, x in items if kind == "receipt"]
        if receipts:
            touched |= self._apply_receipts(session, receipts, now)
        self._rollup(session, touched, now)
        return [None] * len(items)

    def _apply_results(self, session, results: list[SubmitResult], now: float) -> set[int]:
        ok = [r for r in results if r.outcome == "ok"]
        temporary = [r for r in results if r.outcome == "temporary"]
        permanent = [r for r in results if r.outcome == "permanent"]
        if ok:
            hot = self._hot
            hot.run(session, hot.part_ok, [(r.smpp_id, r.smsc, now, r.part_id) for r in ok])
        if temporary:
            session.execute(update(P).where(P.c.id == _bind("pid")).values(
                state=QUEUED, error_code=_bind("err")),
                [{"pid": r.part_id, "err": r.error} for r in temporary])
        if permanent:
            session.execute(update(P).where(P.c.id == _bind("pid")).values(
                state=FAILED, error_code=_bind("err"), smsc=_bind("smsc"), done_at=now),
                [{"pid": r.part_id, "err": r.error, "smsc": r.smsc} for r in permanent])
        if ok:
            self._match_early_receipts(session, ok)
        return {r.message_id for r in results}

    def _match_early_receipts(self, session, ok: list[SubmitResult]) -> None:
        hot = self._hot
        early = list(hot.run(session, hot.early, (), list({r.smpp_id for r in ok})))
        if not early:
            return
        by_key = {(r.smpp_id, r.smsc): r.part_id for r in ok}
        used = []
        for e in early:
            part_id = by_key.get((e.smpp_id, e.smsc))
            if part_id is None:
                continue
            session.execute(update(P).where(P.c.id == part_id, P.c.state == SUBMITTED).values(
                state=e.state, error_code=e.error, done_at=e.done_at))
            used.append(e.id)
        if used:
            session.execute(delete(U).where(U.c.id.in_(used)))

    def _rollup(self, session, message_ids: Iterable[int], now: float,
                retry_now: bool = False) -> None:
        """Bring each message's state in line with its parts (temporary errors back off)."""
        message_ids = list(message_ids)
        if not message_ids:
            return
        parts: dict[int, list[str]] = {}
        rows = {}
        hot = self._hot
        for r in hot.run(session, hot.rollup, (), message_ids):
            parts.setdefault(r[0], []).append(r[5])
            rows[r[0]] = r
        submitted, final, requeue = [], {}, []
        for message_id, (_, state, attempts, valid_until, _sensitive, _) in rows.items():
            new = rollup(parts[message_id])
            if new == state:
                continue
            check_transition(state, new)
            if new == SUBMITTED:
                submitted.append(message_id)
            elif new == QUEUED:
                delay = 0.0 if retry_now else min(
                    self.config.retry_max, self.config.retry_base * (2 ** attempts))
                if now + delay >= valid_until:
                    final.setdefault(EXPIRED, []).append(message_id)
                else:
                    requeue.append({"mid": message_id, "at": now + delay,
                                    "attempts": attempts + (0 if retry_now else 1)})
            else:
                final.setdefault(new, []).append(message_id)
        if submitted:
            hot.run(session, hot.submitted, (now,), submitted)
        if requeue:
            session.execute(update(M).where(M.c.id == _bind("mid")).values(
                state=QUEUED, next_attempt_at=_bind("at"), attempts=_bind("attempts"),
                claimed_by=None), requeue)
        for state, ids in final.items():
            if state != DELIVERED:  # a delivered message has no unsent part left
                session.execute(update(P).where(P.c.message_id.in_(ids), P.c.state == QUEUED)
                                .values(state=state if state == EXPIRED else FAILED,
                                        done_at=now, error_code="not sent"))
            self._set_final(session, ids, state, now,
                            sensitive=[i for i in ids if rows[i][4]])

    def _set_final(self, session, ids: list[int], state: str, now: float,
                   error: str | None = None, sensitive: list[int] | None = None) -> None:
        """Final state; sensitive text (codes) is scrubbed. ``sensitive`` if the caller knows."""
        self._hot.run(session, self._hot.final, (state, now, error), ids)
        if sensitive is None:
            sensitive = [r[0] for r in session.execute(_SENSITIVE, {"ids": ids})]
        if sensitive:
            session.execute(_SCRUB_TEXT, {"ids": sensitive})
            session.execute(_SCRUB_PARTS, {"ids": sensitive})

    # -- receipts ---------------------------------------------------------------------

    def receipt(self, smpp_id: str, smsc: str, state: str, error: str | None,
                done_at: float | None) -> Deferred:
        """Record a DLR; fires after the commit, so the deliver_sm may be acknowledged then."""
        final = receipt_state(state)
        if final is None:
            return succeed(None)  # ENROUTE, ACCEPTD: not a final state, nothing to record
        return self._progress.add(("receipt", ReceiptIn(
            smpp_id, smsc, final, error, done_at if done_at else self.clock.seconds())))

    def _apply_receipts(self, session, items: list[ReceiptIn], now: float) -> set[int]:
        found: dict[tuple[str, str], tuple[int, int, str]] = {}
        hot = self._hot
        for part_id, message_id, state, smpp_id, smsc in hot.run(
                session, hot.parts_by_smpp_id, (), list({i.smpp_id for i in items})):
            found[(smpp_id, smsc)] = (part_id, message_id, state)
        updates, unmatched, messages = [], [], set()
        for item in items:
            hit = found.get((item.smpp_id, item.smsc))
            if hit is None:
                unmatched.append(dict(smpp_id=item.smpp_id, smsc=item.smsc, state=item.state,
                                      error=item.error, done_at=item.done_at, received_at=now))
                continue
            part_id, message_id, state = hit
            if state != SUBMITTED:
                continue  # a repeated DLR for a part already final
            check_transition(state, item.state, PART_TRANSITIONS)
            updates.append((item.state, item.error, item.done_at, part_id))
            found[(item.smpp_id, item.smsc)] = (part_id, message_id, item.state)
            messages.add(message_id)
        if updates:
            hot.run(session, hot.part_receipt, updates)
        if unmatched:
            session.execute(insert(U), unmatched)
        return messages

    def expire_stale(self) -> Deferred[int]:
        """Expire messages whose validity ended: queued ones at once, submitted ones after a grace."""
        return self.lock.run(self.db.run, self._expire_stale, self.clock.seconds())

    def _expire_stale(self, session, now: float) -> int:
        stale = [r[0] for r in session.execute(select(M.c.id).where(
            ((M.c.state == QUEUED) & (M.c.valid_until <= now))
            | ((M.c.state == SUBMITTED) & (M.c.valid_until <= now - EXPIRY_GRACE))))]
        if stale:
            session.execute(update(P).where(P.c.message_id.in_(stale),
                                            P.c.state.in_([QUEUED, SUBMITTED]))
                            .values(state=EXPIRED, done_at=now))
            self._rollup(session, stale, now)
        session.execute(delete(U).where(U.c.received_at <= now - 2 * EXPIRY_GRACE))
        return len(stale)

    # -- reading ------------------------------------------------------------------------

    def counts(self) -> Deferred[dict[str, int]]:
        """Messages per state (for tests, stats and the bench)."""
        return self.db.run(lambda s: dict(
            s.execute(select(M.c.state, func.count()).group_by(M.c.state)).all()))

    def counter(self, name: str) -> Deferred[int]:
        return self.db.run(lambda s: (s.execute(
            select(C.c.value).where(C.c.name == name)).scalar() or 0))
