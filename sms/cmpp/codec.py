"""CMPP 2.0 and 3.0 (China Mobile's ISMG) bytes <-> PDUs, as frozen dataclasses.

Pure functions and the shared frame splitter, no I/O. The version is a
parameter (``V20`` = 0x20, ``V30`` = 0x30) because the two differ inside the
same command ids: 3.0 widens terminal ids from 21 to 32 octets and adds a
terminal-type octet after them, replaces SUBMIT's and DELIVER's trailing
Reserve (8) by LinkID (20), and widens CONNECT_RESP's Status and the Result of
SUBMIT_RESP and DELIVER_RESP from u8 to u32. A peer on the other version shows
up as ``MalformedPdu`` (the lengths disagree), never as a misread field.

Layouts are the specification's (CMPP 2.0 section 7.4, CMPP 3.0 section 7.4).
The 8-octet Msg_Id is a u64 of month (4 bits), day (5), hour (5), minute (6),
second (6), ISMG code (22) and sequence (16); ``MsgId`` gives it fields and the
canonical string receipts are matched by: the 22-digit form Java gateways such
as SMSGate print (MMDDHHMMSS, the ISMG code in 7 digits, the sequence in 5).
"""
from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import FrozenInstanceError, field, fields
from datetime import datetime
from typing import ClassVar

from sms.carrier.binary_pdu import (
    CodecError,
    FieldTooLong,
    Frame,
    FramingError,
    InvalidAddress,
    InvalidField,
    MalformedPdu,
    Reader,
    cstr,
    decode_frame,
    digits,
    encode_frame,
    fixed,
    header12,
    is_response,
    md5,
    secret_bytes,
    timestamp,
    timestamp_text,
    u8,
    u32,
)
from sms.carrier.binary_pdu import FrameSplitter as _Splitter
from sms.carrier.binary_pdu import command_name as _command_name
from common.records import frozen_record

__all__ = [
    "CodecError",
    "FieldTooLong",
    "Frame",
    "FramingError",
    "InvalidAddress",
    "InvalidField",
    "MalformedPdu",
    "is_response",
]

V20 = 0x20
V30 = 0x30
VERSIONS = (V20, V30)

HEADER_LENGTH = 12
#: A SUBMIT to 100 destinations on 3.0 is about 3.6 KiB; anything past 8 KiB is garbage.
MAX_LENGTH = 8 * 1024
MAX_DESTINATIONS = 100
MAX_CONTENT = 255  # Msg_Length is one octet; the text splitter keeps parts to 140

CONNECT = 0x00000001
CONNECT_RESP = 0x80000001
TERMINATE = 0x00000002
TERMINATE_RESP = 0x80000002
SUBMIT = 0x00000004
SUBMIT_RESP = 0x80000004
DELIVER = 0x00000005
DELIVER_RESP = 0x80000005
QUERY = 0x00000006
QUERY_RESP = 0x80000006
ACTIVE_TEST = 0x00000008
ACTIVE_TEST_RESP = 0x80000008

# CONNECT_RESP Status (section 7.4.1.2).
CONNECT_OK = 0
CONNECT_BAD_STRUCTURE = 1
CONNECT_BAD_SOURCE = 2
CONNECT_BAD_AUTH = 3
CONNECT_VERSION_TOO_HIGH = 4

# SUBMIT_RESP Result (section 7.4.3.2).
RESULT_OK = 0
RESULT_BAD_STRUCTURE = 1
RESULT_BAD_COMMAND = 2
RESULT_DUPLICATE_SEQUENCE = 3
RESULT_BAD_LENGTH = 4
RESULT_BAD_FEE_CODE = 5
RESULT_TOO_LONG = 6
RESULT_BAD_SERVICE_ID = 7
RESULT_FLOW_CONTROL = 8
RESULT_NOT_SERVED = 9  # 3.0: this gateway does not serve the fee terminal
RESULT_BAD_SRC_ID = 10
RESULT_BAD_MSG_SRC = 11
RESULT_BAD_FEE_TERMINAL = 12
RESULT_BAD_DEST_TERMINAL = 13

MSG_FMT_ASCII = 0
MSG_FMT_BINARY = 4
MSG_FMT_UCS2 = 8
MSG_FMT_GBK = 15

