"""The one object the outbox calls: routes each part to a bound bind, and receipts/MO back.

Routing is by the longest destination prefix among the SMSCs' ``prefixes`` (an
SMSC without prefixes serves every destination, as the shortest match). When
the preferred SMSC has no bound bind the next one serving the destination takes
the part (failover). Within an SMSC the bound bind with the most free window
slots is used. ``submit`` fails at once with ``NoRoute`` or ``NotBound`` (both
TemporaryError) rather than queueing for a link that is down.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, UTC
from collections.abc import Callable, Sequence

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, fail
from twisted.internet.endpoints import clientFromString
from twisted.logger import Logger

from sms.carrier import receipts as _receipts
from sms.smpp.binds import Bind
from sms.config import SmscConfig
from sms.carrier.receipts import (IdFormWatch, MoMessage, Receipt, ReceiptError,
                                  normalise_message_id)
from sms.smpp import codec
from sms.smpp.codec import ESME_RINVDSTADR, ESME_RINVMSGLEN, ESME_RMSGQFUL, EncodeError
from sms.smpp.protocol import (LinkLost, NotBound, PermanentError, SmppError, SmppTimeout,
                               TemporaryError, Throttled)

__all__ = ["SmppRouter", "SubmitPart", "Submitted", "Receipt", "MoMessage", "NoRoute", "Unsendable",
           "NotBound", "TemporaryError", "PermanentError", "SmppError"]

log = Logger(namespace="hotline.sms.router")


class NoRoute(TemporaryError):
    """No configured SMSC serves this destination."""


class Unsendable(PermanentError):
    """The part cannot be put in a submit_sm (a field SMPP cannot carry): it fails for good.

    ``reason`` is short enough for the part's error column and names the field.
    """

    def __init__(self, error: EncodeError, smsc: str):
        field = error.field or "pdu"
        status = ESME_RINVDSTADR if field == "destination_addr" else ESME_RINVMSGLEN
        SmppError.__init__(self, f"not sent: {error}")  # no SMSC refused it: say so
        self.status, self.command = status, "submit_sm"
        self.reason = f"unsendable {field}"[:32]
        self.smsc = smsc


class FaultSummary:
    """Counts each bind's throttles, queue-full answers, timeouts and parts lost with a link,
    and logs one warning per bind per minute that had any: under faults an operator sees
    what slows the gateway without a line per part."""

    PERIOD = 60.0
    KINDS = (("throttled", "throttled"), ("queue_full", "queue full"),
             ("timeout", "timed out (resent)"), ("lost", "lost with the link (resent)"),
             ("unsendable", "failed: not encodable as a submit_sm"))

    def __init__(self, clock):
        self.clock = clock
        self._counts: dict[str, dict[str, int]] = {}
        self._call = None

    def note(self, bind: str, kind: str) -> None:
        counts = self._counts.setdefault(bind, {})
        counts[kind] = counts.get(kind, 0) + 1
        if self._call is None:
            self._call = self.clock.callLater(self.PERIOD, self._flush)

    def _flush(self) -> None:
        self._call = None
        counts, self._counts = self._counts, {}
        for bind, c in sorted(counts.items()):
            what = ", ".join(f"{c[k]} {label}" for k, label in self.KINDS if c.get(k))
            log.warn("SMPP {bind} in the last minute: {what}", bind=bind, what=what)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


@dataclass(frozen=True)
class SubmitPart:
    """One submit_sm."""

    destination: str
    source: str
    short_message: bytes
    data_coding: int
    esm_class: int
    registered_delivery: int = 1
    priority_flag: int = 0
    validity_period: str | None = None
    sar: tuple | None = None  # (ref, total, seq); unused when the UDH is in the body


@dataclass(frozen=True)
class Submitted:
    message_id: str  # normalised (sms.carrier.receipts.normalise_message_id)
    smsc: str
    bind: str


class _Smsc:
    """One SMSC's binds and its message-id forms."""

    def __init__(self, config: SmscConfig, binds: list[Bind]):
        self.config, self.name, self.binds = config, config.name, binds
        self.prefixes = tuple(p.lstrip("+") for p in config.prefixes)
        self.resp_form = config.message_id_resp
        self.dlr_form = config.message_id_dlr
        self.resp_watch = IdFormWatch(self.name, "message_id_resp") \
            if self.resp_form == "auto" else None

    def best(self) -> Bind | None:
        """The bound bind with the most free slots (None when none is bound)."""
        best, slots = None, 0
        for bind in self.binds:
            if bind.bound:
                free = bind.free_slots()
                if best is None or free > slots:
                    best, slots = bind, free
        return best


