"""SMGP 3.0 (China Telecom's SMGW) bytes <-> PDUs, as frozen dataclasses.

Pure functions and the shared frame splitter, no I/O. Layouts are the SMGP 3.0
specification's (section 6): a 12-octet header (PacketLength, RequestID,
SequenceID), fixed fields, then in Submit and Deliver optional fields as TLVs
(Tag u16, Length u16, Value). The TLVs every message may carry live in one
``Options`` value, written once for both; unknown tags are kept in
``Options.other`` so a PDU round-trips whole.

The 10-octet MsgID is BCD: the SMGW code (6 digits), MMDDHHMM (8) and a
sequence (6). ``MsgId`` keeps the raw octets (some gateways put non-BCD octets
there, which must still match a receipt) and its canonical string is their hex
(for a BCD id, the 20 digits themselves), as SMSGate prints it. A status report
is a Deliver with IsReport = 1 whose MsgContent is the fixed "id:..." layout
(``Report``), with the MsgID as 10 raw octets after "id:".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
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
    u16,
    u32,
)
from sms.carrier.binary_pdu import FrameSplitter as _Splitter
from sms.carrier.binary_pdu import command_name as _command_name

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

VERSION = 0x30
HEADER_LENGTH = 12
MAX_LENGTH = 8 * 1024
MAX_DESTINATIONS = 100
MAX_CONTENT = 255

LOGIN = 0x00000001
LOGIN_RESP = 0x80000001
SUBMIT = 0x00000002
SUBMIT_RESP = 0x80000002
DELIVER = 0x00000003
DELIVER_RESP = 0x80000003
ACTIVE_TEST = 0x00000004
ACTIVE_TEST_RESP = 0x80000004
EXIT = 0x00000006
EXIT_RESP = 0x80000006

LOGIN_MODE_SEND = 0
LOGIN_MODE_RECEIVE = 1
LOGIN_MODE_TRANSMIT = 2  # send and receive on one connection

MSG_TYPE_MO = 0
MSG_TYPE_MT = 6
MSG_TYPE_P2P = 7

MSG_FORMAT_ASCII = 0
MSG_FORMAT_BINARY = 4
MSG_FORMAT_UCS2 = 8
MSG_FORMAT_GBK = 15

# Status codes (SMGP 3.0 section 6.3, error codes).
STATUS_OK = 0
STATUS_SYSTEM_BUSY = 1
STATUS_TOO_MANY_CONNECTIONS = 2
STATUS_BAD_STRUCTURE = 10
STATUS_BAD_COMMAND = 11
STATUS_DUPLICATE_SEQUENCE = 12
STATUS_BAD_IP = 20
STATUS_BAD_AUTH = 21
STATUS_VERSION_TOO_HIGH = 22
STATUS_BAD_MSG_TYPE = 30
STATUS_BAD_MSG_FORMAT = 34
STATUS_BAD_LENGTH = 36
STATUS_BAD_SRC_TERM = 46
STATUS_BAD_DEST_TERM = 47
STATUS_BAD_CHARGE_TERM = 48

_ZERO_RESERVE = bytes(8)


def is_flow_control(status: int) -> bool:
    """True for "system busy", the SMGW's way of saying slow down: retry, do not fail."""
    return status == STATUS_SYSTEM_BUSY


# ---- MsgID -------------------------------------------------------------------

def _bcd(digits_: str) -> bytes:
    return bytes.fromhex(digits_)


@dataclass(frozen=True)
class MsgId:
    """The SMGW's 10-octet message id; any 10 octets are kept, BCD ones also have parts."""

    raw: bytes = bytes(10)

    def __post_init__(self):
        if len(self.raw) != 10:
            raise InvalidField(f"an SMGP MsgID is 10 octets, not {len(self.raw)}")

    @classmethod
    def from_parts(cls, gateway: int, month: int, day: int, hour: int, minute: int,
                   sequence: int) -> MsgId:
        for name, value, top in (("gateway", gateway, 999999), ("month", month, 12),
                                 ("day", day, 31), ("hour", hour, 23), ("minute", minute, 59),
                                 ("sequence", sequence, 999999)):
            if not isinstance(value, int) or not 0 <= value <= top:
                raise InvalidField(f"MsgID {name} = {value!r} is outside 0..{top}")
        return cls(_bcd(f"{gateway:06d}{month:02d}{day:02d}{hour:02d}{minute:02d}"
                        f"{sequence:06d}"))

    @property
    def parts(self) -> tuple[int, int, int, int, int, int]:
        """(gateway, month, day, hour, minute, sequence); InvalidField when not BCD."""
        text = self.raw.hex()
        if not text.isdigit():
            raise InvalidField("this MsgID is not BCD")
        return (int(text[:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]),
                int(text[12:14]), int(text[14:]))

    def __str__(self) -> str:
        return self.raw.hex()

    @classmethod
    def parse(cls, text: str) -> MsgId:
        if len(text) != 20:
            raise InvalidField("an SMGP MsgID string is 20 hex digits")
        try:
            return cls(bytes.fromhex(text))
        except ValueError:
            raise InvalidField("an SMGP MsgID string is 20 hex digits") from None