_ZERO_RESERVE = bytes(8)
_SUBMIT_FLAGS = struct.Struct(">4B")  # Pk_total, Pk_number, Registered_Delivery, Msg_level
_SUBMIT_FORM = struct.Struct(">3B")  # TP_udhi, Msg_Fmt; then (after Src_Id) DestUsr_tl
#: SUBMIT_RESP and DELIVER_RESP: Msg_Id, Result (u32 on 3.0, one octet on 2.0).
_MSG_ID_RESULT = {V30: struct.Struct(">QL"), V20: struct.Struct(">QB")}


def is_flow_control(result: int) -> bool:
    """True for the SUBMIT_RESP result meaning "too fast": a throttle to retry, not a failure."""
    return result == RESULT_FLOW_CONTROL


def _terminal_width(version: int) -> int:
    if version not in VERSIONS:
        raise InvalidField(f"CMPP version 0x{version:02X} is neither 0x20 nor 0x30")
    return 32 if version == V30 else 21


# ---- Msg_Id ------------------------------------------------------------------

class MsgId:
    """The ISMG's 8-octet message id, as its parts; any 8 octets are a valid MsgId.

    Kept as the 64-bit integer it is on the wire: every SUBMIT_RESP, status report and
    DELIVER_RESP carries one, and there it is only compared, printed or echoed, so its
    parts are read from the integer when asked for. Immutable, compared and hashed by value.
    """

    __slots__ = ("_value",)
    _BITS: ClassVar = (("month", 4), ("day", 5), ("hour", 5), ("minute", 6), ("second", 6),
                       ("gateway", 22), ("sequence", 16))  # ISMG code; its own counter

    def __init__(self, month: int = 0, day: int = 0, hour: int = 0, minute: int = 0,
                 second: int = 0, gateway: int = 0, sequence: int = 0):
        parts = (month, day, hour, minute, second, gateway, sequence)
        value = 0
        for (name, bits), part in zip(self._BITS, parts, strict=True):
            if type(part) is not int or not 0 <= part < 1 << bits:
                raise InvalidField(f"Msg_Id {name} = {part!r} does not fit {bits} bits")
            value = (value << bits) | part
        _set_value(self, value)

    @classmethod
    def from_int(cls, value: int) -> MsgId:
        msg_id = _new(cls)  # any u64 is one: nothing to check, nothing to unpack
        _set_value(msg_id, value)
        return msg_id

    @classmethod
    def from_bytes(cls, raw: bytes) -> MsgId:
        if len(raw) != 8:
            raise InvalidField(f"Msg_Id is 8 octets, not {len(raw)}")
        return cls.from_int(int.from_bytes(raw, "big"))

    @classmethod
    def parse(cls, text: str) -> MsgId:
        """The inverse of ``str()``: 22 digits back to a MsgId."""
        if len(text) != 22 or not (text.isascii() and text.isdigit()):
            raise InvalidField("a CMPP Msg_Id string is 22 digits")
        n = [int(text[i:i + 2]) for i in range(0, 10, 2)]
        return cls(*n, gateway=int(text[10:17]), sequence=int(text[17:]))

    def to_int(self) -> int:
        return self._value

    def to_bytes(self) -> bytes:
        return self._value.to_bytes(8, "big")

    month = property(lambda self: self._value >> 60 & 0xF)
    day = property(lambda self: self._value >> 55 & 0x1F)
    hour = property(lambda self: self._value >> 50 & 0x1F)
    minute = property(lambda self: self._value >> 44 & 0x3F)
    second = property(lambda self: self._value >> 38 & 0x3F)
    gateway = property(lambda self: self._value >> 16 & 0x3FFFFF)
    sequence = property(lambda self: self._value & 0xFFFF)

    def __str__(self) -> str:
        """The canonical form receipts are matched on: MMDDHHMMSS + 7-digit ISMG + 5-digit seq."""
        v = self._value  # %-formatting: a third of the f-string's cost
        return _stamp(v >> 38) + "%07d%05d" % (v >> 16 & 0x3FFFFF, v & 0xFFFF)  # noqa: UP031

    def __repr__(self) -> str:
        return "MsgId(" + ", ".join(f"{name}={getattr(self, name)}" for name, _ in self._BITS) + ")"

    def __eq__(self, other: object) -> bool:
        if type(other) is not MsgId:
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash((MsgId, self._value))

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self):
        return _msg_id, (self._value,)


