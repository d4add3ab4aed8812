"""Binds kept up by ``common.link``, each with a window of submits and a throttle.

A ``BindLink`` is one SMPP connection in one bind mode: a ``common.link.Link``
that binds on every fresh connection (so a refused bind counts as a failed
connection, retried with backoff) and unbinds on stop. Its states are the link's
machine in SMPP's words (down -> binding -> bound -> unbinding -> down).

A ``Bind`` is what the router submits to: a transceiver link, or a transmitter
plus a receiver link (``bind_mode = pair``). It holds the window of outstanding
submit_sm and a token-bucket throttle in PDUs per second (each part is one PDU,
so a 3-part message costs 3). When the SMSC answers ESME_RTHROTTLED or
ESME_RMSGQFUL the bind slows down as a congestion controller does (AIMD, the
decrease scaled by how many answers said so, as DCTCP does): once per window of
answers the window in use (throughput is window / round trip) grows by one part,
up to the configured window, and if a fraction f of those answers were refusals
it and a configured rate then shrink by f/2, down to one part; the rate recovers
by a tenth per second. A carrier refusing
everything beyond its limit halves it at once; a few random refusals cost a
part or two. Only a bind already down to a window of one pauses, for
THROTTLE_PAUSE. The throttled part itself is retried soon by the dispatcher.

The window, queue and throttle know nothing of SMPP: the carrier links (CMPP,
SMGP, SGIP) hand a ``Bind`` their own links, which say how one part is sent
(``send``) and what id its answer carries (``message_id``), and raise the same
typed errors (``Throttled`` for a flow-control result), so every protocol gets
this one window and its slow-down.

A carrier link's protocol hands a read's successful answers to ``window_answered``
before it fires them (``sms.smpp.window``): the bind journals them, frees their
slots and writes the refill first. An SMPP bind hears each answer through its
Deferred and refills once the read is done (``_refill``); so do failures on every
link (an error result, a timeout, a lost link), or at the next reactor turn.

A link that parks (SGIP's idle Unbind, ``common.link.Link.park``) is not a bind that
is down: the router still gives it parts; they wait in the queue while it binds
again (``demand``), and fail with NotBound, for the outbox to retry or fail over,
only if it is not up within ``response_timeout``.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, gatherResults
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from common.link import CLOSING, PARKED, PREPARING, UP, Link
from common.link import DOWN as LINK_DOWN
from sms.config import SmscConfig
from sms.smpp.codec import as_text
from sms.smpp.protocol import (NeverSent, NotBound, PermanentError, SmppError, SmppProtocol,
                               Throttled)

log = Logger(namespace="hotline.sms.binds")

DOWN, BINDING, BOUND, UNBINDING = "down", "binding", "bound", "unbinding"
THROTTLE_PAUSE = 0.1  # seconds a bind at a window of one waits after a "slow down"


class TokenBucket:
    """PDUs per second on the injected clock; a rate of 0 means unlimited. It holds at most
    ``burst_seconds`` of the rate (a bind's: a tenth of a second; the door's SMPP clients:
    one second)."""

    def __init__(self, rate: float, clock: IReactorTime, burst_seconds: float = 0.1):
        self.clock = clock
        self.rate = rate
        self.burst_seconds = burst_seconds
        self.tokens = self.burst
        self._stamp = clock.seconds()

    @property
    def burst(self) -> float:
        return max(1.0, self.rate * self.burst_seconds)

    def set_rate(self, rate: float) -> None:
        self._refill()
        self.rate = rate
        self.tokens = min(self.tokens, self.burst)

    def _refill(self) -> None:
        now = self.clock.seconds()
        if self.rate > 0:
            self.tokens = min(self.burst, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self) -> float:
        """Take one token: 0.0 when taken, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        # At least a millisecond: a wait lost in float rounding would spin the clock.
        return max((1.0 - self.tokens) / self.rate, 0.001)


class NotJournalled(NeverSent):
    """The send journal could not record the burst (its disk is full or failing): none of
    its parts was written, and the outbox sends them again later."""


class Answered:
    """What ``window_answered`` fires a part's Deferred with: its message id, its slot
    already freed and its answer journalled."""

    __slots__ = ("message_id",)

    def __init__(self, message_id: str):
        self.message_id = message_id