ZERO_MSG_ID = MsgId()


# ---- optional parameters (TLVs) -----------------------------------------------

# tag -> (attribute, kind, size): kind "int" is a one-octet integer, "str" an octet
# string of at most ``size`` octets.
_TLVS = {
    0x0001: ("tp_pid", "int", 1), 0x0002: ("tp_udhi", "int", 1),
    0x0003: ("link_id", "str", 20), 0x0004: ("charge_user_type", "int", 1),
    0x0005: ("charge_term_type", "int", 1), 0x0006: ("charge_term_pseudo", "str", 32),
    0x0007: ("dest_term_type", "int", 1), 0x0008: ("dest_term_pseudo", "str", 32),
    0x0009: ("pk_total", "int", 1), 0x000A: ("pk_number", "int", 1),
    0x000B: ("submit_msg_type", "int", 1), 0x000C: ("sp_deal_result", "int", 1),
    0x000D: ("src_term_type", "int", 1), 0x000E: ("src_term_pseudo", "str", 32),
    0x000F: ("nodes_count", "int", 1), 0x0010: ("msg_src", "str", 8),
    0x0011: ("src_type", "int", 1), 0x0012: ("mservice_id", "str", 21),
}
_TAG_OF = {name: tag for tag, (name, _kind, _size) in _TLVS.items()}


@dataclass(frozen=True)
class Options:
    """The TLVs of a Submit or Deliver; None means absent (not sent)."""

    tp_pid: int | None = None
    tp_udhi: int | None = None
    link_id: str | None = None
    charge_user_type: int | None = None
    charge_term_type: int | None = None
    charge_term_pseudo: str | None = None
    dest_term_type: int | None = None
    dest_term_pseudo: str | None = None
    pk_total: int | None = None
    pk_number: int | None = None
    submit_msg_type: int | None = None
    sp_deal_result: int | None = None
    src_term_type: int | None = None
    src_term_pseudo: str | None = None
    nodes_count: int | None = None
    msg_src: str | None = None
    src_type: int | None = None
    mservice_id: str | None = None
    other: tuple[tuple[int, bytes], ...] = ()  # unknown tags, kept in wire order


NO_OPTIONS = Options()


def encode_tlvs(options: Options) -> bytes:
    """The TLVs in ascending tag order, then the unknown ones as they came."""
    out = []
    for tag, (name, kind, size) in sorted(_TLVS.items()):
        value = getattr(options, name)
        if value is None:
            continue
        raw = u8(value, name) if kind == "int" else fixed(value, size, name).rstrip(b"\0")
        out.append(u16(tag, "Tag") + u16(len(raw), "Length") + raw)
    for tag, raw in options.other:
        out.append(u16(tag, "Tag") + u16(len(raw), "Length") + bytes(raw))
    return b"".join(out)


def decode_tlvs(r: Reader) -> Options:
    values: dict = {}
    other = []
    while r.remaining:
        tag, length = r.u16(), r.u16()
        raw = r.take(length)
        known = _TLVS.get(tag)
        if known is None:
            other.append((tag, raw))
            continue
        name, kind, size = known
        if name in values:
            raise InvalidField(f"TLV {name} appears twice")
        if kind == "int":
            if length != 1:
                raise InvalidField(f"TLV {name} has length {length}, expected 1")
            values[name] = raw[0]
        else:
            if length > size:
                raise InvalidField(f"TLV {name} has length {length}, at most {size}")
            nul = raw.find(b"\0")
            values[name] = (raw if nul < 0 else raw[:nul]).decode("latin-1")
    return Options(**values, other=tuple(other))


# ---- PDUs --------------------------------------------------------------------