@functools.lru_cache(maxsize=256)
def _stamp(time_bits: int) -> str:
    """MMDDHHMMSS of a Msg_Id's top 26 bits: the ids of one second share it, so it is
    written once per second, not for every SUBMIT_RESP and report."""
    return "%02d%02d%02d%02d%02d" % (  # noqa: UP031
        time_bits >> 22, time_bits >> 17 & 0x1F, time_bits >> 12 & 0x1F, time_bits >> 6 & 0x3F,
        time_bits & 0x3F)


def _msg_id(value: int) -> MsgId:
    """Unpickles a MsgId (a function, so that any pickler takes it by name)."""
    return MsgId.from_int(value)


_new = object.__new__
_set_value = MsgId._value.__set__  # type: ignore[attr-defined]  # the slot, past __setattr__


ZERO_MSG_ID = MsgId()
_ZERO_MSG_ID = bytes(8)  # what an SP sends in every SUBMIT, without the bit packing


# ---- PDUs --------------------------------------------------------------------

@frozen_record
class Connect:
    """CONNECT: the SP logs in. Build one with ``make_connect`` to get the authenticator right."""

    COMMAND_ID: ClassVar[int] = CONNECT
    source_addr: str  # the SP id, 6 octets
    authenticator: bytes  # AuthenticatorSource, 16 octets
    version: int
    timestamp: int  # MMDDHHMMSS as an integer


@frozen_record
class ConnectResp:
    COMMAND_ID: ClassVar[int] = CONNECT_RESP
    status: int
    authenticator: bytes  # AuthenticatorISMG, 16 octets (zeros when refused, by many ISMGs)
    version: int


@frozen_record
class Submit:
    """SUBMIT: one part of a message to up to 100 destinations. 3.0-only fields stay 0/"" on 2.0."""

    COMMAND_ID: ClassVar[int] = SUBMIT
    dest_terminal_ids: tuple[str, ...]
    content: bytes
    src_id: str = ""  # the 106... service number plus the center's extension
    msg_src: str = ""  # the SP id
    service_id: str = ""
    msg_fmt: int = MSG_FMT_ASCII
    tp_udhi: int = 0
    tp_pid: int = 0
    pk_total: int = 1
    pk_number: int = 1
    registered_delivery: int = 0
    msg_level: int = 0
    fee_user_type: int = 0
    fee_terminal_id: str = ""
    fee_terminal_type: int = 0  # 3.0
    fee_type: str = "01"
    fee_code: str = "000000"
    valid_time: str = ""
    at_time: str = ""
    dest_terminal_type: int = 0  # 3.0
    link_id: str = ""  # 3.0
    msg_id: MsgId = ZERO_MSG_ID  # filled by the ISMG; zeros from an SP


@frozen_record
class SubmitResp:
    COMMAND_ID: ClassVar[int] = SUBMIT_RESP
    msg_id: MsgId
    result: int


@frozen_record
class Report:
    """The status report a DELIVER with Registered_Delivery = 1 carries in Msg_Content."""

    msg_id: MsgId  # the SUBMIT_RESP's id this report is about
    stat: str  # DELIVRD, EXPIRED, UNDELIV, ... (7 octets)
    submit_time: str  # YYMMDDHHMM
    done_time: str  # YYMMDDHHMM
    dest_terminal_id: str
    smsc_sequence: int = 0


@frozen_record
class Deliver:
    """DELIVER: an MO (``content``) or a status report (``report``, Registered_Delivery 1)."""

    COMMAND_ID: ClassVar[int] = DELIVER
    msg_id: MsgId
    dest_id: str  # the SP's service number the MO was sent to
    src_terminal_id: str
    content: bytes = b""
    report: Report | None = None
    service_id: str = ""
    tp_pid: int = 0
    tp_udhi: int = 0
    msg_fmt: int = MSG_FMT_ASCII
    src_terminal_type: int = 0  # 3.0
    link_id: str = ""  # 3.0

    @property
    def registered_delivery(self) -> int:
        return 1 if self.report is not None else 0


@frozen_record
class DeliverResp:
    COMMAND_ID: ClassVar[int] = DELIVER_RESP
    msg_id: MsgId
    result: int = RESULT_OK


