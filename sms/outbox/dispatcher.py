"""Keeps the router's window full: claims queued messages in batches and submits their parts.

Claims are batched (one transaction per ``batch`` messages) and commit the
claimed parts as ``submitting`` before any of them goes out; results are recorded
through the outbox's group-commit lane, so no transaction stands between an
answer and the next submit_sm. ``max_inflight`` bounds the parts handed to the
router and not yet answered (the binds queue what their windows cannot take).
With a send journal (sms.carrier.send_journal) a crash counts only the parts that went
out unanswered, at most the binds' windows; without one, every claimed part counts.

Claiming is an explicit state machine (``TRANSITIONS``): stopped -> ready -> claiming
(-> claim_again when work is accepted meanwhile) -> ready, or drained when a claim
came back short, until the next poll or accept.
"""
from __future__ import annotations

import heapq
import itertools

from twisted.application.service import Service
from twisted.internet.defer import fail, succeed
from twisted.logger import Logger

from sms.outbox.records import ClaimedMessage, SubmitResult

log = Logger(namespace="hotline.sms.dispatcher")
HOL_SCAN = 64  # ready messages for full SMSCs passed over per pump, at most

STOPPED, READY, CLAIMING, CLAIM_AGAIN, DRAINED = (
    "stopped", "ready", "claiming", "claim_again", "drained")
TRANSITIONS = {
    STOPPED: {READY},
    READY: {CLAIMING, STOPPED},
    CLAIMING: {CLAIM_AGAIN, READY, DRAINED, STOPPED},
    CLAIM_AGAIN: {READY, DRAINED, STOPPED},  # drained: the claim failed
    DRAINED: {READY, STOPPED},
}


class IllegalTransition(RuntimeError):
    """A dispatcher state change the machine does not allow: a bug."""


