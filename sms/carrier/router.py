"""The one object the outbox calls: routes each part to a bound bind, and receipts/MO back.

SMSCs speak SMPP or a mainland carrier's protocol (``protocol = cmpp2|cmpp3|smgp|sgip``):
the router does not care which. Each SMSC's binds share one window, queue and
throttle (``sms.smpp.binds.Bind``); a carrier SMSC's links turn parts into their
protocol's Submit (``submit_pdu``) and DELIVERs into receipts and MO (``incoming``).

Routing: an SMSC with ``carriers`` serves the destinations whose number segment
(``sms.carrier.destinations``, the segment table) belongs to one of them, ahead
of every other route; then the longest destination prefix among the SMSCs'
``prefixes``; an SMSC with neither serves every destination, last (the
aggregator route). When the preferred SMSC has no bound bind the next one
serving the destination takes the part (failover). ``centers`` keeps an SMSC to
some centers' messages. Within an SMSC the bound bind with the most free window
slots is used. ``submit`` fails at once with ``NoRoute`` or ``NotBound`` (both
TemporaryError) rather than queueing for a link that is down; a link parked by
design (SGIP's idle Unbind) is not down: its bind queues the part and binds again.
"""
from __future__ import annotations

from datetime import datetime, UTC
from collections.abc import Callable, Sequence

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, fail
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger

from common.link import UP
from sms.carrier import receipts as _receipts
from sms.carrier.binary_pdu import CodecError
from sms.carrier.destinations import carrier_of
from sms.carrier.protocol import Unencodable
from sms.carrier.send_journal import SendJournal
from sms.cmpp.link import CmppLink
from sms.sgip.link import SgipLink, SgipListener
from sms.smgp.link import SmgpLink
from sms.smpp.binds import Bind
from sms.config import SmscConfig
from sms.carrier.receipts import (IdFormWatch, MoMessage, Receipt, ReceiptError,
                                  normalise_message_id)
from sms.smpp import codec
from sms.smpp.codec import ESME_RINVDSTADR, ESME_RINVMSGLEN, ESME_RMSGQFUL, EncodeError
from common.records import frozen_record
from sms.smpp.protocol import (LinkLost, NotBound, PermanentError, SmppError, SmppTimeout,
                               TemporaryError, Throttled)

__all__ = ["SmppRouter", "SubmitPart", "Submitted", "Receipt", "MoMessage", "NoRoute", "Unsendable",
           "NotBound", "TemporaryError", "PermanentError", "SmppError"]

log = Logger(namespace="hotline.sms.router")

#: The carrier protocols' links, by ``[smsc:NAME] protocol``; SMPP is the Bind's default.
LINKS = {"cmpp2": CmppLink, "cmpp3": CmppLink, "smgp": SmgpLink, "sgip": SgipLink}


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

    def __init__(self, clock: IReactorTime):
        self.clock = clock
        self._counts: dict[str, dict[str, int]] = {}
        self._call: IDelayedCall | None = None

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


@frozen_record
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
    center: str = ""  # the sending center: SMSCs with ``centers`` serve only theirs


@frozen_record
class Submitted:
    message_id: str  # normalised (sms.carrier.receipts.normalise_message_id)
    smsc: str
    bind: str


class _Smsc:
    """One SMSC's binds and its message-id forms."""

    def __init__(self, config: SmscConfig):
        self.config, self.name = config, config.name
        self.binds: list[Bind] = []
        self.prefixes = tuple(p.lstrip("+") for p in config.prefixes)
        self.link_class = LINKS.get(config.protocol)  # None for SMPP
        # Carrier ids are exact strings, written the same in responses and reports.
        self.resp_form = "str" if self.link_class else config.message_id_resp
        self.dlr_form = "str" if self.link_class else config.message_id_dlr
        self.resp_watch = IdFormWatch(self.name, "message_id_resp") \
            if self.resp_form == "auto" else None
        self.carriers = frozenset(config.carriers)
        self.centers = frozenset(config.centers)
        self.listener: SgipListener | None = None  # SGIP: where the SMG connects back

    def best(self) -> Bind | None:
        """The bound bind with the most free slots; else a parked one (SGIP's idle Unbind),
        which binds again for the part; None when none is either."""
        best, slots, parked = None, 0, None
        for bind in self.binds:
            used = bind.load()
            if used is None:
                continue
            if bind.tx.role != UP:  # ``bound`` written out: once per bind for every part
                parked = parked or bind
                continue
            free = bind.window - used
            if best is None or free > slots:
                best, slots = bind, free
        return best or parked