@frozen_record
class ActiveTest:
    COMMAND_ID: ClassVar[int] = ACTIVE_TEST


@frozen_record
class ActiveTestResp:
    COMMAND_ID: ClassVar[int] = ACTIVE_TEST_RESP
    reserved: int = 0


@frozen_record
class Terminate:
    COMMAND_ID: ClassVar[int] = TERMINATE


@frozen_record
class TerminateResp:
    COMMAND_ID: ClassVar[int] = TERMINATE_RESP


@frozen_record
class Query:
    """QUERY: the ISMG's traffic counters for a day (YYYYMMDD), total or per Service_Id."""

    COMMAND_ID: ClassVar[int] = QUERY
    time: str
    query_type: int = 0  # 0 total, 1 by query_code (a Service_Id)
    query_code: str = ""


@frozen_record
class QueryResp:
    COMMAND_ID: ClassVar[int] = QUERY_RESP
    time: str
    query_type: int
    query_code: str
    counters: tuple[int, ...] = field(default=(0,) * 8)
    # MT_TLMsg, MT_Tlusr, MT_Scs, MT_WT, MT_FL, MO_Scs, MO_WT, MO_FL


# ---- login -------------------------------------------------------------------

def authenticator_source(source_addr: str, secret: str | bytes, timestamp: int) -> bytes:
    """AuthenticatorSource = MD5(Source_Addr + 9 zero octets + secret + "MMDDHHMMSS")."""
    return md5(fixed(source_addr, 6, "Source_Addr").rstrip(b"\0"), bytes(9), secret_bytes(secret),
               timestamp_text(timestamp))


def authenticator_ismg(status: int, source_auth: bytes, secret: str | bytes,
                       version: int = V30) -> bytes:
    """AuthenticatorISMG = MD5(Status + AuthenticatorSource + secret).

    Status is hashed as it is sent: one octet on 2.0, a u32 on 3.0.
    """
    _terminal_width(version)
    status_raw = u32(status, "Status") if version == V30 else u8(status, "Status")
    return md5(status_raw, source_auth, secret_bytes(secret))


def make_connect(source_addr: str, secret: str | bytes, moment: datetime,
                 version: int = V30) -> Connect:
    """A CONNECT for ``moment`` (the ISMG's clock zone: Beijing time) with its authenticator."""
    _terminal_width(version)
    ts = timestamp(moment)
    return Connect(source_addr, authenticator_source(source_addr, secret, ts), version, ts)


def check_connect(connect: Connect, secret: str | bytes) -> bool:
    """ISMG side: does the CONNECT's authenticator prove the shared secret?"""
    try:
        expected = authenticator_source(connect.source_addr, secret, connect.timestamp)
    except InvalidField:
        return False
    return expected == connect.authenticator


def verify_connect_resp(resp: ConnectResp, source_auth: bytes, secret: str | bytes,
                        version: int = V30) -> bool:
    """SP side: does AuthenticatorISMG prove the ISMG knows the secret? (Only for status 0.)"""
    return authenticator_ismg(resp.status, source_auth, secret, version) == resp.authenticator


# ---- encoding ----------------------------------------------------------------

def _result(value: int, version: int, name: str) -> bytes:
    return u32(value, name) if version == V30 else u8(value, name)


def _only_v30(version: int, **values) -> None:
    if version == V20:
        for name, value in values.items():
            if value:
                raise InvalidField(f"{name} exists only in CMPP 3.0")


def _content(content: bytes, name: str = "Msg_Content") -> bytes:
    if len(content) > MAX_CONTENT:
        raise FieldTooLong(f"{name} is {len(content)} octets, at most {MAX_CONTENT}")
    return u8(len(content), "Msg_Length") + bytes(content)


def _encode_connect(p: Connect, version: int) -> bytes:
    if len(p.authenticator) != 16:
        raise InvalidField("AuthenticatorSource is 16 octets")
    return (fixed(p.source_addr, 6, "Source_Addr") + p.authenticator + u8(p.version, "Version")
            + u32(p.timestamp, "Timestamp"))


def _encode_connect_resp(p: ConnectResp, version: int) -> bytes:
    if len(p.authenticator) != 16:
        raise InvalidField("AuthenticatorISMG is 16 octets")
    return _result(p.status, version, "Status") + p.authenticator + u8(p.version, "Version")