class Dispatcher(Service):
    """Moves claimed messages from the outbox through the router, highest priority first."""

    name = "sms-dispatcher"
    THROTTLE_RETRY = 0.05  # seconds before a throttled part goes to the router again...
    THROTTLE_TRIES = 3  # ...this many times in a row, then it waits in the queue's backoff

    def __init__(self, outbox, router, clock, *, make_part, temporary: tuple, permanent: tuple,
                 doubtful: tuple = (), unsent: tuple = (), throttled: tuple = (),
                 batch: int = 500, max_inflight: int = 64, poll: float = 1.0,
                 sweep: float = 60.0, journal=None):
        self.outbox, self.router, self.clock = outbox, router, clock
        self.make_part = make_part  # (ClaimedMessage, EncodedPart) -> the router's SubmitPart
        # temporary errors after which the SMSC may have the part (timeout, link lost)
        self.temporary, self.permanent, self.doubtful = temporary, permanent, doubtful
        self.unsent = unsent  # ...unless the error says the part never left
        self.throttled = throttled  # "slow down" answers: the part is retried soon (the bind
        # slows itself down), not put back in the queue
        self.batch, self.max_inflight, self.poll, self.sweep = batch, max_inflight, poll, sweep
        self.journal = journal  # the router's too: it journals parts sent and accepted
        self._ready: list = []  # heap of (-priority, order, ClaimedMessage)
        self._order = itertools.count()
        self.inflight = 0  # parts handed to the router and not yet answered
        self.state = STOPPED
        self._waiting_capacity = False  # a wait for a router slot or a bind is pending
        self._poll_call = None  # while drained: the next claim
        self._sweep_call = None
        self._pump_call = None
        self._answered: list[SubmitResult] = []  # recorded after this turn's writes
        self.submitted = self.temporary_errors = self.permanent_errors = 0
        self.throttled_retries = 0

    # -- state machine -----------------------------------------------------------

    def _to(self, new: str) -> None:
        if new not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"dispatcher {self.state} -> {new}")
        self.state = new

    # -- lifecycle ---------------------------------------------------------------

    def startService(self):
        super().startService()
        self._to(READY)
        if self.journal is not None:
            self.journal.open()  # before anything can be sent, even if recovery fails
        self.outbox.listeners.append(self.wake)
        self.outbox.results_expected = self._expecting
        if self.journal is not None:
            self.outbox.recorded.append(self._recorded)
        d = self.outbox.recover(self.journal)
        d.addCallback(lambda _: self._sweep())
        d.addErrback(lambda f: log.failure("outbox recovery failed", f))
        return d

    def stopService(self):
        """Stop claiming; hand unsent claimed messages back to the queue."""
        super().stopService()
        if self.state != STOPPED:  # a second stop finds nothing to hand back
            self._to(STOPPED)
        self._record_answered()
        if self.wake in self.outbox.listeners:
            self.outbox.listeners.remove(self.wake)
        if self.outbox.results_expected == self._expecting:
            self.outbox.results_expected = None
        if self._recorded in self.outbox.recorded:
            self.outbox.recorded.remove(self._recorded)
        for call in (self._poll_call, self._sweep_call, self._pump_call):
            if call is not None and call.active():
                call.cancel()
        held = [m.message_id for _, _, m in self._ready]
        self._ready = []
        if self.journal is not None:
            self.journal.close()
        if held:
            return self.outbox.release(held)
        return succeed(None)

    def wake(self) -> None:
        """New work was accepted: claim now rather than at the next poll.

        A claim already running may have looked before that work was committed: then
        claim once more when it returns, or the work would wait for the next poll.
        """
        if self.state == DRAINED:
            self._poll_call.cancel()
            self._poll_call = None
            self._to(READY)
        elif self.state == CLAIMING:
            self._to(CLAIM_AGAIN)
        self._fill()

    # -- claiming ---------------------------------------------------------------

    def _fill(self) -> None:
        if self.state != READY or len(self._ready) >= self.batch // 2:
            self._pump()
            return
        self._to(CLAIMING)
        d = self.outbox.claim(self.batch)
        d.addCallbacks(self._claimed, self._claim_failed)

    def _claimed(self, messages: list[ClaimedMessage]) -> None:
        if self.state == STOPPED:  # stopped while claiming: these go back to the queue
            if messages:
                self.outbox.release([m.message_id for m in messages]).addErrback(
                    lambda f: log.failure("releasing claimed messages failed", f))
            return
        again = self.state == CLAIM_AGAIN or len(messages) == self.batch
        for m in messages:
            heapq.heappush(self._ready, (-m.priority, next(self._order), m))
        if again:
            self._to(READY)
        else:
            # The queue is drained: claim again at the next poll or accept, not on every pump.
            self._drained()
        self._pump()
        if again:
            self._fill()

    def _claim_failed(self, failure) -> None:
        if self.state == STOPPED:
            return
        log.failure("claiming queued messages failed; retrying", failure)
        self._drained()

    def _drained(self) -> None:
        self._to(DRAINED)
        self._poll_call = self.clock.callLater(self.poll, self._poll)

    def _poll(self) -> None:
        self._poll_call = None
        self._to(READY)
        self._fill()

    def _sweep(self) -> None:
        self._sweep_call = None
        if self.state == STOPPED:
            return
        d = self.outbox.expire_stale()
        d.addErrback(lambda f: log.failure("expiry sweep failed", f))
        self._sweep_call = self.clock.callLater(self.sweep, self._sweep)
        self._fill()

    # -- sending -----------------------------------------------------------------

    def _pump(self) -> None:
        """Hand ready messages to the router, highest priority first, while there is room.

        A message whose SMSC is bound but full is passed over (up to ``HOL_SCAN`` of them
        per pump) so that one slow carrier does not hold back messages for the others;
        it keeps its place for the next pump. A message no bound bind serves goes to the
        router anyway, which fails it at once so that it is retried with backoff, unless
        no link at all is up (at start, say): then everything waits for a bind.
        """
        passed: list = []
        any_bound = self.router.bound_count() > 0
        while self._ready and self.state != STOPPED and len(passed) < HOL_SCAN:
            m = self._ready[0][2]
            n = len(m.part_ids)
            if self.inflight + n > self.max_inflight and self.inflight:
                break
            room = self.router.has_room(m.destination)
            if room is False or (room is None and not any_bound):
                passed.append(heapq.heappop(self._ready))
                continue
            heapq.heappop(self._ready)
            self.inflight += n
            self._send(m)
        for item in passed:
            heapq.heappush(self._ready, item)
        if passed and not self.inflight:
            self._wait_capacity()  # nothing in flight will pump again: wait for a slot or a bind
        if len(self._ready) < self.batch // 2 and self.state == READY:
            self._fill()

    def _wait_capacity(self) -> None:
        if self._waiting_capacity:
            return
        self._waiting_capacity = True

        def ready(_):
            self._waiting_capacity = False
            self._pump()

        self.router.wait_for_capacity().addBoth(ready)

    def _send(self, m: ClaimedMessage) -> None:
        """Hand the parts to the router; the claim already committed them ``submitting``."""
        for part_id, part in zip(m.part_ids, m.parts, strict=True):
            self._attempt(m, part_id, part, 0)

    def _retry(self, m: ClaimedMessage, part_id: int, part, tries: int) -> None:
        self.inflight += 1
        self._attempt(m, part_id, part, tries)

    def _attempt(self, m: ClaimedMessage, part_id: int, part, tries: int) -> None:
        """One submit of one part; its SubmitResult is recorded when it is known (after
        quick retries of a throttled part): ``_ok`` or ``_error`` records it."""
        try:
            d = self.router.submit(self.make_part(m, part), (part_id, m.message_id))
        except Exception:
            # Building or routing this part raised (a bug or data no check foresaw):
            # the part fails (see _error) and the others go on.
            d = fail()
        d.addCallbacks(self._ok, self._error, callbackArgs=(part_id, m.message_id),
                       errbackArgs=(part_id, m.message_id, m, part, tries))

    def _record(self, result: SubmitResult) -> None:
        self.inflight -= 1  # answered: the result commits on the progress lane...
        self._answered.append(result)  # ...once this turn's submits are written (_pump_soon)
        if self.journal is not None and result.outcome != "ok":
            self.journal.answered(result)  # a success was journalled by its bind
        if self.state == STOPPED:
            self._record_answered()
        else:
            self._pump_soon()

    def _expecting(self) -> bool:
        """Parts are at the router: their results will start a transaction soon, and a
        receipt arriving meanwhile can ride in it (Outbox.receipt)."""
        return self.inflight > 0

    def _record_answered(self) -> None:
        if self._answered:
            answered, self._answered = self._answered, []
            self.outbox.record(*answered)

    def _recorded(self, results: list[SubmitResult]) -> None:
        """These results are committed: the journal may let go of their segments."""
        for result in results:
            self.journal.committed(result.part_id)

    def _pump_soon(self) -> None:
        """Record a whole burst of responses and pump once for it, two reactor turns from now.

        The binds refill their windows from their own queues as the responses are read,
        and the transport writes those submits at the end of the next turn; topping
        the queues up (a window ahead of need) and starting the transaction that commits
        the results can wait until after that write instead of delaying it: a transaction
        begun earlier runs its thread beside the reactor just as it writes, and the two take
        turns holding the interpreter. (A test Clock runs both turns in one ``advance(0)``.)
        """
        if self._pump_call is None and self.state != STOPPED:
            self._pump_call = self.clock.callLater(0, self._after_write)

    def _after_write(self) -> None:
        if self.state != STOPPED:
            self._pump_call = self.clock.callLater(0, self._pump_later)
        else:
            self._pump_call = None
            self._record_answered()

    def _pump_later(self) -> None:
        self._pump_call = None
        self._record_answered()
        self._pump()

    def _ok(self, submitted, part_id: int, message_id: int) -> None:
        self.submitted += 1
        self._record(SubmitResult(part_id, message_id, "ok", smpp_id=submitted.message_id,
                                  smsc=submitted.smsc))

    def _error(self, failure, part_id: int, message_id: int, m: ClaimedMessage, part,
               tries: int) -> None:
        if (self.throttled and failure.check(*self.throttled)
                and tries < self.THROTTLE_TRIES and self.state != STOPPED):
            self.throttled_retries += 1
            self.inflight -= 1  # not at the router while it waits: its slot is for others
            self._pump_soon()
            self.clock.callLater(self.THROTTLE_RETRY, self._retry, m, part_id, part, tries + 1)
            return
        self._record(self._failed(failure, part_id, message_id))

    def _failed(self, failure, part_id: int, message_id: int) -> SubmitResult:
        """The result of a part the router failed (and that is not retried at once)."""
        if failure.check(*self.permanent):
            self.permanent_errors += 1
            status = getattr(failure.value, "status", None)
            error = getattr(failure.value, "reason", None) or _code(status, failure)
            return SubmitResult(part_id, message_id, "permanent", error=error,
                                smsc=getattr(failure.value, "smsc", None))
        if not failure.check(*self.temporary):
            # Not an SMSC answer: the part cannot be built. Retrying would fail the same way.
            log.failure("part {part} of message {message} cannot be sent; failed for good",
                        failure, part=part_id, message=message_id)
            self.permanent_errors += 1
            return SubmitResult(part_id, message_id, "permanent",
                                error=f"unsendable {type(failure.value).__name__}"[:32])
        self.temporary_errors += 1
        doubtful = self.doubtful and failure.check(*self.doubtful) and not (
            self.unsent and failure.check(*self.unsent))
        outcome = "doubtful" if doubtful else "temporary"
        return SubmitResult(part_id, message_id, outcome, error=type(failure.value).__name__[:32])


def _code(status, failure) -> str:
    if isinstance(status, int):
        return f"0x{status:08X}"
    return str(status or type(failure.value).__name__)[:32]