@dataclass(frozen=True)
class Login:
    """Login: build one with ``make_login`` to get AuthenticatorClient right."""

    COMMAND_ID: ClassVar[int] = LOGIN
    client_id: str  # 8 octets
    authenticator: bytes  # 16
    login_mode: int
    timestamp: int  # MMDDHHMMSS
    version: int = VERSION


@dataclass(frozen=True)
class LoginResp:
    COMMAND_ID: ClassVar[int] = LOGIN_RESP
    status: int
    authenticator: bytes  # AuthenticatorServer
    version: int = VERSION


@dataclass(frozen=True)
class Submit:
    COMMAND_ID: ClassVar[int] = SUBMIT
    dest_term_ids: tuple[str, ...]
    content: bytes
    src_term_id: str = ""  # the SP's service number plus extension
    charge_term_id: str = ""
    msg_format: int = MSG_FORMAT_ASCII
    msg_type: int = MSG_TYPE_MT
    need_report: int = 0
    priority: int = 0
    service_id: str = ""
    fee_type: str = "00"
    fee_code: str = "000000"
    fixed_fee: str = "000000"
    valid_time: str = ""
    at_time: str = ""
    options: Options = NO_OPTIONS


@dataclass(frozen=True)
class SubmitResp:
    COMMAND_ID: ClassVar[int] = SUBMIT_RESP
    msg_id: MsgId
    status: int


@dataclass(frozen=True)
class Report:
    """The status report inside a Deliver's MsgContent (IsReport = 1)."""

    msg_id: MsgId
    stat: str  # DELIVRD, EXPIRED, UNDELIV, ...
    submit_time: str  # YYMMDDHHMM
    done_time: str
    err: str = "000"
    sub: str = "001"
    dlvrd: str = "001"
    text: bytes = b""  # up to 20 octets of the original message


@dataclass(frozen=True)
class Deliver:
    """Deliver: an MO (``content``) or a status report (``report``)."""

    COMMAND_ID: ClassVar[int] = DELIVER
    msg_id: MsgId
    src_term_id: str
    dest_term_id: str
    content: bytes = b""
    report: Report | None = None
    msg_format: int = MSG_FORMAT_ASCII
    recv_time: str = ""  # YYYYMMDDHHMMSS
    options: Options = NO_OPTIONS

    @property
    def is_report(self) -> int:
        return 1 if self.report is not None else 0


@dataclass(frozen=True)
class DeliverResp:
    COMMAND_ID: ClassVar[int] = DELIVER_RESP
    msg_id: MsgId
    status: int = STATUS_OK


@dataclass(frozen=True)
class ActiveTest:
    COMMAND_ID: ClassVar[int] = ACTIVE_TEST


@dataclass(frozen=True)
class ActiveTestResp:
    COMMAND_ID: ClassVar[int] = ACTIVE_TEST_RESP


@dataclass(frozen=True)
class Exit:
    COMMAND_ID: ClassVar[int] = EXIT


@dataclass(frozen=True)
class ExitResp:
    COMMAND_ID: ClassVar[int] = EXIT_RESP


# ---- login -------------------------------------------------------------------

def authenticator_client(client_id: str, secret: str | bytes, timestamp_: int) -> bytes:
    """AuthenticatorClient = MD5(ClientID + 7 zero octets + secret + "MMDDHHMMSS")."""
    return md5(fixed(client_id, 8, "ClientID").rstrip(b"\0"), bytes(7), secret_bytes(secret),
               timestamp_text(timestamp_))


def authenticator_server(status: int, client_auth: bytes, secret: str | bytes) -> bytes:
    """AuthenticatorServer = MD5(Status (u32) + AuthenticatorClient + secret)."""
    return md5(u32(status, "Status"), client_auth, secret_bytes(secret))


def make_login(client_id: str, secret: str | bytes, moment: datetime,
               login_mode: int = LOGIN_MODE_TRANSMIT) -> Login:
    ts = timestamp(moment)
    return Login(client_id, authenticator_client(client_id, secret, ts), login_mode, ts)


def check_login(login: Login, secret: str | bytes) -> bool:
    try:
        return authenticator_client(login.client_id, secret, login.timestamp) == \
            login.authenticator
    except InvalidField:
        return False


def verify_login_resp(resp: LoginResp, client_auth: bytes, secret: str | bytes) -> bool:
    return authenticator_server(resp.status, client_auth, secret) == resp.authenticator


# ---- encoding ----------------------------------------------------------------