@functools.lru_cache(maxsize=64)
def _submit_runs(version: int, service_id: str, fee_user_type: int, fee_terminal_id: str,
                 fee_terminal_type: int, tp_pid: int, msg_src: str, fee_type: str,
                 fee_code: str, valid_time: str, at_time: str, src_id: str,
                 dest_terminal_type: int, link_id: str) -> tuple[bytes, bytes, bytes, bytes]:
    """The SUBMIT fields a link writes the same in every part, as the four runs of octets
    between the per-part ones, remembered (a refused value raises and is not)."""
    width = _terminal_width(version)
    _only_v30(version, fee_terminal_type=fee_terminal_type,
              dest_terminal_type=dest_terminal_type, link_id=link_id)
    v30 = version == V30
    return (
        fixed(service_id, 10, "Service_Id") + u8(fee_user_type, "Fee_UserType")
        + digits(fee_terminal_id, width, "Fee_terminal_Id")
        + (u8(fee_terminal_type, "Fee_terminal_type") if v30 else b"") + u8(tp_pid, "TP_pId"),
        fixed(msg_src, 6, "Msg_src") + fixed(fee_type, 2, "FeeType")
        + fixed(fee_code, 6, "FeeCode") + fixed(valid_time, 17, "ValId_Time")
        + fixed(at_time, 17, "At_Time") + digits(src_id, 21, "Src_Id"),
        u8(dest_terminal_type, "Dest_terminal_type") if v30 else b"",
        fixed(link_id, 20, "LinkID") if v30 else _ZERO_RESERVE)


def _encode_submit(p: Submit, version: int) -> bytes:
    runs = _submit_runs(
        version, p.service_id, p.fee_user_type, p.fee_terminal_id, p.fee_terminal_type,
        p.tp_pid, p.msg_src, p.fee_type, p.fee_code, p.valid_time, p.at_time, p.src_id,
        p.dest_terminal_type, p.link_id)
    return _submit_body(runs, _terminal_width(version), p.msg_id, p.pk_total, p.pk_number,
                        p.registered_delivery, p.msg_level, p.tp_udhi, p.msg_fmt,
                        tuple(p.dest_terminal_ids), p.content)


_SP_DEFAULTS = {f.name: f.default for f in fields(Submit)}  # what an SP leaves as it is


def sp_submit_body(version: int, destination: str, content: bytes, *, src_id: str,
                   msg_src: str, service_id: str, msg_fmt: int, tp_udhi: int, pk_total: int,
                   pk_number: int, registered_delivery: int, msg_level: int,
                   fee_user_type: int) -> bytes:
    """The body ``encode`` writes for ``Submit((destination,), content, ...)`` with these
    fields and every other at its default, without building the Submit: an SP's link
    writes one for every part (``CmppLink.prepare``)."""
    d = _SP_DEFAULTS
    runs = _submit_runs(version, service_id, fee_user_type, d["fee_terminal_id"],
                        d["fee_terminal_type"], d["tp_pid"], msg_src, d["fee_type"],
                        d["fee_code"], d["valid_time"], d["at_time"], src_id,
                        d["dest_terminal_type"], d["link_id"])
    return _submit_body(runs, _terminal_width(version), ZERO_MSG_ID, pk_total, pk_number,
                        registered_delivery, msg_level, tp_udhi, msg_fmt, (destination,),
                        content)


def _submit_body(runs: tuple[bytes, bytes, bytes, bytes], width: int, msg_id: MsgId,
                 pk_total: int, pk_number: int, registered_delivery: int, msg_level: int,
                 tp_udhi: int, msg_fmt: int, dests: tuple, content: bytes) -> bytes:
    head, middle, dest_type, tail = runs
    if not 1 <= len(dests) <= MAX_DESTINATIONS:
        raise InvalidField(f"DestUsr_tl is {len(dests)}, must be 1..{MAX_DESTINATIONS}")
    try:  # the one-octet fields of every part in two packs; one out of range is named below
        flags = _SUBMIT_FLAGS.pack(pk_total, pk_number, registered_delivery, msg_level)
        form = _SUBMIT_FORM.pack(tp_udhi, msg_fmt, len(dests))
    except struct.error:
        for value, name in ((pk_total, "Pk_total"), (pk_number, "Pk_number"),
                            (registered_delivery, "Registered_Delivery"),
                            (msg_level, "Msg_level"), (tp_udhi, "TP_udhi"),
                            (msg_fmt, "Msg_Fmt")):
            u8(value, name)  # raises the field's own InvalidField
        raise InvalidField("a one-octet SUBMIT field is out of range") from None
    if len(dests) == 1:
        to = digits(dests[0], width, "Dest_terminal_Id", allow_empty=False)
    else:
        to = b"".join([digits(d, width, "Dest_terminal_Id", allow_empty=False) for d in dests])
    return b"".join((_ZERO_MSG_ID if msg_id is ZERO_MSG_ID else msg_id.to_bytes(), flags,
                     head, form[:2], middle, form[2:], to, dest_type, _content(content), tail))


