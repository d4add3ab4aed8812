"""SMPP over one TCP connection: frames in, sequence-matched Deferreds out.

This layer knows nothing of routing or windows. It numbers requests, matches
each response (or generic_nack) to its request by sequence_number, gives every
request a timeout on the injected clock, maps command statuses to typed errors,
answers enquire_link and unbind, sends enquire_link when the link is idle, and
acknowledges a deliver_sm/data_sm only after the handler's Deferred fired (so a
receipt or MO is committed before the SMSC forgets it). ``connectionLost``
fails everything pending with ``LinkLost``.
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from common.pending import PendingRequests
from sms.carrier.deliveries import DeliverQueue
from sms.carrier.keepalive import IdleProbe
from sms.smpp import codec
from sms.smpp.codec import (ESME_RMSGQFUL, ESME_ROK, ESME_RSYSERR, ESME_RTHROTTLED,
                            ESME_RX_T_APPN, FramingError, MalformedPdu)

_TEMPORARY_STATUSES = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR})
_SEQ_MAX = 0x7FFFFFFF
BIND_COMMANDS = {"transceiver": "bind_transceiver", "transmitter": "bind_transmitter",
                 "receiver": "bind_receiver"}


class SmppError(Exception):
    """Base of the SMPP client's typed failures; ``status`` is the SMSC's command_status."""

    status: int | None = None
    smsc: str | None = None


class TemporaryError(SmppError):
    """Try again later: throttled, queue full, system error, timeout, link lost, not bound."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class PermanentError(SmppError):
    """The SMSC refused the request for good; ``status`` says why."""

    def __init__(self, status: int, command: str = "request"):
        super().__init__(f"{command} refused with status 0x{status:08X}")
        self.status, self.command = status, command


class Throttled(TemporaryError):
    """ESME_RTHROTTLED or ESME_RMSGQFUL: the bind must slow down."""


class SmppTimeout(TemporaryError):
    """No response within the request's timeout."""


class LinkLost(TemporaryError):
    """The connection ended while the request was pending, or before it was sent."""


class NeverSent(LinkLost):
    """The connection was gone before the request was written: the SMSC never saw it, so
    sending it again is no duplicate."""


class NotBound(TemporaryError):
    """No bound link can take the request now."""


def _timeout_error(command: str, _seconds: float) -> SmppTimeout:
    return SmppTimeout(f"{command}: no response in time")


def error_for_status(status: int, command: str) -> SmppError:
    """The typed error for a non-zero command_status."""
    if status in (ESME_RTHROTTLED, ESME_RMSGQFUL):
        return Throttled(f"{command}: SMSC asks to slow down (0x{status:08X})", status)
    if status in _TEMPORARY_STATUSES:
        return TemporaryError(f"{command}: temporary SMSC error 0x{status:08X}", status)
    return PermanentError(status, command)


