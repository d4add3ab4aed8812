"""The durable outbox: every accepted SMS is committed first, then moved by an explicit state machine.

This is the facade the daemon, jobs and doors use; each concern has its own room:

* ``states``: message, part and receipt states, transitions, the roll-up;
* ``accept``: dedupe, opt-outs, limits, the insert; ``dues``: the alert cursor and
  repayments due; ``quiet_hours``;
* ``claim``, ``results``: the dispatcher's claims and the SMSC's answers;
* ``receipts``: where a DLR updates a message; ``settle``: the message state its parts imply;
* ``expiry``, ``recovery`` (after a crash); ``sql``: tables and the hot statements;
  ``group_commit``: one transaction for everything that arrived while the last one ran.

Writes go through ``GroupCommit`` lanes and all lanes share one lock, so SQLite
never has two writers spinning on its lock; on PostgreSQL accepts and claims, which
touch rows the other lanes do not, run beside them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import func, select
from twisted.internet.defer import Deferred, DeferredLock, succeed
from twisted.logger import Logger

from sms.outbox import accept as _accept
from sms.outbox import claim as _claim
from sms.outbox import dues as _dues
from sms.outbox import expiry, recovery
from sms.outbox.group_commit import GroupCommit
from sms.outbox.quiet_hours import QuietHours
from sms.outbox.receipts import apply_receipts
from sms.outbox.records import (
    Accepted,
    ClaimedMessage,
    Draft,
    EncodedPart,
    Outgoing,
    ReceiptIn,
    SubmitResult,
    Unrenderable,
)
from sms.outbox.results import apply_results
from sms.outbox.settle import settle
from sms.outbox.sql import C, HotSql, M
from sms.outbox.states import receipt_state
from sms.templates import TemplateError

log = Logger(namespace="hotline.sms.outbox")
#: Seconds a receipt may wait for the next submit results' transaction while parts are in
#: flight (sms.outbox.group_commit), at most.
RECEIPT_HOLD = 0.05



def _brought_new(results: list) -> bool:
    """A batch of accepts brought a message to send (not only twins of earlier ones, or
    refusals): the dispatcher has something to claim."""
    return any(isinstance(r, Accepted) and not r.duplicate for r in results)


class Outbox:
    """Accepts messages durably and records what the dispatcher and the SMSC say about them."""

    def __init__(self, db, clock, config, *, encode: Callable, instance: str = "hotline-1",
                 templates=None, batch_turns: bool = False):
        """``batch_turns``: submit results and receipts added in one reactor turn commit
        together (sms.outbox.group_commit), as the daemon runs it; off, each commit starts
        at once, which tests driving a Clock rely on."""
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
        # Likewise claims (queued rows, skipping locked ones, as another daemon's would) run
        # beside submit results and receipts (rows already claimed): a window's results
        # never hold the next claim back. Work that moves both kinds (recovery, release,
        # the expiry sweep) takes both locks (``_exclusive``).
        self.claim_lock = self.lock if db.is_sqlite else DeferredLock()
        self._hot = HotSql(db.engine.dialect.paramstyle, db.is_sqlite)
        # Small accept batches: on SQLite the lock is shared, and a big batch would hold the
        # dispatcher's claims and results back while a bulk campaign is being accepted.
        self._accepts = GroupCommit(db, self._accept_batch, self.accept_lock, max_batch=250,
                                    on_results=self._accepted)
        # Submit results and receipts share one lane: one transaction carries them all, and
        # while ``results_expected()`` receipts wait for the next results (group_commit).
        self._progress = GroupCommit(db, self._progress_batch, self.lock,
                                     on_committed=self._results_committed,
                                     turns=clock if batch_turns else None, hold=RECEIPT_HOLD)
        # Told the submit results of each committed transaction (the send journal).
        self.recorded: list[Callable[[list[SubmitResult]], None]] = []
        self.listeners: list[Callable[[], None]] = []  # woken when new work is accepted
        # True while submit results are on their way (the dispatcher's parts in flight).
        self.results_expected: Callable[[], bool] | None = None
        self._wake_call = None
        self._unmatched_seen: dict[str, int] = {}  # per SMSC, at the last sweep
        self._misattributed: dict[str, float] = {}  # per SMSC, when last warned about

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

    def accept(self, message: Outgoing) -> Deferred[Accepted]:
        """Commit the message (or find its twin by idempotency key); fires after the commit."""
        if message.klass not in _accept.PRIORITY:
            raise ValueError(f"unknown message class {message.klass!r}")
        return self._accepts.add(message)

    def accept_blocking(self, messages: list[Outgoing]) -> list:
        """Accept in one transaction on the calling thread, for the command line and test
        set-up (no reactor, nothing woken): Accepted or the OutboxError, per message."""
        return self.db.run_sync(self._accept_batch, messages)

    def accept_in(self, session, items: list[Outgoing]) -> list:
        """Accept within the caller's transaction (the door commits its own rows with them);
        one Accepted or OutboxError per item. Call ``notify_accepted`` after the commit."""
        return self._accept_batch(session, items)

    def known_in(self, session, items: list[Outgoing]) -> dict:
        """(center, idempotency key) -> Accepted of the items committed before, within the
        caller's transaction."""
        return _accept.known_keys(session, self._hot, items)

    def notify_accepted(self) -> None:
        """Wake the dispatcher for messages committed through ``accept_in`` (once per
        reactor turn however many are told)."""
        if self._wake_call is None:
            self._wake_call = self.clock.callLater(0, self._wake)

    def _accepted(self, results: list) -> None:
        """A batch of accepts committed: wake the dispatcher once for it, at the next reactor
        turn, if it brought a message (not only twins of earlier ones, or refusals)."""
        if _brought_new(results):
            self.notify_accepted()

    def _accept_batch(self, session, items: list[Outgoing]) -> list:
        return _accept.accept_batch(session, self._hot, self.config, self.quiet, items,
                                    self.clock.seconds())

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

    def _accept_built(self, session, center: str, drafts: list[Draft], now: float) -> list:
        """Render each draft and accept those that render: a draft the template refuses
        gets Unrenderable as its result and fails nothing else."""
        results: list = [None] * len(drafts)
        built = []
        for i, draft in enumerate(drafts):
            try:
                built.append((i, self.build(center, draft, now)))
            except (TemplateError, ValueError) as e:
                results[i] = Unrenderable(f"{draft.template}: {e}")
        if built:
            for (i, _), r in zip(built, self._accept_batch(session, [m for _, m in built]),
                                strict=True):
                results[i] = r
        return results

    def _accept_drafts(self, session, center: str, drafts: list[Draft], cursor: int,
                       dues: list) -> list:
        now = self.clock.seconds()
        results = self._accept_built(session, center, drafts, now)
        if dues:
            _dues.store_dues(session, center, dues)
        _dues.move_cursor(session, center, cursor, now)
        return results

    def open_dues(self, center: str, first: str, last: str, drop_before: str) -> Deferred[list]:
        """Repayments due from ``first`` to ``last`` (ISO dates) with no reminder yet, as
        (row id, Due); rows due before ``drop_before`` are deleted on the way."""
        return self.lock.run(self.db.run, _dues.open_dues, center, first, last, drop_before)

    def accept_reminders(self, center: str, drafts: list[Draft],
                         due_ids: list[int]) -> Deferred[list]:
        """Accept the reminders and mark their repayments reminded in one transaction."""
        d = self.accept_lock.run(self.db.run, self._accept_reminders, center, drafts, due_ids)
        d.addCallback(self._woken)
        return d

    def _accept_reminders(self, session, center: str, drafts: list[Draft],
                          due_ids: list[int]) -> list:
        now = self.clock.seconds()
        results = self._accept_built(session, center, drafts, now)
        if due_ids:
            _dues.mark_reminded(session, due_ids, now)
        return results

    def _woken(self, results: list) -> list:
        if _brought_new(results):
            self._wake()
        return results

    def _wake(self) -> None:
        self._wake_call = None
        for wake in list(self.listeners):
            wake()

    def alert_cursor(self, center: str) -> Deferred[int]:
        return self.db.run(_dues.read_cursor, center)

    # -- opt-out list -------------------------------------------------------------

    def set_opt_out(self, center: str, mobile: str, opted_out: bool) -> Deferred:
        return self.db.run(_accept.set_opt_out, center, mobile, opted_out, self.clock.seconds())

    def is_opted_out(self, center: str, mobile: str) -> Deferred[bool]:
        return self.db.run(_accept.is_opted_out, center, mobile)

    # -- the dispatcher's side ----------------------------------------------------------

    def recover(self, journal=None) -> Deferred[int]:
        """After a restart: settle the parts left ``submitting`` (sms.outbox.recovery); fires
        with the count of doubtful ones. The journal (already open for this run) is read on
        the pool thread, and the earlier runs' segments are removed once this has committed.
        """
        d = self._exclusive(recovery.recover, self._hot, self.config, self.instance,
                            self.clock.seconds(), journal)
        if journal is not None:
            d.addCallback(lambda n: (journal.discard_before_current(), n)[1])
        return d

    def recover_lapsed(self) -> Deferred[int]:
        """Give the survivors a dead daemon's claims (sms.outbox.recovery.recover_lapsed);
        fires with the count of parts possibly sent twice."""
        return self._exclusive(recovery.recover_lapsed, self._hot, self.config,
                               self.clock.seconds())

    def claim(self, limit: int) -> Deferred[list[ClaimedMessage]]:
        """Take up to ``limit`` due messages, highest priority first, and mark them ``submitting``.

        Their unsent parts are committed ``submitting`` here, in the claim, so that no
        transaction stands between a window slot freeing and the next submit_sm.
        """
        return self.claim_lock.run(self.db.run, _claim.claim, self._hot, self.instance,
                             self.clock.seconds(), limit)

    def record(self, *results: SubmitResult) -> None:
        """Record submit outcomes, batched with their neighbours; ``recorded`` listeners
        hear them after the commit (a failed transaction is logged; recovery settles it)."""
        self._progress.add_quiet(*(("result", result) for result in results))

    def _results_committed(self, items: list) -> None:
        results = [result for _kind, result in items]
        for listener in list(self.recorded):
            listener(results)

    def release(self, message_ids: list[int]) -> Deferred:
        """Give back claimed messages the dispatcher will not send now (on stop)."""
        return self._exclusive(_claim.release, message_ids)

    def _exclusive(self, fn: Callable, *args) -> Deferred:
        """``fn``'s transaction while neither a claim nor the progress lane runs."""
        if self.claim_lock is self.lock:
            return self.lock.run(self.db.run, fn, *args)
        return self.lock.run(self.claim_lock.run, self.db.run, fn, *args)

    def _progress_batch(self, session, items: list) -> list:
        now = self.clock.seconds()
        touched: set[int] = set()
        results = [x for kind, x in items if kind == "result"]
        if results:
            touched |= apply_results(session, self._hot, results, now, self._misattributed)
        receipts = [x for kind, x in items if kind == "receipt"]
        if receipts:
            touched |= apply_receipts(session, self._hot, receipts, now, self._misattributed)
        settle(session, self._hot, self.config, touched, now)
        return [None] * len(items)

    def receipt(self, smpp_id: str, smsc: str, state: str, error: str | None,
                done_at: float | None, destination: str | None = None) -> Deferred:
        """Record a DLR (sms.outbox.receipts); fires after the commit, so the deliver_sm may
        be acknowledged then. ``destination`` (the receipt's source address) guards the match."""
        final = receipt_state(state)
        if final is None:
            return succeed(None)  # ENROUTE, ACCEPTD: not a final state, nothing to record
        item = ("receipt", ReceiptIn(smpp_id, smsc, final, error,
                                     done_at if done_at else self.clock.seconds(), destination))
        if self.results_expected is not None and self.results_expected():
            return self._progress.add_held(item)
        return self._progress.add(item)

    def expire_stale(self) -> Deferred[int]:
        """Expire messages whose validity ended (queued ones at once, submitted ones after a
        grace), mark overdue receipts unknown, and warn when receipts stay unmatched."""
        return self._exclusive(self._sweep, self.clock.seconds())

    def _sweep(self, session, now: float) -> int:
        stale = expiry.expire_stale(session, self._hot, self.config, now)
        for smsc, n in expiry.unmatched_receipts(session, now).items():
            if n > self._unmatched_seen.get(smsc, 0):
                log.warn("SMSC {smsc}: {n} receipts matched no sent part for {m} minutes: "
                         "if its receipts write message ids in another form than its "
                         "responses, set message_id_resp / message_id_dlr in [smsc:{smsc}]",
                         smsc=smsc, n=n, m=int(expiry.UNMATCHED_AFTER // 60))
            self._unmatched_seen[smsc] = n
        return stale

    # -- reading ------------------------------------------------------------------------

    def counts(self) -> Deferred[dict[str, int]]:
        """Messages per state (for tests, stats and the bench)."""
        return self.db.run(lambda s: dict(
            s.execute(select(M.c.state, func.count()).group_by(M.c.state)).all()))

    def counter(self, name: str) -> Deferred[int]:
        return self.db.run(lambda s: (s.execute(
            select(C.c.value).where(C.c.name == name)).scalar() or 0))