def _encode_submit_resp(p: SubmitResp, version: int) -> bytes:
    return p.msg_id.to_bytes() + _result(p.result, version, "Result")


def encode_report(report: Report, version: int = V30) -> bytes:
    """The status report as the octets of a DELIVER's Msg_Content (60 on 2.0, 71 on 3.0)."""
    return b"".join((
        report.msg_id.to_bytes(), fixed(report.stat, 7, "Stat"),
        fixed(report.submit_time, 10, "Submit_time"), fixed(report.done_time, 10, "Done_time"),
        digits(report.dest_terminal_id, _terminal_width(version), "Dest_terminal_Id"),
        u32(report.smsc_sequence, "SMSC_sequence")))


def _encode_deliver(p: Deliver, version: int) -> bytes:
    width = _terminal_width(version)
    _only_v30(version, src_terminal_type=p.src_terminal_type, link_id=p.link_id)
    if p.report is not None and p.content:
        raise InvalidField("a DELIVER carries either an MO's content or a report, not both")
    content = encode_report(p.report, version) if p.report is not None else p.content
    parts = [
        p.msg_id.to_bytes(), digits(p.dest_id, 21, "Dest_Id"),
        fixed(p.service_id, 10, "Service_Id"), u8(p.tp_pid, "TP_pid"),
        u8(p.tp_udhi, "TP_udhi"), u8(p.msg_fmt, "Msg_Fmt"),
        digits(p.src_terminal_id, width, "Src_terminal_Id"),
    ]
    if version == V30:
        parts.append(u8(p.src_terminal_type, "Src_terminal_type"))
    parts += [u8(p.registered_delivery, "Registered_Delivery"), _content(content),
              fixed(p.link_id, 20, "LinkID") if version == V30 else _ZERO_RESERVE]
    return b"".join(parts)


def _encode_deliver_resp(p: DeliverResp, version: int) -> bytes:
    return p.msg_id.to_bytes() + _result(p.result, version, "Result")


def _encode_query(p: Query, version: int) -> bytes:
    return (fixed(p.time, 8, "Time") + u8(p.query_type, "Query_Type")
            + fixed(p.query_code, 10, "Query_Code") + _ZERO_RESERVE)


def _encode_query_resp(p: QueryResp, version: int) -> bytes:
    if len(p.counters) != 8:
        raise InvalidField("QUERY_RESP has 8 counters")
    return (fixed(p.time, 8, "Time") + u8(p.query_type, "Query_Type")
            + fixed(p.query_code, 10, "Query_Code")
            + b"".join(u32(c, "counter") for c in p.counters))


_ENCODERS = {
    Connect: _encode_connect, ConnectResp: _encode_connect_resp,
    Submit: _encode_submit, SubmitResp: _encode_submit_resp,
    Deliver: _encode_deliver, DeliverResp: _encode_deliver_resp,
    Query: _encode_query, QueryResp: _encode_query_resp,
    ActiveTest: lambda p, v: b"", ActiveTestResp: lambda p, v: u8(p.reserved, "Reserved"),
    Terminate: lambda p, v: b"", TerminateResp: lambda p, v: b"",
}


#: A whole DELIVER_RESP: header, Msg_Id, Result.
_DELIVER_RESP_FRAME = {version: struct.Struct(">LLLQ" + layout.format[-1])
                       for version, layout in _MSG_ID_RESULT.items()}


