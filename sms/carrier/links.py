"""The client links of the carrier protocols, on ``common.link``: log in, log out, send a part.

A ``CarrierLink`` is one connection to a carrier gateway kept logged in (CMPP
CONNECT, SMGP Login, SGIP Bind in ``log_in``, so a refused login is a failed
connection: a clear ``last_error`` and the link's backoff, never a tight loop).
The ``Bind`` of ``sms.smpp.binds`` takes these links as it takes SMPP's, so the
window, queue and throttle are the same code for every protocol; several
connections per account are several Binds (``binds = N``).

Each protocol's module adds its PDUs: ``login_pdu``/``check_login`` and the
``Carrier`` that turns the outbox's parts into submits and DELIVERs into
receipts and MO (``sms.cmpp.link``, ``sms.smgp.link``, ``sms.sgip.link``).
"""
from __future__ import annotations

import functools

from datetime import datetime, timedelta, timezone
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint

from common.link import CLOSING, DOWN, PARKED, PREPARING, UP, Link
from sms.carrier import text as _text
from sms.carrier.receipts import MoMessage, Receipt
from sms.outbox.states import dlr_stat
from sms.carrier.protocol import CarrierProtocol, Prepared
from sms.config import SmscConfig
from sms.smpp.protocol import SmppError

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # the gateways' clock zone, no DST


def source_number(part, config: SmscConfig) -> str:
    """The SP's service number for a part: ``source_addr`` and its center's extension."""
    for center, digits in config.extensions:
        if center == part.center:
            return config.source_addr + digits
    return config.source_addr


def beijing_now(clock: IReactorTime) -> datetime:
    """The injected clock's time in Beijing: what login timestamps and SGIP sequences carry."""
    return datetime.fromtimestamp(clock.seconds(), BEIJING)


class CarrierLink(Link):
    """One logged-in connection to a carrier gateway; a subclass names its protocol."""

    names = {DOWN: "down", PREPARING: "logging in", UP: "up", CLOSING: "logging out",
             PARKED: "parked"}
    errors = (SmppError,)
    protocol_class: type[CarrierProtocol] = CarrierProtocol

    def __init__(self, name: str, endpoint: IStreamClientEndpoint, config: SmscConfig,
                 clock: IReactorTime, *, on_deliver: Callable | None = None,
                 on_state: Callable | None = None, on_answered: Callable[[], None] | None = None,
                 on_window: Callable[..., None] | None = None,
                 jitter: Callable[[], float] | None = None, initial_delay: float = 1.0,
                 max_delay: float = 60.0):
        super().__init__(name, endpoint, clock, min_delay=initial_delay, max_delay=max_delay,
                         jitter=jitter)
        self.label = f"{self.protocol_class.protocol_name} {name}"
        self.config = config
        self.on_deliver, self.on_answered = on_deliver, on_answered
        self.on_window = on_window  # the Bind's window_answered
        if on_state is not None:
            self.observe(on_state)

    @classmethod
    def make_links(cls, name: str, endpoint, config: SmscConfig, clock, **kw) -> list[Link]:
        """The ``Bind``'s ``make_links``: one connection that submits and receives."""
        return [cls(name, endpoint, config, clock, **kw)]

    def protocol_options(self) -> dict:
        c = self.config
        return dict(response_timeout=c.response_timeout, active_test=c.active_test,
                    active_test_timeout=c.active_test_timeout,
                    active_test_tries=c.active_test_tries)

    def build_protocol(self) -> CarrierProtocol:
        return self.protocol_class(self.clock, on_deliver=self.on_deliver,
                                   on_answered=self.on_answered, on_window=self.on_window,
                                   name=self.name, **self.protocol_options())

    def log_out(self, protocol: CarrierProtocol) -> Deferred:
        return protocol.terminate(timeout=min(self.config.response_timeout, 5.0))

    @staticmethod
    def send(protocol: CarrierProtocol, submit, answer: Deferred) -> None:
        """Write one Submit PDU; ``answer`` fires with the response or a typed error."""
        protocol.request(submit, "submit", answer=answer, window=True)

    @staticmethod
    def message_id(response) -> str:
        """The id receipts name this part by (CMPP Msg_Id, SMGP MsgID)."""
        return str(response.msg_id)

    @staticmethod
    def submit_pdu(part, config: SmscConfig):
        """The protocol's Submit for one of the outbox's parts (``router.SubmitPart``)."""
        raise NotImplementedError

    @classmethod
    def prepare(cls, part, config: SmscConfig) -> Prepared:
        """The part's Submit encoded now, before it waits for a window slot, so that the
        turn which refills a window only writes in sequence numbers; raises the codec's
        CodecError when the protocol cannot carry the part."""
        return cls.encode_ahead(cls.submit_pdu(part, config), config)

    @staticmethod
    def encode_ahead(pdu, config: SmscConfig) -> Prepared:
        """``pdu`` encoded with a placeholder sequence, as ``Prepared``."""
        raise NotImplementedError

    @staticmethod
    def incoming(pdu, smsc: str, now: Callable[[], datetime]) -> Receipt | MoMessage:
        """A DELIVER (or SGIP Deliver/Report) as a Receipt or an MoMessage; ``now()`` is the
        time it came, asked only when the PDU has none of its own."""
        raise NotImplementedError


# ---- what every carrier's DELIVER turns into ----------------------------------------

def receipt(message_id: str, stat: str, done_time: str, smsc: str, err: str = "",
            number: str = "") -> Receipt:
    """A receipt from a carrier's status report. A Stat outside SMPP's states (carriers
    send their own codes, e.g. ``MK:0005``) is undeliverable, the code kept as the error.
    ``number`` is the terminal the report is about: the outbox applies a receipt only to
    a part sent to that number."""
    raw = stat.strip()
    state = dlr_stat(raw) or "UNDELIV"
    error = None
    if state != "DELIVRD":
        error = raw[:16] if state != raw.upper() or not err.strip("0 ") else err[:16]
    return Receipt(message_id, state, error, _done_at(done_time), smsc, source=mobile(number),
                   raw_id=message_id)


@functools.lru_cache(maxsize=64)
def _done_at(raw: str) -> datetime | None:
    """Done_time YYMMDDHHMM in Beijing time; remembered, as a minute's reports share one."""
    raw = raw.strip()
    if len(raw) != 10 or not (raw.isascii() and raw.isdigit()):
        return None
    try:
        return datetime(2000 + int(raw[:2]), int(raw[2:4]), int(raw[4:6]), int(raw[6:8]),
                        int(raw[8:10]), tzinfo=BEIJING)
    except ValueError:
        return None


def mobile(number: str) -> str:
    """A terminal id as the outbox stores mobiles: without the 86 some gateways put before."""
    number = number.strip()
    if len(number) == 13 and number.startswith("86"):
        return number[2:]
    return number


def mo_message(source: str, destination: str, content: bytes, msg_fmt: int, udhi: int,
               smsc: str, received_at: datetime) -> MoMessage:
    """An MO from a carrier's DELIVER; its Msg_Fmt 0 is ASCII (SMPP's 0 is GSM)."""
    _udh, payload = _text.split_udh(content, _text.ESM_UDHI if udhi else 0)
    body = payload.decode("ascii", errors="replace") if msg_fmt == 0 \
        else _text.decode(payload, msg_fmt)
    return MoMessage(mobile(source), destination.strip(), body, smsc, received_at)