class SmppProtocol(Protocol):
    """One ESME-side SMPP connection.

    ``on_deliver(pdu) -> Deferred`` receives every deliver_sm/data_sm; its
    success is acknowledged with ESME_ROK, its failure with ESME_RX_T_APPN so
    the SMSC delivers again. ``on_unbind(protocol)`` is told when the SMSC unbinds;
    ``on_answered()`` once after each read that answered requests, so that a bind
    refills its window with one burst per read.
    """

    log = Logger(namespace="hotline.sms.smpp")

    def __init__(self, clock: IReactorTime, *, response_timeout: float = 10.0,
                 enquire_link: float = 30.0,
                 on_deliver: Callable[[object], Deferred] | None = None,
                 on_unbind: Callable[[SmppProtocol], None] | None = None,
                 on_answered: Callable[[], None] | None = None,
                 name: str = "smpp"):
        self.clock = clock
        self.response_timeout = response_timeout
        self.on_deliver = on_deliver
        self.on_unbind = on_unbind
        self.on_answered = on_answered
        self.name = name
        self._splitter = codec.FrameSplitter()
        self._pending: PendingRequests[int] = PendingRequests(clock, _timeout_error)
        self._delivered = DeliverQueue(clock, self._deliver, lambda: self.connected)
        self._sequence = 0
        self._probe = IdleProbe(clock, enquire_link, self._enquire, self._enquire_failed)
        self.connected = False
        self.unbinding = False
        self.received = self.sent = 0

    # ---- connection ----------------------------------------------------------
    def connectionMade(self) -> None:
        self.connected = True
        # Many small PDUs in flight: Nagle would hold each behind the previous one's ACK.
        if hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)
        self._probe.start()

    def connectionLost(self, reason: Failure = None) -> None:
        self.connected = False
        # Receipts and MO not yet handled were not acknowledged: the SMSC delivers them again.
        self._delivered.clear()
        self._probe.stop()
        why = reason.getErrorMessage() if reason is not None else "closed"
        self._pending.fail_all(lambda command: LinkLost(f"{command}: link lost ({why})"))

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # ---- requests ------------------------------------------------------------
    def _next_sequence(self) -> int:
        seq = self._sequence + 1
        if seq > _SEQ_MAX:
            seq = 1
        self._sequence = seq
        return seq

    def request(self, command: str, *, timeout: float | None = None,
                answer: Deferred | None = None, **fields) -> Deferred:
        """Send one request PDU; the Deferred fires with the response PDU or a typed error.

        ``answer`` is the Deferred to fire, when the caller already has one (a bind's
        queued part): one Deferred per part instead of two on the hot path.
        """
        d = Deferred() if answer is None else answer
        if not self.connected:
            d.errback(NeverSent(f"{command}: not connected"))
            return d
        seq = self._next_sequence()
        try:
            raw = codec.encode(command, seq, **fields)
        except codec.CodecError as e:
            d.errback(e)
            return d
        self._pending.add(seq, command, self.response_timeout if timeout is None else timeout, d)
        self.sent += 1
        self.transport.write(raw)
        return d

    def bind(self, mode: str, system_id: str, password: str, system_type: str = "") -> Deferred:
        """Bind as transceiver, transmitter or receiver; fires with the SMSC's system_id."""
        d = self.request(BIND_COMMANDS[mode], system_id=system_id, password=password,
                         system_type=system_type, interface_version=0x34)
        return d.addCallback(lambda pdu: codec.as_text(pdu.system_id))

    def submit_sm(self, **fields) -> Deferred:
        """Submit one part; fires with the raw message_id from submit_sm_resp."""
        return self.request("submit_sm", **fields).addCallback(
            lambda pdu: codec.as_text(pdu.message_id))

    def unbind(self, timeout: float = 5.0) -> Deferred:
        """Unbind politely, then close; fires when the connection is closing."""
        if not self.connected:
            return fail(LinkLost("unbind: not connected"))
        self.unbinding = True
        d = self.request("unbind", timeout=timeout)

        def close(result):
            if self.transport is not None:
                self.transport.loseConnection()
            if isinstance(result, Failure):
                result.trap(SmppError)
            return None

        return d.addBoth(close)

    # ---- incoming ------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        try:
            frames = self._splitter.feed(data)
        except FramingError as e:
            self.log.warn("{name}: dropping the link: {error}", name=self.name, error=str(e))
            self.transport.abortConnection()
            return
        if frames:
            self._probe.touch()
        answered = False
        for raw in frames:
            if not self.connected:
                return
            self.received += 1
            try:
                pdu = codec.decode(raw)
            except MalformedPdu as e:
                self._malformed(e)
                continue
            command_id = codec.header(raw)[1]
            if command_id & codec.RESPONSE_BIT:
                answered = self._response(pdu, command_id) or answered
            else:
                self._request_received(pdu)
        if answered and self.on_answered is not None:
            self.on_answered()
        self._delivered.kick()

    def _malformed(self, e: MalformedPdu) -> None:
        self.log.warn("{name}: malformed PDU: {error}", name=self.name, error=str(e))
        if e.command_id & codec.RESPONSE_BIT:
            request = self._pending.pop(e.sequence)
            if request is not None:
                request.deferred.errback(
                    TemporaryError(f"{request.label}: malformed response", e.status))
            return
        self.transport.write(codec.generic_nack(e.sequence, e.status))

    def _response(self, pdu, command_id: int) -> bool:
        """Fire the pending request's Deferred; False when nothing was pending."""
        request = self._pending.pop(pdu.sequence)
        if request is None:
            if command_id == codec.GENERIC_NACK:
                self.log.warn("{name}: generic_nack 0x{status:08X} for no pending request",
                              name=self.name, status=pdu.status)
            return False
        if pdu.status != ESME_ROK:
            request.deferred.errback(error_for_status(pdu.status, request.label))
        elif command_id == codec.GENERIC_NACK:
            request.deferred.errback(PermanentError(ESME_ROK, request.label))
        else:
            request.deferred.callback(pdu)
        return True

    def _request_received(self, pdu) -> None:
        command = pdu.command
        if command == "enquire_link":
            self.transport.write(codec.encode("enquire_link_resp", pdu.sequence))
        elif command in ("deliver_sm", "data_sm"):
            self._delivered.append(pdu)
        elif command == "unbind":
            self.unbinding = True
            self.transport.write(codec.encode("unbind_resp", pdu.sequence))
            if self.on_unbind is not None:
                self.on_unbind(self)
            self.transport.loseConnection()
        elif command == "outbind":
            self.log.warn("{name}: ignoring outbind", name=self.name)
        else:
            self.transport.write(codec.generic_nack(pdu.sequence, codec.ESME_RINVCMDID))

    def _deliver(self, pdu) -> None:
        response = pdu.command + "_resp"
        if self.on_deliver is None:
            self.transport.write(codec.encode(response, pdu.sequence, status=ESME_RX_T_APPN))
            return
        d = maybeDeferred(self.on_deliver, pdu)

        def answer(result):
            status = ESME_ROK
            if isinstance(result, Failure):
                status = ESME_RX_T_APPN
                self.log.failure("{name}: {command} handler failed; asking the SMSC to retry",
                                 result, name=self.name, command=pdu.command)
            if self.connected:
                self.transport.write(codec.encode(response, pdu.sequence, status=status))

        d.addBoth(answer)

    # ---- keepalive -----------------------------------------------------------
    def _enquire(self) -> Deferred:
        """The idle probe's request; none while unbinding (the link is going anyway)."""
        if self.unbinding:
            return Deferred()
        return self.request("enquire_link")

    def _enquire_failed(self, failure: Failure) -> None:
        if self.connected and not failure.check(LinkLost):
            self.log.warn("{name}: enquire_link failed ({error}); dropping the link",
                          name=self.name, error=failure.getErrorMessage())
            self.transport.loseConnection()