def encode_deliver_resp(msg_id: MsgId, result: int, sequence: int, version: int) -> bytes:
    """``encode(DeliverResp(msg_id, result), sequence, version)``, in one ``struct`` pack: the
    answer to every status report (a value out of range takes ``encode``'s checks)."""
    layout = _DELIVER_RESP_FRAME.get(version)
    if layout is not None:
        try:
            return layout.pack(layout.size, DELIVER_RESP, sequence, msg_id.to_int(), result)
        except struct.error:
            pass
    return encode(DeliverResp(msg_id, result), sequence, version)


def encode(pdu, sequence: int, version: int = V30) -> bytes:
    """One PDU as bytes with its header. Raises InvalidField/FieldTooLong/InvalidAddress."""
    _terminal_width(version)
    return encode_frame(pdu, u32(sequence, "Sequence_Id"), _ENCODERS, "CMPP", version)


# ---- decoding ----------------------------------------------------------------

def _read_msg_id(r: Reader) -> MsgId:
    return MsgId.from_int(int.from_bytes(r.take(8), "big"))


def _skip_reserve(r: Reader) -> str:
    """2.0's Reserve (8) sits where 3.0 has LinkID: read past it, report no LinkID."""
    r.take(8)
    return ""


def _read_result(r: Reader, version: int) -> int:
    return r.u32() if version == V30 else r.u8()


def _decode_connect(r: Reader, version: int) -> Connect:
    return Connect(r.text(6), r.take(16), r.u8(), r.u32())


def _decode_connect_resp(r: Reader, version: int) -> ConnectResp:
    return ConnectResp(_read_result(r, version), r.take(16), r.u8())


def _decode_submit(r: Reader, version: int) -> Submit:
    width = 32 if version == V30 else 21
    msg_id = _read_msg_id(r)
    pk_total, pk_number, registered, level = r.u8(), r.u8(), r.u8(), r.u8()
    service_id, fee_user_type, fee_terminal = r.text(10), r.u8(), r.text(width)
    fee_terminal_type = r.u8() if version == V30 else 0
    tp_pid, tp_udhi, msg_fmt = r.u8(), r.u8(), r.u8()
    msg_src, fee_type, fee_code = r.text(6), r.text(2), r.text(6)
    valid_time, at_time, src_id = r.text(17), r.text(17), r.text(21)
    count = r.u8()
    dests = tuple(r.text(width) for _ in range(count))
    dest_type = r.u8() if version == V30 else 0
    content = r.take(r.u8())
    link_id = r.text(20) if version == V30 else _skip_reserve(r)
    return Submit(dests, content, src_id=src_id, msg_src=msg_src, service_id=service_id,
                  msg_fmt=msg_fmt, tp_udhi=tp_udhi, tp_pid=tp_pid, pk_total=pk_total,
                  pk_number=pk_number, registered_delivery=registered, msg_level=level,
                  fee_user_type=fee_user_type, fee_terminal_id=fee_terminal,
                  fee_terminal_type=fee_terminal_type, fee_type=fee_type, fee_code=fee_code,
                  valid_time=valid_time, at_time=at_time, dest_terminal_type=dest_type,
                  link_id=link_id, msg_id=msg_id)


def _decode_submit_resp(r: Reader, version: int) -> SubmitResp:
    msg_id, result = r.fields(_MSG_ID_RESULT[version])  # every message's answer: one unpack
    return SubmitResp(MsgId.from_int(msg_id), result)


#: Status report (Msg_Content): Msg_Id, Stat, Submit_time, Done_time, Dest_terminal_Id, SMSC_sequence.
_REPORT = {V30: struct.Struct(">Q7s10s10s32sL"), V20: struct.Struct(">Q7s10s10s21sL")}
#: DELIVER up to Msg_Content: Msg_Id, Dest_Id, Service_Id, TP_pid, TP_udhi, Msg_Fmt,
#: Src_terminal_Id, [Src_terminal_type (3.0)], Registered_Delivery, Msg_Length.
_DELIVER_HEAD = {V30: struct.Struct(">Q21s10s3B32s3B"), V20: struct.Struct(">Q21s10s3B21s2B")}


def decode_report(content: bytes, version: int = V30) -> Report:
    """A status report from a DELIVER's Msg_Content; raises InvalidField when it is not one."""
    layout = _REPORT[V30 if version == V30 else V20]
    if len(content) != layout.size:
        raise InvalidField(f"status report: {len(content)} octets, not {layout.size}")
    msg_id, stat, submit_time, done_time, dest, smsc_sequence = layout.unpack(content)
    return Report(MsgId.from_int(msg_id), cstr(stat), cstr(submit_time), cstr(done_time),
                  cstr(dest), smsc_sequence)