def _content(content: bytes) -> bytes:
    if len(content) > MAX_CONTENT:
        raise FieldTooLong(f"MsgContent is {len(content)} octets, at most {MAX_CONTENT}")
    return u8(len(content), "MsgLength") + bytes(content)


def _encode_login(p: Login) -> bytes:
    if len(p.authenticator) != 16:
        raise InvalidField("AuthenticatorClient is 16 octets")
    return (fixed(p.client_id, 8, "ClientID") + p.authenticator + u8(p.login_mode, "LoginMode")
            + u32(p.timestamp, "TimeStamp") + u8(p.version, "ClientVersion"))


def _encode_login_resp(p: LoginResp) -> bytes:
    if len(p.authenticator) != 16:
        raise InvalidField("AuthenticatorServer is 16 octets")
    return u32(p.status, "Status") + p.authenticator + u8(p.version, "ServerVersion")


def _encode_submit(p: Submit) -> bytes:
    dests = tuple(p.dest_term_ids)
    if not 1 <= len(dests) <= MAX_DESTINATIONS:
        raise InvalidField(f"DestTermIDCount is {len(dests)}, must be 1..{MAX_DESTINATIONS}")
    return b"".join([
        u8(p.msg_type, "MsgType"), u8(p.need_report, "NeedReport"), u8(p.priority, "Priority"),
        fixed(p.service_id, 10, "ServiceID"), fixed(p.fee_type, 2, "FeeType"),
        fixed(p.fee_code, 6, "FeeCode"), fixed(p.fixed_fee, 6, "FixedFee"),
        u8(p.msg_format, "MsgFormat"), fixed(p.valid_time, 17, "ValidTime"),
        fixed(p.at_time, 17, "AtTime"), digits(p.src_term_id, 21, "SrcTermID"),
        digits(p.charge_term_id, 21, "ChargeTermID"), u8(len(dests), "DestTermIDCount"),
        *(digits(d, 21, "DestTermID", allow_empty=False) for d in dests),
        _content(p.content), _ZERO_RESERVE, encode_tlvs(p.options)])


def encode_report(report: Report) -> bytes:
    """The report's MsgContent: "id:" + 10 raw octets + " sub:001 dlvrd:001 submit date:..."."""
    if len(report.text) > 20:
        raise FieldTooLong(f"report text is {len(report.text)} octets, at most 20")
    return b"".join((
        b"id:", report.msg_id.raw, b" sub:", fixed(report.sub, 3, "sub"),
        b" dlvrd:", fixed(report.dlvrd, 3, "dlvrd"),
        b" submit date:", fixed(report.submit_time, 10, "submit date"),
        b" done date:", fixed(report.done_time, 10, "done date"),
        b" stat:", fixed(report.stat, 7, "stat"), b" err:", fixed(report.err, 3, "err"),
        b" text:", report.text + b"\0" * (20 - len(report.text))))


def _encode_deliver(p: Deliver) -> bytes:
    if p.report is not None and p.content:
        raise InvalidField("a Deliver carries either an MO's content or a report, not both")
    content = encode_report(p.report) if p.report is not None else p.content
    return b"".join((
        p.msg_id.raw, u8(p.is_report, "IsReport"), u8(p.msg_format, "MsgFormat"),
        fixed(p.recv_time, 14, "RecvTime"), digits(p.src_term_id, 21, "SrcTermID"),
        digits(p.dest_term_id, 21, "DestTermID"), _content(content), _ZERO_RESERVE,
        encode_tlvs(p.options)))


_ENCODERS = {
    Login: _encode_login, LoginResp: _encode_login_resp, Submit: _encode_submit,
    SubmitResp: lambda p: p.msg_id.raw + u32(p.status, "Status"),
    Deliver: _encode_deliver,
    DeliverResp: lambda p: p.msg_id.raw + u32(p.status, "Status"),
    ActiveTest: lambda p: b"", ActiveTestResp: lambda p: b"",
    Exit: lambda p: b"", ExitResp: lambda p: b"",
}


def encode(pdu, sequence: int) -> bytes:
    """One PDU as bytes with its header. Raises InvalidField/FieldTooLong/InvalidAddress."""
    return encode_frame(pdu, u32(sequence, "SequenceID"), _ENCODERS, "SMGP")


# ---- decoding ----------------------------------------------------------------