class SmppRouter(MultiService):
    """Several SMSCs, several binds each; routing by prefix with failover."""

    name = "smpp-router"

    def __init__(self, smscs: Sequence[SmscConfig], reactor, *,
                 on_receipt: Callable[[Receipt], Deferred],
                 on_mo: Callable[[MoMessage], Deferred],
                 on_send: Callable[[list], None] | None = None,
                 endpoint_for: Callable[[SmscConfig], object] | None = None,
                 jitter: Callable[[], float] | None = None):
        super().__init__()
        self.reactor = reactor
        self.on_receipt, self.on_mo = on_receipt, on_mo
        self._waiters: list[Deferred] = []
        self._smscs: list[_Smsc] = []
        self.receipts = self.mo = self.bad_receipts = 0
        self.faults = FaultSummary(reactor)
        for config in smscs:
            endpoint = endpoint_for(config) if endpoint_for else clientFromString(
                reactor, config.endpoint)
            binds = []
            for i in range(config.binds):
                bind = Bind(f"{config.name}-{i}", endpoint, config, reactor,
                            on_deliver=self._deliverer(config),
                            on_capacity=self._capacity, on_send=on_send, jitter=jitter,
                            initial_delay=config.reconnect_min,
                            max_delay=max(config.reconnect_max, config.reconnect_min))
                bind.setServiceParent(self)
                binds.append(bind)
            self._smscs.append(_Smsc(config, binds))
        self._build_routes()

    # ---- routing -------------------------------------------------------------
    def _build_routes(self) -> None:
        """Precompute, for every configured prefix, the SMSCs serving it, preferred first.

        A destination's candidates depend only on its longest matching prefix p:
        every shorter matching prefix is a prefix of p too.
        """
        def ranked(key: str) -> list[_Smsc]:
            scored = []
            for index, smsc in enumerate(self._smscs):
                if not smsc.config.prefixes:
                    scored.append((0, index, smsc))
                    continue
                best = max((len(p) for p in smsc.prefixes if key.startswith(p)), default=-1)
                if best > 0:
                    scored.append((best, index, smsc))
            scored.sort(key=lambda r: (-r[0], r[1]))
            return [smsc for _, _, smsc in scored]

        prefixes = {p for smsc in self._smscs for p in smsc.prefixes}
        self._routes = {p: ranked(p) for p in prefixes}
        self._default = ranked("")
        self._prefix_lengths = sorted({len(p) for p in prefixes}, reverse=True)

    def route(self, destination: str) -> list[_Smsc]:
        """The SMSCs serving ``destination``, preferred first (longest prefix)."""
        key = destination.lstrip("+")
        routes = self._routes
        for n in self._prefix_lengths:
            hit = routes.get(key[:n])
            if hit is not None and len(key) >= n:
                return hit
        return self._default

    def _pick(self, destination: str) -> tuple[_Smsc, Bind]:
        candidates = self.route(destination)
        if not candidates:
            raise NoRoute("no SMSC serves this destination")
        for smsc in candidates:
            bind = smsc.best()
            if bind is not None:
                return smsc, bind
        raise NotBound(f"no bound bind on {', '.join(s.name for s in candidates)}")

    # ---- the outbox's API ----------------------------------------------------
    def submit(self, part: SubmitPart, ref: object = None) -> Deferred:
        """Send one part; fires with Submitted, or a TemporaryError/PermanentError.

        ``ref`` goes to ``on_send`` when the part's submit_sm is about to be written.
        """
        try:
            smsc, bind = self._pick(part.destination)
        except TemporaryError as e:
            return fail(e)
        config = smsc.config
        fields = dict(source_addr=part.source or config.source_addr,
                      destination_addr=part.destination, short_message=part.short_message,
                      data_coding=part.data_coding, esm_class=part.esm_class,
                      registered_delivery=part.registered_delivery,
                      priority_flag=part.priority_flag, dest_addr_ton=1, dest_addr_npi=1,
                      **_source_numbering(part.source or config.source_addr))
        if part.validity_period:
            fields["validity_period"] = part.validity_period
        if part.sar is not None:
            ref, total, seq = part.sar
            fields.update(sar_msg_ref_num=ref, sar_total_segments=total,
                          sar_segment_seqnum=seq)
        try:
            # Encoded once here, before the part takes a window slot or a journal line: a
            # part SMPP cannot carry fails alone, never inside a bind's burst.
            codec.encode("submit_sm", 1, **fields)
        except EncodeError as e:
            self.faults.note(bind.name, "unsendable")
            return fail(Unsendable(e, smsc.name))
        return bind.submit(fields, ref).addCallbacks(self._submitted, self._failed,
                              callbackArgs=(smsc, bind), errbackArgs=(smsc, bind))

    @staticmethod
    def _submitted(raw_id: str, smsc: _Smsc, bind: Bind) -> Submitted:
        if smsc.resp_watch is not None and not smsc.resp_watch.warned:
            warning = smsc.resp_watch.note(raw_id)
            if warning:
                log.warn("{warning}", warning=warning)
        try:
            message_id = normalise_message_id(raw_id, smsc.resp_form)
        except ValueError:
            raise TemporaryError(f"{smsc.name} answered without a usable message id") from None
        return Submitted(message_id, smsc.name, bind.name)

    def _failed(self, failure, smsc: _Smsc, bind: Bind):
        if failure.check(EncodeError):
            self.faults.note(bind.name, "unsendable")
            raise Unsendable(failure.value, smsc.name)
        if failure.check(Throttled):
            self.faults.note(bind.name, "queue_full" if failure.value.status == ESME_RMSGQFUL
                             else "throttled")
        elif failure.check(SmppTimeout):
            self.faults.note(bind.name, "timeout")
        elif failure.check(LinkLost):
            self.faults.note(bind.name, "lost")
        if isinstance(failure.value, SmppError):
            failure.value.smsc = smsc.name
        return failure

    def stopService(self):
        self.faults.stop()
        return super().stopService()

    def has_capacity(self, destination: str) -> bool:
        """True when a bound bind serving ``destination`` has a free window slot."""
        for smsc in self.route(destination):
            for bind in smsc.binds:
                if bind.has_capacity():
                    return True
        return False

    def room(self, destination: str) -> int | None:
        """Parts the SMSC that would take ``destination`` now can accept (window plus one
        window queued per bind); None when no bound bind serves it (a submit fails fast)."""
        for smsc in self.route(destination):
            bound = [bind for bind in smsc.binds if bind.bound]
            if bound:
                return sum(max(0, bind.room()) for bind in bound)
        return None

    def wait_for_capacity(self) -> Deferred:
        """Fires (with None) the next time a window slot frees or a bind comes up."""
        d = Deferred()
        self._waiters.append(d)
        return d

    def _capacity(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    def states(self) -> dict:
        """Per SMSC, per bind: state, window use, rate and counters."""
        return {smsc.name: {bind.name: bind.snapshot() for bind in smsc.binds}
                for smsc in self._smscs}

    def bound_count(self) -> int:
        return sum(1 for smsc in self._smscs for bind in smsc.binds if bind.bound)

    # ---- receipts and MO -----------------------------------------------------
    def _deliverer(self, config: SmscConfig) -> Callable:
        form = config.message_id_dlr
        name = config.name
        watch = IdFormWatch(name, "message_id_dlr") if form == "auto" else None

        def deliver(pdu) -> Deferred:
            if _receipts.is_receipt(pdu):
                try:
                    receipt = _receipts.parse_receipt(pdu, name, form)
                except (ReceiptError, ValueError) as e:
                    # Acknowledge it: an SMSC would otherwise resend a receipt we can never use.
                    self.bad_receipts += 1
                    log.warn("{smsc}: unusable receipt dropped: {error}", smsc=name, error=str(e))
                    return None
                if watch is not None and not watch.warned:
                    warning = watch.note(receipt.raw_id.strip("\0 "))
                    if warning:
                        log.warn("{warning}", warning=warning)
                self.receipts += 1
                return self.on_receipt(receipt)
            self.mo += 1
            return self.on_mo(_receipts.parse_mo(
                pdu, name, datetime.fromtimestamp(self.reactor.seconds(), UTC)))

        return deliver


def _source_numbering(source: str) -> dict:
    """Alphanumeric senders are TON 5 / NPI 0; numbers (the 12329 service code) TON 0 / NPI 1."""
    if source and not source.lstrip("+").isdigit():
        return dict(source_addr_ton=5, source_addr_npi=0)
    return dict(source_addr_ton=0, source_addr_npi=1)