def _decode_deliver(r: Reader, version: int) -> Deliver:
    if version == V30:
        (msg_id, dest_id, service_id, tp_pid, tp_udhi, msg_fmt, src, src_type, registered,
         length) = r.fields(_DELIVER_HEAD[V30])
    else:
        (msg_id, dest_id, service_id, tp_pid, tp_udhi, msg_fmt, src, registered,
         length) = r.fields(_DELIVER_HEAD[V20])
        src_type = 0
    content = r.take(length)
    link_id = r.text(20) if version == V30 else _skip_reserve(r)
    report = None
    if registered == 1:
        report, content = decode_report(content, version), b""
    elif registered != 0:
        raise InvalidField(f"Registered_Delivery {registered} is neither 0 nor 1")
    return Deliver(MsgId.from_int(msg_id), cstr(dest_id), cstr(src), content=content,
                   report=report, service_id=cstr(service_id), tp_pid=tp_pid, tp_udhi=tp_udhi,
                   msg_fmt=msg_fmt, src_terminal_type=src_type, link_id=link_id)


def _decode_deliver_resp(r: Reader, version: int) -> DeliverResp:
    msg_id, result = r.fields(_MSG_ID_RESULT[version])
    return DeliverResp(MsgId.from_int(msg_id), result)


def _decode_query(r: Reader, version: int) -> Query:
    query = Query(r.text(8), r.u8(), r.text(10))
    r.take(8)
    return query


def _decode_query_resp(r: Reader, version: int) -> QueryResp:
    return QueryResp(r.text(8), r.u8(), r.text(10), tuple(r.u32() for _ in range(8)))


def _decode_active_test_resp(r: Reader, version: int) -> ActiveTestResp:
    # The one-octet Reserved is often left out (pycmpp does): accept both.
    return ActiveTestResp(r.u8() if r.remaining else 0)


_DECODERS = {
    CONNECT: ("CONNECT", _decode_connect), CONNECT_RESP: ("CONNECT_RESP", _decode_connect_resp),
    SUBMIT: ("SUBMIT", _decode_submit), SUBMIT_RESP: ("SUBMIT_RESP", _decode_submit_resp),
    DELIVER: ("DELIVER", _decode_deliver), DELIVER_RESP: ("DELIVER_RESP", _decode_deliver_resp),
    QUERY: ("QUERY", _decode_query), QUERY_RESP: ("QUERY_RESP", _decode_query_resp),
    ACTIVE_TEST: ("ACTIVE_TEST", lambda r, v: ActiveTest()),
    ACTIVE_TEST_RESP: ("ACTIVE_TEST_RESP", _decode_active_test_resp),
    TERMINATE: ("TERMINATE", lambda r, v: Terminate()),
    TERMINATE_RESP: ("TERMINATE_RESP", lambda r, v: TerminateResp()),
}


def command_name(command_id: int) -> str | None:
    return _command_name(_DECODERS, command_id)


def header(raw: bytes) -> tuple[int, int, int]:
    """(Total_Length, Command_Id, Sequence_Id) of a frame of at least 12 octets."""
    return header12(raw, "CMPP")


def decode(raw: bytes, version: int = V30) -> Frame:
    """One framed PDU (as the splitter gives it) into a ``Frame``.

    Raises MalformedPdu for an unknown command or a body that does not match the
    layout of ``version``; FramingError when ``raw`` is not one whole frame.
    """
    _terminal_width(version)
    return _decode(raw, version)


def decoder(version: int) -> Callable[[bytes], Frame]:
    """``decode`` for one connection: its version is checked here, once, not per frame."""
    _terminal_width(version)
    return functools.partial(_decode, version=version)


def _decode(raw: bytes, version: int) -> Frame:
    length, command_id, sequence = header(raw)
    return decode_frame(raw, length, command_id, sequence, HEADER_LENGTH, _DECODERS, version)


def frame_splitter() -> _Splitter:
    """A splitter for a CMPP byte stream (12-octet header, at most MAX_LENGTH)."""
    return _Splitter(HEADER_LENGTH, MAX_LENGTH)