class BindLink(Link[SmppProtocol]):
    """One SMPP connection in one bind mode, rebound after every loss."""

    names = {LINK_DOWN: DOWN, PREPARING: BINDING, UP: BOUND, CLOSING: UNBINDING,
             PARKED: PARKED}
    login_verb = "bind"
    errors = (SmppError,)

    def __init__(self, name: str, endpoint: IStreamClientEndpoint, config: SmscConfig,
                 clock: IReactorTime, mode: str, *, on_deliver: Callable | None = None,
                 on_state: Callable[[BindLink, str, str], None] | None = None,
                 on_answered: Callable[[], None] | None = None,
                 jitter: Callable[[], float] | None = None, initial_delay: float = 1.0,
                 max_delay: float = 60.0):
        super().__init__(name, endpoint, clock, min_delay=initial_delay, max_delay=max_delay,
                         jitter=jitter)
        self.label = f"SMPP {name}"
        self.config, self.mode = config, mode
        self.on_deliver, self.on_answered = on_deliver, on_answered
        if on_state is not None:
            self.observe(on_state)

    def build_protocol(self) -> SmppProtocol:
        return SmppProtocol(self.clock, response_timeout=self.config.response_timeout,
                            enquire_link=self.config.enquire_link, on_deliver=self.on_deliver,
                            on_answered=self.on_answered, name=self.name)

    def log_in(self, protocol: SmppProtocol) -> Deferred:
        return protocol.bind(self.mode, self.config.system_id, self.config.password,
                             self.config.system_type)

    def log_out(self, protocol: SmppProtocol) -> Deferred:
        return protocol.unbind(timeout=min(self.config.response_timeout, 5.0))

    @staticmethod
    def send(protocol: SmppProtocol, fields: dict, answer: Deferred) -> None:
        """Write one part; ``answer`` fires with the response PDU or a typed error."""
        protocol.request("submit_sm", answer=answer, **fields)

    @staticmethod
    def message_id(response) -> str:
        return as_text(response.message_id)


