"""One connection of a mainland carrier protocol (CMPP, SMGP, SGIP): frames in, Deferreds out.

The three protocols frame, number and answer PDUs the same way and differ only in
their PDUs, so the mechanism is here once and ``sms.cmpp.protocol``,
``sms.smgp.protocol`` and ``sms.sgip.protocol`` give only their codec and
commands. Requests are matched to responses by sequence in ``common.pending``
with a timeout each; a non-zero result becomes the SMS side's typed error (a
flow-control result is ``Throttled``, exactly as SMPP's ESME_RTHROTTLED, so the
bind slows down and the outbox retries); the peer's keep-alive is answered and
our own is sent when the link is idle (``IdleProbe``, with the specification's
timers; SGIP, which has none, unbinds an idle connection instead, and closes on
a peer's goodbye once the requests it crossed are answered); a DELIVER (MO or
status report) is acknowledged only after the handler's Deferred fired, so it is
committed before the gateway forgets it. A read's successful answers to the
window's submits go to the bind before they fire (``sms.smpp.window``).

A PDU that does not decode fails alone: a malformed response fails its own
request, a malformed DELIVER is answered with an error result so the gateway
does not resend it forever; only a frame length that cannot be resynchronised
drops the link.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, ClassVar

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from common.pending import PendingRequests
from common.records import frozen_record
from sms.carrier.binary_pdu import CodecError, Frame, FramingError, MalformedPdu, is_response
from sms.carrier.deliveries import DeliverQueue
from sms.carrier.keepalive import IdleProbe
from sms.smpp.protocol import (LinkLost, NeverSent, PermanentError, SmppError, SmppTimeout,
                               TemporaryError, Throttled)
from sms.smpp.window import answer_window


class LoginRefused(PermanentError):
    """The gateway refused the login (wrong secret, unknown account) or could not prove
    it knows the secret: the link backs off and tries again, it does not loop."""


class Unencodable(PermanentError):
    """The part cannot be written in this protocol (a field too long, a number that is not
    digits): it fails alone and for good, and never takes a retry."""

    def __init__(self, label: str, error: Exception):
        SmppError.__init__(self, f"{label} not sent: {error}")
        self.status, self.command = 0, label


@frozen_record
class Prepared:
    """A request encoded before its turn to be sent: every octet of its frame but the
    sequence number, which the connection writes in as it sends it.

    A part waits in its bind's queue while the window is full; encoding it before it
    queues (``CarrierLink.prepare``, from the router) keeps the encoder out of the turn
    between reading a window's responses and writing the parts they freed slots for. Every carrier
    header is the frame's length and command id (4 octets each), then the sequence; made
    by the protocol's ``CarrierProtocol.prepared``, which knows the sequence's length.
    """

    head: bytes  # length and command id
    body: bytes


HEAD = 8  # a carrier frame's length and command id, before its sequence
_LENGTH_AND_COMMAND = struct.Struct(">LL")


#: What a pending request keeps beside it (``Request.data``): whether a non-zero result fails
#: it, and whether it is one of the bind's window of submits.
UNCHECKED, CHECKED, WINDOW = 0, 1, 2


def _timeout_error(label: str, _seconds: float) -> SmppTimeout:
    return SmppTimeout(f"{label}: no response in time")


class CarrierProtocol(Protocol):
    """The shared client (and, for SGIP, server) side of one carrier connection.

    A subclass sets ``name`` (for logs), the command ids ``ACTIVE_TEST`` (None when the
    protocol has none), ``TERMINATE`` and ``DELIVERS`` (requests handed to ``on_deliver``),
    the result codes ``THROTTLING`` (flow control), and implements the codec hooks; its
    ``PLACEHOLDER_SEQUENCE`` and ``sequence_octets`` say where a ``Prepared`` body starts.
    """

    log = Logger(namespace="hotline.sms.carrier")
    protocol_name = "carrier"
    ACTIVE_TEST: int | None = None
    TERMINATE: int = 0
    DELIVERS: frozenset[int] = frozenset()
    THROTTLING: frozenset[int] = frozenset()
    # The sequence a request is encoded ahead with; sending writes the real one over it.
    PLACEHOLDER_SEQUENCE: ClassVar[Any] = 0
    _body_at: ClassVar[int]  # where a prepared frame's body starts, set per protocol class

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each protocol's body offset, from how its header writes the placeholder: once,
        here, so preparing a request costs no more than slicing its frame."""
        super().__init_subclass__(**kwargs)
        cls._body_at = HEAD + len(cls.sequence_octets(cls.PLACEHOLDER_SEQUENCE))

    @classmethod
    def prepared(cls, frame: bytes) -> Prepared:
        """A request's frame, encoded with ``PLACEHOLDER_SEQUENCE``, as ``Prepared``."""
        return Prepared(frame[:HEAD], frame[cls._body_at:])

    @classmethod
    def prepared_body(cls, command_id: int, body: bytes) -> Prepared:
        """A request of ``command_id`` whose body its codec wrote alone, as ``Prepared``."""
        return Prepared(_LENGTH_AND_COMMAND.pack(cls._body_at + len(body), command_id), body)

    def __init__(self, clock: IReactorTime, *, response_timeout: float = 10.0,
                 active_test: float = 180.0, active_test_timeout: float = 60.0,
                 active_test_tries: int = 3,
                 on_deliver: Callable[[object], Deferred] | None = None,
                 on_answered: Callable[[], None] | None = None,
                 on_window: Callable[..., None] | None = None, name: str = "carrier",
                 idle: float = 0.0, on_idle: Callable[[], object] | None = None,
                 on_goodbye: Callable[[], object] | None = None):
        """``idle`` (a protocol without keep-alive: SGIP): seconds with nothing sent or read
        and nothing in flight after which the connection is closed; ``on_idle`` does it
        (the client link parks), else the protocol says goodbye itself (the listener's
        side). ``on_goodbye`` is told when the peer says goodbye. ``on_window(answers,
        write_now)`` (the bind's ``window_answered``) takes a read's successful answers to
        window requests, ``(Deferred, response)`` each, and fires them
        (``sms.smpp.window``)."""
        self.clock = clock
        self.response_timeout = response_timeout
        self.on_deliver, self.on_answered = on_deliver, on_answered
        self.on_window = on_window
        self.name = name
        self._splitter = self.frame_splitter()
        self._pending: PendingRequests = PendingRequests(clock, _timeout_error)
        self._delivered = DeliverQueue(clock, self._deliver, lambda: self.connected)
        self.active_test_timeout = active_test_timeout
        self._probe: IdleProbe | None = None
        self._sent_is_activity: IdleProbe | None = None
        self.on_idle, self.on_goodbye = on_idle, on_goodbye
        if self.ACTIVE_TEST is not None:
            self._probe = IdleProbe(clock, active_test, self._active_test, self._peer_silent,
                                    retries=active_test_tries)
        elif idle > 0:
            self._probe = self._sent_is_activity = IdleProbe(clock, idle, self._idle,
                                                             self._peer_silent)
        # the peer said goodbye: close once the requests it crossed are answered
        self._close_call: IDelayedCall | None = None
        self.connected = False
        self.closing = False
        self._handling = 0  # DELIVERs handed to on_deliver and not yet answered
        self.received = self.sent = self.malformed = 0

    # ---- what a protocol supplies ---------------------------------------------------
    def frame_splitter(self):
        raise NotImplementedError

    def decode(self, raw: bytes) -> Frame:
        raise NotImplementedError

    def encode(self, pdu, sequence) -> bytes:
        raise NotImplementedError

    def next_sequence(self):
        raise NotImplementedError

    @staticmethod
    def sequence_octets(sequence) -> bytes:
        """A sequence number as its header writes it: one u32 (CMPP, SMGP)."""
        return sequence.to_bytes(4, "big")

    def status(self, response) -> int:
        """The result code of a response PDU (0 is success)."""
        return response.result

    def answer_of(self, frame: Frame):
        """What a request's Deferred fires with: the response PDU (SGIP adds its sequence)."""
        return frame.pdu

    def reply(self, frame: Frame, ok: bool):
        """The response PDU to a request frame (success or a "try again" result)."""
        raise NotImplementedError

    def reply_octets(self, frame: Frame, ok: bool) -> bytes:
        """``reply`` encoded: a protocol may write its commonest answer (a status report's)
        without building the PDU."""
        return self.encode(self.reply(frame, ok), frame.sequence)

    def reject(self, command_id: int, sequence):
        """The error response to a request that did not decode, or None (not answered)."""
        return None

    def active_test_pdu(self):
        raise NotImplementedError

    def terminate_pdu(self):
        raise NotImplementedError

    def other_request(self, frame: Frame) -> None:
        """A request none of the shared ones (keep-alive, goodbye, deliver): log it."""
        self.log.warn("{name}: unexpected request 0x{cid:08X} ignored", name=self.name,
                      cid=frame.command_id)

    # ---- connection -------------------------------------------------------------------
    def connectionMade(self) -> None:
        self.connected = True
        if hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)  # many small PDUs in flight: no Nagle
        if self._probe is not None:
            self._probe.start()

    def connectionLost(self, reason: Failure = None) -> None:
        self.connected = False
        # DELIVERs not yet handled were not acknowledged: the gateway sends them again.
        self._delivered.clear()
        if self._probe is not None:
            self._probe.stop()
        if self._close_call is not None and self._close_call.active():
            self._close_call.cancel()
        why = reason.getErrorMessage() if reason is not None else "closed"
        self._pending.fail_all(lambda label: LinkLost(f"{label}: link lost ({why})"))

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # ---- requests ---------------------------------------------------------------------
    def request(self, pdu, label: str, *, timeout: float | None = None,
                answer: Deferred | None = None, checked: bool = True,
                window: bool = False) -> Deferred:
        """Send one request (a PDU, or ``Prepared``); fires with the response PDU, or a
        typed SmppError.

        ``checked``: a non-zero result fails the Deferred (``Throttled`` for flow
        control); unchecked, the caller reads the result itself (a login). ``window``: a
        bind's submit, whose success goes through ``on_window`` (checked).
        """
        d = Deferred() if answer is None else answer
        if not self.connected:
            d.errback(NeverSent(f"{label}: not connected"))
            return d
        sequence = self.next_sequence()
        if isinstance(pdu, Prepared):
            raw = pdu.head + self.sequence_octets(sequence) + pdu.body
        else:
            try:
                raw = self.encode(pdu, sequence)
            except CodecError as e:
                d.errback(Unencodable(label, e))
                return d
        self._pending.add(sequence, label, self.response_timeout if timeout is None else timeout,
                          d, data=WINDOW if window else CHECKED if checked else UNCHECKED)
        if self._sent_is_activity is not None:
            self._sent_is_activity.touch()
        self.sent += 1
        self.transport.write(raw)
        return d

    def terminate(self, timeout: float = 5.0) -> Deferred:
        """Say goodbye (TERMINATE, Exit, Unbind), then close; fires when closing."""
        self.closing = True
        d = self.request(self.terminate_pdu(), "terminate", timeout=timeout, checked=False)

        def close(result):
            if self.transport is not None:
                self.transport.loseConnection()
            if isinstance(result, Failure):
                result.trap(SmppError)
            return None

        return d.addBoth(close)

    def error_for(self, status: int, label: str) -> SmppError:
        if status in self.THROTTLING:
            return Throttled(f"{label}: {self.protocol_name} flow control (result {status})",
                             status)
        return PermanentError(status, label)

    # ---- incoming ---------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        try:
            frames = self._splitter.feed(data)
        except FramingError as e:
            self.log.warn("{name}: dropping the link: {error}", name=self.name, error=str(e))
            self.transport.abortConnection()
            return
        if frames and self._probe is not None:
            self._probe.touch()
        answered = False
        window: list = []  # successful answers to the window's submits, for on_window
        for raw in frames:
            if not self.connected:
                return
            self.received += 1
            try:
                frame = self.decode(raw)
            except MalformedPdu as e:
                self._malformed(e)
                continue
            except FramingError as e:
                self.log.warn("{name}: dropping the link: {error}", name=self.name, error=str(e))
                self.transport.abortConnection()
                return
            if is_response(frame.command_id):
                answered = self._response(frame, window) or answered
            else:
                self._request_received(frame)
        if window:
            answer_window(self.on_window, window, self.transport)
        if answered and self.on_answered is not None:
            self.on_answered()
        if self._close_call is not None and not self._pending:
            self._close_call.cancel()
            self._close_call = None
            self.transport.loseConnection()
        self._delivered.kick()

    def _malformed(self, e: MalformedPdu) -> None:
        self.malformed += 1
        self.log.warn("{name}: malformed PDU: {error}", name=self.name, error=str(e))
        if is_response(e.command_id):
            request = self._pending.pop(e.sequence)
            if request is not None:
                request.deferred.errback(TemporaryError(f"{request.label}: malformed response"))
            return
        answer = self.reject(e.command_id, e.sequence)
        if answer is not None:
            self.transport.write(self.encode(answer, e.sequence))

    def _response(self, frame: Frame, window: list) -> bool:
        """Fire the pending request's Deferred, or, a window request's success, add it to
        ``window`` for ``on_window``; False when nothing was pending."""
        request = self._pending.pop(frame.sequence)
        if request is None:
            self.log.warn("{name}: response 0x{cid:08X} to no pending request", name=self.name,
                          cid=frame.command_id)
            return False
        kind = request.data
        status = self.status(frame.pdu) if kind else 0
        if status:
            request.deferred.errback(self.error_for(status, request.label))
        elif kind == WINDOW and self.on_window is not None:
            window.append((request.deferred, self.answer_of(frame)))
        else:
            request.deferred.callback(self.answer_of(frame))
        return True

    def _request_received(self, frame: Frame) -> None:
        command_id = frame.command_id
        if command_id in self.DELIVERS:
            self._delivered.append(frame)
        elif command_id == self.ACTIVE_TEST:
            self._write(self.reply(frame, True), frame.sequence)
        elif command_id == self.TERMINATE:
            self._goodbye(frame)
        else:
            self.other_request(frame)

    def _write(self, pdu, sequence) -> None:
        self.transport.write(self.encode(pdu, sequence))

    def _deliver(self, frame: Frame) -> None:
        if self.on_deliver is None:
            self._write(self.reply(frame, False), frame.sequence)
            return
        self._handling += 1
        d = maybeDeferred(self.on_deliver, frame.pdu)

        def answer(result):
            self._handling -= 1
            ok = not isinstance(result, Failure)
            if not ok:
                self.log.failure("{name}: DELIVER handler failed; asking the gateway to retry",
                                 result, name=self.name)
            if self.connected:
                self.transport.write(self.reply_octets(frame, ok))

        d.addBoth(answer)

    def _goodbye(self, frame: Frame) -> None:
        """The peer says goodbye: answer it; close now, or, when requests of ours crossed
        it, once they are answered (or their time is up), so that none is lost with it."""
        self.closing = True
        if self.on_goodbye is not None:
            self.on_goodbye()
        self._write(self.reply(frame, True), frame.sequence)
        if self._pending:
            self._close_call = self.clock.callLater(self.response_timeout,
                                                    self.transport.loseConnection)
        else:
            self.transport.loseConnection()

    # ---- keep-alive -------------------------------------------------------------------
    def _idle(self) -> Deferred:
        """Nothing sent or read for ``idle`` seconds: say goodbye, unless something is in
        flight after all (an answer or a DELIVER being handled): then look again later."""
        if (self.closing or self._pending or self._handling or len(self._delivered)
                or not self.connected):
            return succeed(None)
        if self.on_idle is not None:
            return maybeDeferred(self.on_idle)
        return self.terminate(timeout=min(self.response_timeout, 5.0))

    def _active_test(self) -> Deferred:
        if self.closing:
            return Deferred()  # going away anyway: no probe, no verdict
        return self.request(self.active_test_pdu(), "active test",
                            timeout=self.active_test_timeout, checked=False)

    def _peer_silent(self, failure: Failure) -> None:
        if self.connected and not failure.check(LinkLost):
            self.log.warn("{name}: active test unanswered ({error}); dropping the link",
                          name=self.name, error=failure.getErrorMessage())
            self.transport.loseConnection()