class SmppRouter(MultiService):
    """Several SMSCs, several binds each; routing by prefix with failover."""

    # Twisted's Service leaves name = None unannotated; IService says "str or None".
    name: str | None = "smpp-router"  # type: ignore[assignment]

    def __init__(self, smscs: Sequence[SmscConfig], reactor, *,
                 on_receipt: Callable[[Receipt], Deferred],
                 on_mo: Callable[[MoMessage], Deferred],
                 journal: SendJournal | None = None,
                 endpoint_for: Callable[[SmscConfig], IStreamClientEndpoint] | None = None,
                 listen_for: Callable[[SmscConfig], object] | None = None,
                 slot: Callable[[str, IStreamClientEndpoint], IStreamClientEndpoint]
                 | None = None,
                 jitter: Callable[[], float] | None = None):
        """``journal`` hears each part as it is written and each success as it is read
        (sms.carrier.send_journal). ``slot(name, endpoint)``, in a cluster, wraps each
        bind's endpoint so that the bind connects only while its instance holds connection
        slot ``name`` (storage.cluster.LeasedEndpoint): the cluster never opens more binds
        than configured, and a dead instance's binds are taken over."""
        super().__init__()
        self.reactor = reactor
        self.on_receipt, self.on_mo = on_receipt, on_mo
        self._waiters: list[Deferred] = []
        self._smscs: list[_Smsc] = []
        self.receipts = self.mo = self.bad_receipts = 0
        self.faults = FaultSummary(reactor)
        self.by_carrier: dict[str, dict[str, int]] = {}  # carrier -> part counters
        for config in smscs:
            endpoint = endpoint_for(config) if endpoint_for else clientFromString(
                reactor, config.endpoint)
            link_class = LINKS.get(config.protocol)
            deliverer = self._carrier_deliverer(config, link_class) if link_class \
                else self._deliverer(config)
            smsc = _Smsc(config)
            for i in range(config.binds):
                name = f"{config.name}-{i}"
                bind = Bind(name, slot(f"smsc-{name}", endpoint) if slot else endpoint,
                            config, reactor,
                            on_deliver=deliverer, on_capacity=self._capacity,
                            on_send=journal.sent if journal is not None else None,
                            on_answer_ok=_journal_ok(journal, smsc) if journal else None,
                            jitter=jitter, initial_delay=config.reconnect_min,
                            max_delay=max(config.reconnect_max, config.reconnect_min),
                            make_links=link_class.make_links if link_class else None)
                bind.setServiceParent(self)
                smsc.binds.append(bind)
            if link_class is SgipLink:
                smsc.listener = SgipListener(config, reactor, deliverer,
                                             endpoint=listen_for(config) if listen_for else None)
                smsc.listener.setServiceParent(self)
            self._smscs.append(smsc)
        self._segment_routing = any(smsc.carriers for smsc in self._smscs)
        self._build_routes()

    # ---- routing -------------------------------------------------------------
    def _build_routes(self) -> None:
        """Precompute, for every configured prefix, the SMSCs serving it, preferred first.

        A destination's candidates depend only on its longest matching prefix p:
        every shorter matching prefix is a prefix of p too.
        """
        def ranked(key: str, carrier: str | None = None) -> list[_Smsc]:
            scored = []
            for index, smsc in enumerate(self._smscs):
                if smsc.carriers:
                    if carrier in smsc.carriers:
                        scored.append((1 << 16, index, smsc))  # the carrier's own route first
                    continue
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
        # With carrier routes: the same lists per carrier, computed on first use.
        self._ranked = ranked
        self._carrier_routes: dict[tuple[str | None, str], list[_Smsc]] = {}

    def route(self, destination: str) -> list[_Smsc]:
        """The SMSCs serving ``destination``, preferred first (carrier, longest prefix)."""
        key = destination.lstrip("+")
        routes = self._routes
        prefix = ""
        for n in self._prefix_lengths:
            hit = routes.get(key[:n])
            if hit is not None and len(key) >= n:
                if not self._segment_routing:
                    return hit
                prefix = key[:n]
                break
        if not self._segment_routing:
            return self._default
        carrier = carrier_of(key) if len(key) == 11 else None
        found = self._carrier_routes.get((carrier, prefix))
        if found is None:
            found = self._carrier_routes[(carrier, prefix)] = self._ranked(prefix, carrier)
        return found

    def _pick(self, destination: str, center: str = "") -> tuple[_Smsc, Bind]:
        candidates = self.route(destination)
        if center:
            candidates = [s for s in candidates if not s.centers or center in s.centers]
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

        ``ref`` (the dispatcher's ``(part id, message id)``) goes to the journal when the
        part's submit_sm is about to be written, and again when it is accepted.
        """
        try:
            smsc, bind = self._pick(part.destination, part.center)
        except TemporaryError as e:
            return fail(e)
        self._count(part.destination, smsc)
        config = smsc.config
        if smsc.link_class is not None:
            try:
                # Encoded now, while the part waits for a slot (the refill of a window
                # then only writes in sequence numbers); a part the protocol cannot
                # carry fails alone here and never takes a window slot.
                prepared = smsc.link_class.prepare(part, config)
            except CodecError as e:
                self.faults.note(bind.name, "unsendable")
                error = Unencodable("submit", e)
                error.smsc = smsc.name
                return fail(error)
            return bind.submit(prepared, ref).addCallbacks(
                self._submitted, self._failed, callbackArgs=(smsc, bind),
                errbackArgs=(smsc, bind))
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

    def has_room(self, destination: str) -> bool | None:
        """Whether the SMSC that would take ``destination`` can take a part now (a bind with
        a free slot, or room for one window queued behind its own); None when no bound bind
        serves it (a submit fails fast). Asked for every message: the first bind with room
        answers."""
        for smsc in self.route(destination):
            answer = None
            for bind in smsc.binds:
                used = bind.load()
                if used is not None:
                    if used < 2 * bind.window:
                        return True
                    answer = False
            if answer is not None:
                return answer
        return None

    def wait_for_capacity(self) -> Deferred:
        """Fires (with None) the next time a window slot frees or a bind comes up."""
        d: Deferred = Deferred()
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

    def routes(self) -> dict:
        """Per route (SMSC): its protocol, carriers and the sum of its binds' counters; per
        carrier of the segment table: the parts sent to its numbers, and where they went."""
        per_route = {}
        for smsc in self._smscs:
            totals: dict[str, int] = {}
            for bind in smsc.binds:
                for key, value in bind.counters.items():
                    totals[key] = totals.get(key, 0) + value
            per_route[smsc.name] = dict(protocol=smsc.config.protocol,
                                        carriers=sorted(smsc.carriers),
                                        bound=sum(1 for b in smsc.binds if b.bound),
                                        parked=sum(1 for b in smsc.binds
                                                   if b.ready and not b.bound), **totals)
            if smsc.listener is not None:
                per_route[smsc.name]["smg_connections"] = len(smsc.listener.open)
        return dict(routes=per_route, carriers={k: dict(v) for k, v in self.by_carrier.items()})

    def _count(self, destination: str, smsc: _Smsc) -> None:
        key = destination.lstrip("+")
        carrier = (carrier_of(key) if len(key) == 11 else None) or "other"
        counts = self.by_carrier.get(carrier)
        if counts is None:
            counts = self.by_carrier[carrier] = {}
        counts[smsc.name] = counts.get(smsc.name, 0) + 1

    def connections(self) -> dict[str, int]:
        """Per SMSC, its connections logged in now (whatever the protocol calls that state):
        what this daemon reports to the cluster."""
        return {smsc.name: sum(1 for bind in smsc.binds for link in bind.links if link.is_up)
                for smsc in self._smscs}

    def bound_count(self) -> int:
        """Binds that take parts now: bound, or parked by design (not an outage)."""
        return sum(1 for smsc in self._smscs for bind in smsc.binds if bind.ready)

    # ---- receipts and MO -----------------------------------------------------
    def _carrier_deliverer(self, config: SmscConfig, link_class) -> Callable:
        """A carrier DELIVER (CMPP, SMGP) or Deliver/Report (SGIP) to the outbox."""
        name, incoming = config.name, link_class.incoming

        def now() -> datetime:
            return datetime.fromtimestamp(self.reactor.seconds(), UTC)

        def deliver(pdu) -> Deferred:
            message = incoming(pdu, name, now)
            if isinstance(message, Receipt):
                self.receipts += 1
                return self.on_receipt(message)
            self.mo += 1
            return self.on_mo(message)

        return deliver

    def _deliverer(self, config: SmscConfig) -> Callable[..., Deferred | None]:
        form = config.message_id_dlr
        name = config.name
        watch = IdFormWatch(name, "message_id_dlr") if form == "auto" else None

        def deliver(pdu) -> Deferred | None:
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


def _journal_ok(journal: SendJournal, smsc: _Smsc) -> Callable[[object, str], None]:
    """A bind's ``on_answer_ok``: the journal's line for a part accepted under a raw id,
    with the id as ``SmppRouter._submitted`` records it."""
    def answered_ok(ref, raw_id: str) -> None:
        try:
            message_id = normalise_message_id(raw_id, smsc.resp_form)
        except ValueError:
            return  # no usable id: the part fails (_submitted), and the dispatcher journals that
        journal.answered_ok(ref, message_id, smsc.name)

    return answered_ok


def _source_numbering(source: str) -> dict:
    """Alphanumeric senders are TON 5 / NPI 0; numbers (the 12329 service code) TON 0 / NPI 1."""
    if source and not source.lstrip("+").isdigit():
        return dict(source_addr_ton=5, source_addr_npi=0)
    return dict(source_addr_ton=0, source_addr_npi=1)