class Bind(Service):
    """Where submit_sm goes: window, throttle, slow-down, counters; one or two links."""

    # Always set (setName in __init__); Twisted's Service leaves name = None unannotated.
    name: str  # type: ignore[assignment]

    def __init__(self, name: str, endpoint: IStreamClientEndpoint, config: SmscConfig,
                 clock: IReactorTime, *, on_deliver: Callable | None = None,
                 on_capacity: Callable[[], None] | None = None,
                 on_send: Callable[[list[object]], None] | None = None,
                 on_answer_ok: Callable[[object, str], None] | None = None,
                 jitter: Callable[[], float] | None = None, initial_delay: float = 1.0,
                 max_delay: float = 60.0, make_links: Callable[..., list[Link]] | None = None):
        """``make_links(name, endpoint, config, clock, **kw)`` builds a carrier's links
        (the first one submits); by default the SMPP transceiver or TX+RX pair."""
        self.setName(name)
        self.config, self.clock = config, clock
        self.window = config.window  # the window in use: narrowed on throttling (AIMD)...
        self._cwnd = float(config.window)  # ...its exact value
        self._answers = self._refused = 0  # in the window of answers being counted
        self.on_capacity = on_capacity
        self.on_send = on_send  # told the refs of each burst just before it is written (the journal)
        # told (ref, message id) of each part the SMSC accepted, as the answer is read (the
        # journal); before the window's refill when the link's protocol calls window_answered
        self.on_answer_ok = on_answer_ok
        self._refs: dict[Deferred, object] = {}  # each queued or outstanding part's ref

        def link(link_name: str, mode: str) -> BindLink:
            return BindLink(link_name, endpoint, config, clock, mode, on_deliver=on_deliver,
                            on_state=self._link_changed, on_answered=self._refill,
                            jitter=jitter, initial_delay=initial_delay, max_delay=max_delay)

        if make_links is not None:
            self.links = make_links(name, endpoint, config, clock, on_deliver=on_deliver,
                                    on_state=self._link_changed, on_answered=self._refill,
                                    on_window=self.window_answered, jitter=jitter,
                                    initial_delay=initial_delay, max_delay=max_delay)
        elif config.bind_mode == "pair":
            self.links = [link(f"{name}-tx", "transmitter"), link(f"{name}-rx", "receiver")]
        else:
            self.links = [link(name, "transceiver")]
        # BindLink or a carrier's link: each has ``send`` and ``message_id`` beside Link's API.
        self.tx: Any = self.links[0]
        self.bucket = TokenBucket(config.throughput, clock)
        self._queue: deque = deque()
        self.inflight = 0
        self._paused_until = 0.0
        self._drain_call: IDelayedCall | None = None  # a throttle or pause wait
        # the next reactor turn, for slots freed outside a read:
        self._refill_call: IDelayedCall | None = None
        self._recover_call: IDelayedCall | None = None
        self._wake_call: IDelayedCall | None = None  # parts queued for a parked link's re-bind
        self.counters = dict(submitted=0, ok=0, temporary=0, permanent=0, throttled=0)

    # ---- state ---------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.tx.state

    @property
    def bound(self) -> bool:
        return self.tx.is_up

    @property
    def ready(self) -> bool:
        """Takes parts: bound, or parked by design (or binding again after it), the parts
        waiting in the queue for the bind."""
        tx = self.tx  # the router asks every bind, for every part
        return tx.role == UP or tx.parked or self._wake_call is not None

    def has_capacity(self) -> bool:
        return self.tx.is_up and self.inflight + len(self._queue) < self.window

    def load(self) -> int | None:
        """Parts in its window or queued behind it; None while it takes none (``ready``).
        The router weighs binds by this, once per bind for every part: one call answers
        both whether the bind is bound and how full it is (``ready`` written out: this is
        the router's innermost loop)."""
        tx = self.tx
        if tx.role == UP or tx.parked or self._wake_call is not None:
            return self.inflight + len(self._queue)
        return None

    def snapshot(self) -> dict:
        """State, window use, current rate and counters, for ``states()`` and statistics."""
        return dict(state=self.state, ready=self.ready,
                    links={link.name: link.state for link in self.links},
                    inflight=self.inflight, queued=len(self._queue), window=self.window,
                    rate=self.bucket.rate, paused=self._paused_until > self.clock.seconds(),
                    binds=sum(link.ups for link in self.links),
                    failed_binds=sum(link.failures for link in self.links),
                    last_error=self.tx.last_error, **self.counters)

    def _link_changed(self, link: BindLink, old: str, new: str) -> None:
        up = link.names[UP]
        if link is not self.tx:
            return
        if new == up:
            self._cancel_wake()
            self._drain()
            if self.on_capacity is not None:
                self.on_capacity()
        elif link.parked:
            if new == link.names[PARKED] and self._queue:
                self._wake()  # parts came while it was unbinding
        elif old == up or (old == link.names[PREPARING] and self._wake_call is not None):
            # lost, or its bind again refused: the outbox retries, or fails over
            self._fail_queued(f"link went {new} before the part was sent")

    def _fail_queued(self, why: str) -> None:
        self._cancel_wake()
        queued, self._queue = self._queue, deque()
        for _fields, d, _ref in queued:
            d.errback(NotBound(f"{self.name}: {why}"))

    def _wake(self) -> None:
        """A part for a parked link: bind again; the queue waits ``response_timeout`` (and
        takes more parts meanwhile)."""
        if self._wake_call is None:
            self._wake_call = self.clock.callLater(self.config.response_timeout,
                                                   self._not_woken)
        self.tx.demand()

    def _not_woken(self) -> None:
        self._wake_call = None
        if not self.tx.is_up:
            self._fail_queued(f"not bound again within {self.config.response_timeout:g} s")

    def _cancel_wake(self) -> None:
        if self._wake_call is not None:
            if self._wake_call.active():
                self._wake_call.cancel()
            self._wake_call = None

    # ---- service -------------------------------------------------------------
    def startService(self) -> None:
        super().startService()
        for link in self.links:
            link.startService()

    def stopService(self) -> Deferred:
        super().stopService()
        for call in (self._drain_call, self._refill_call, self._recover_call, self._wake_call):
            if call is not None and call.active():
                call.cancel()
        queued, self._queue = self._queue, deque()
        for _fields, d, _ref in queued:
            d.errback(NotBound(f"{self.name}: stopping"))
        return gatherResults([link.stopService() for link in self.links], consumeErrors=True)

    # ---- submitting ----------------------------------------------------------
    def submit(self, fields: object, ref: object = None) -> Deferred:
        """Queue one part (what its link's ``send`` writes: SMPP's submit_sm fields, a
        carrier's ``Prepared`` Submit); fires with the raw message id, or a typed SmppError.

        ``ref`` (the outbox part id) is handed to ``on_send`` just before the PDU goes out.
        """
        if not self.tx.is_up:
            if not self.ready:
                return fail(NotBound(f"{self.name} is {self.tx.state}"))
            self._wake()
        d: Deferred = Deferred()
        d.addBoth(self._done, d)  # the protocol fires ``d`` itself with the response PDU
        if ref is not None:
            self._refs[d] = ref
        self._queue.append((fields, d, ref))
        if self._drain_call is None:
            self._drain()
        return d

    def _refill(self) -> None:
        """Fill the slots freed since the last burst; the transport writes no sooner anyway."""
        if self._refill_call is not None:
            if self._refill_call.active():
                self._refill_call.cancel()
            self._refill_call = None
            if self._drain_call is None:
                self._drain()

    def _drain(self) -> None:
        """Send what the window and throttle allow, as one burst: one journal write for it."""
        self._drain_call = None
        proto = self.tx.protocol
        if proto is None or not self.tx.is_up:
            return
        queue = self._queue
        burst = []
        while queue and self.inflight < self.window:
            now = self.clock.seconds()
            if self._paused_until > now:
                self._drain_call = self.clock.callLater(self._paused_until - now, self._drain)
                break
            wait = self.bucket.take()
            if wait > 0:
                self._drain_call = self.clock.callLater(wait, self._drain)
                break
            burst.append(queue.popleft())
            self.inflight += 1
        if not burst:
            return
        if self.on_send is not None:
            try:
                self.on_send([ref for _, _, ref in burst if ref is not None])
            except OSError as e:
                # Sending a part the journal does not know of could duplicate it unseen
                # after a crash: the burst fails, unsent, and the outbox retries it.
                log.error("{bind}: the send journal could not be written ({error}); {n} parts "
                          "not sent, to be retried", bind=self.name, error=str(e), n=len(burst))
                for _fields, d, _ref in burst:
                    d.errback(NotJournalled(f"{self.name}: send journal not written"))
                return
        self.counters["submitted"] += len(burst)
        send = self.tx.send
        for fields, d, _ref in burst:
            send(proto, fields, d)

    def window_answered(self, answers: list[tuple[Deferred, object]],
                        write_now: Callable[[], None]) -> None:
        """A read's successful answers (each part's Deferred and its response): journal them,
        free their slots, refill the window and ``write_now`` the refill, then fire them (see
        the module's docstring). They fire whatever happens: a refill that fails (the
        journal's disk) raises only after every answer has reached the outbox."""
        fire: list = []
        try:
            message_id, on_ok, refs = self.tx.message_id, self.on_answer_ok, self._refs
            marked = []
            for d, response in answers:
                raw = message_id(response)
                if on_ok is not None:
                    ref = refs.get(d)
                    if ref is not None:
                        on_ok(ref, raw)
                marked.append((d, Answered(raw)))
            n = len(marked)
            self.inflight -= n
            self._answers += n
            self.counters["ok"] += n
            fire = marked  # counted: from here they fire as Answered
            if self._answers >= self.window or not self.inflight:
                self._adapt()
            if self._queue and self._drain_call is None:
                self._drain()
                write_now()
            if self.on_capacity is not None:
                self.on_capacity()
        finally:
            for d, answered in fire:
                d.callback(answered)
            for d, response in answers[len(fire):]:  # not counted: _done counts them
                d.callback(response)

    def _done(self, result, d: Deferred):
        """First callback of every queued part: window and counters, then the raw message id.

        NotBound comes only from this bind, for parts still queued: they never took a slot.
        """
        ref = self._refs.pop(d, None)
        if type(result) is Answered:  # counted by window_answered
            return result.message_id
        if isinstance(result, Failure) and result.check(NotBound):
            return result
        self.inflight -= 1
        self._answers += 1
        if isinstance(result, Failure):
            if result.check(Throttled):
                self.counters["throttled"] += 1
                self._refused += 1
            if result.check(PermanentError):
                self.counters["permanent"] += 1
            else:
                self.counters["temporary"] += 1
        else:
            self.counters["ok"] += 1
            result = self.tx.message_id(result)
            if self.on_answer_ok is not None and ref is not None:
                self.on_answer_ok(ref, result)
        if self._answers >= self.window or not self.inflight:
            self._adapt()
        if self._queue and self._drain_call is None and self._refill_call is None:
            # Not one submit per freed slot: one burst at the end of this read (_refill),
            # or at the next reactor turn when the answer was a timeout or a lost link.
            self._refill_call = self.clock.callLater(0, self._refill)
        if self.on_capacity is not None:
            self.on_capacity()
        return result

    # ---- slowing down --------------------------------------------------------
    def _adapt(self) -> None:
        """A window of answers is in (or none is outstanding): widen or narrow (see above)."""
        refused, answers = self._refused, self._answers
        self._answers = self._refused = 0
        self._cwnd = min(float(self.config.window), self._cwnd + 1.0)
        if refused:
            if self.window == 1:
                self._paused_until = self.clock.seconds() + THROTTLE_PAUSE
            keep = 1.0 - refused / answers / 2.0
            self._cwnd = max(1.0, self._cwnd * keep)
        self.window = int(self._cwnd)
        if refused and self.config.throughput > 0:
            self.bucket.set_rate(max(1.0, self.bucket.rate * keep))
            if self._recover_call is None:
                self._recover_call = self.clock.callLater(1.0, self._recover)

    def _recover(self) -> None:
        self._recover_call = None
        configured = self.config.throughput
        self.bucket.set_rate(min(configured, self.bucket.rate + max(1.0, configured / 10.0)))
        if self.bucket.rate < configured:
            self._recover_call = self.clock.callLater(1.0, self._recover)