def _decode_submit(r: Reader) -> Submit:
    msg_type, need_report, priority = r.u8(), r.u8(), r.u8()
    service_id, fee_type, fee_code, fixed_fee = r.text(10), r.text(2), r.text(6), r.text(6)
    msg_format, valid_time, at_time = r.u8(), r.text(17), r.text(17)
    src, charge = r.text(21), r.text(21)
    dests = tuple(r.text(21) for _ in range(r.u8()))
    content = r.take(r.u8())
    r.take(8)
    return Submit(dests, content, src_term_id=src, charge_term_id=charge,
                  msg_format=msg_format, msg_type=msg_type, need_report=need_report,
                  priority=priority, service_id=service_id, fee_type=fee_type,
                  fee_code=fee_code, fixed_fee=fixed_fee, valid_time=valid_time,
                  at_time=at_time, options=decode_tlvs(r))


# After "id:" and the 10 raw MsgID octets, the rest is text whose separators vary between
# SMGWs (a space before "sub:" or none, "submit date" or "submit_date", "text:" or "txt:").
_REPORT_REST = re.compile(
    rb"\s*sub:(.{3})\s*dlvrd:(.{3})\s*submit[ _]date:(.{10})\s*done[ _]date:(.{10})"
    rb"\s*stat:(.{7})\s*err:(.{3})(?:\s*te?xt:(.{0,20}))?", re.DOTALL | re.IGNORECASE)


def decode_report(content: bytes) -> Report:
    """A report from MsgContent: "id:", the 10 raw MsgID octets, then the labelled fields
    (read by label, as SMGWs differ in the separators); raises InvalidField otherwise."""
    if len(content) < 13 or content[:3].lower() != b"id:":
        raise InvalidField("a status report starts id: and the 10-octet MsgID")
    match = _REPORT_REST.fullmatch(content, 13)
    if match is None:
        raise InvalidField("the status report's fields do not match the SMGP layout")

    def s(raw: bytes) -> str:
        return raw.decode("latin-1").strip("\0 ")

    sub, dlvrd, submit_time, done_time, stat, err, text = match.groups()
    return Report(MsgId(content[3:13]), s(stat), s(submit_time), s(done_time), err=s(err),
                  sub=s(sub), dlvrd=s(dlvrd), text=(text or b"").rstrip(b"\0"))


def _decode_deliver(r: Reader) -> Deliver:
    msg_id, is_report, msg_format = MsgId(r.take(10)), r.u8(), r.u8()
    recv_time, src, dest = r.text(14), r.text(21), r.text(21)
    content = r.take(r.u8())
    r.take(8)
    options = decode_tlvs(r)
    report = None
    if is_report == 1:
        report, content = decode_report(content), b""
    elif is_report != 0:
        raise InvalidField(f"IsReport {is_report} is neither 0 nor 1")
    return Deliver(msg_id, src, dest, content=content, report=report, msg_format=msg_format,
                   recv_time=recv_time, options=options)


_DECODERS = {
    LOGIN: ("Login", lambda r: Login(r.text(8), r.take(16), r.u8(), r.u32(), r.u8())),
    LOGIN_RESP: ("Login_Resp", lambda r: LoginResp(r.u32(), r.take(16), r.u8())),
    SUBMIT: ("Submit", _decode_submit),
    SUBMIT_RESP: ("Submit_Resp", lambda r: SubmitResp(MsgId(r.take(10)), r.u32())),
    DELIVER: ("Deliver", _decode_deliver),
    DELIVER_RESP: ("Deliver_Resp", lambda r: DeliverResp(MsgId(r.take(10)), r.u32())),
    ACTIVE_TEST: ("Active_Test", lambda r: ActiveTest()),
    ACTIVE_TEST_RESP: ("Active_Test_Resp", lambda r: ActiveTestResp()),
    EXIT: ("Exit", lambda r: Exit()),
    EXIT_RESP: ("Exit_Resp", lambda r: ExitResp()),
}


def command_name(command_id: int) -> str | None:
    return _command_name(_DECODERS, command_id)


def header(raw: bytes) -> tuple[int, int, int]:
    """(PacketLength, RequestID, SequenceID) of a frame of at least 12 octets."""
    return header12(raw, "SMGP")


def decode(raw: bytes) -> Frame:
    """One framed PDU into a ``Frame``; MalformedPdu for an unknown or inconsistent one."""
    length, command_id, sequence = header(raw)
    return decode_frame(raw, length, command_id, sequence, HEADER_LENGTH, _DECODERS)


def frame_splitter() -> _Splitter:
    return _Splitter(HEADER_LENGTH, MAX_LENGTH)

