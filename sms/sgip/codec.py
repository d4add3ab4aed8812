"""SGIP 1.2 (China Unicom's SMG) bytes <-> PDUs, as frozen dataclasses.

Pure functions and the shared frame splitter, no I/O. Layouts are the SGIP 1.2
specification's (section 4): a 20-octet header (Message Length, Command ID and
a 12-octet sequence number), then fixed fields; every response is a Result
octet and 8 reserved octets.

What sets SGIP apart is the direction of its reports: the SMG opens its own
connection to the SP, binds with login type 2, and sends Deliver (MO) and
Report (status reports) there. A Report names the Submit it is about by the
Submit's 12-octet sequence number, so ``SgipSequence`` (node id, MMDDHHMMSS,
counter) is what receipts are matched on; its canonical string is
"node-MMDDHHMMSS-counter".
"""
from __future__ import annotations

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
    is_response,
    timestamp,
    u8,
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

HEADER_LENGTH = 20
MAX_LENGTH = 8 * 1024
MAX_DESTINATIONS = 100
MAX_CONTENT = 255

BIND = 0x00000001
BIND_RESP = 0x80000001
UNBIND = 0x00000002
UNBIND_RESP = 0x80000002
SUBMIT = 0x00000003
SUBMIT_RESP = 0x80000003
DELIVER = 0x00000004
DELIVER_RESP = 0x80000004
REPORT = 0x00000005
REPORT_RESP = 0x80000005

LOGIN_SP_TO_SMG = 1
LOGIN_SMG_TO_SP = 2

CODING_ASCII = 0
CODING_BINARY = 4
CODING_UCS2 = 8
CODING_GBK = 15

# Report State.
STATE_DELIVERED = 0
STATE_WAITING = 1
STATE_FAILED = 2

# Result codes (SGIP 1.2 appendix: error codes).
RESULT_OK = 0
RESULT_BAD_LOGIN = 1
RESULT_REPEATED_LOGIN = 2
RESULT_TOO_MANY_CONNECTIONS = 3
RESULT_BAD_LOGIN_TYPE = 4
RESULT_BAD_PARAMETER = 5
RESULT_BAD_MOBILE = 6
RESULT_BAD_MESSAGE_ID = 7
RESULT_BAD_LENGTH = 8
RESULT_BAD_SEQUENCE = 9
RESULT_BAD_GNS = 10
RESULT_NODE_BUSY = 11
RESULT_UNREACHABLE = 21
RESULT_QUEUE_FULL = 33

_RESERVE = bytes(8)


def is_flow_control(result: int) -> bool:
    """True for "node busy", SGIP's slow-down answer: a throttle to retry, not a failure."""
    return result == RESULT_NODE_BUSY


@dataclass(frozen=True)
class SgipSequence:
    """The 12-octet sequence number: source node id, MMDDHHMMSS, a counter (each u32)."""

    node_id: int
    time: int  # MMDDHHMMSS as an integer
    counter: int

    def to_bytes(self) -> bytes:
        return (u32(self.node_id, "node id") + u32(self.time, "time")
                + u32(self.counter, "counter"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> SgipSequence:
        if len(raw) != 12:
            raise InvalidField(f"an SGIP sequence number is 12 octets, not {len(raw)}")
        return cls(int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:8], "big"),
                   int.from_bytes(raw[8:], "big"))

    @classmethod
    def at(cls, node_id: int, moment: datetime, counter: int) -> SgipSequence:
        return cls(node_id, timestamp(moment), counter)

    def __str__(self) -> str:
        return f"{self.node_id}-{self.time:010d}-{self.counter}"

    @classmethod
    def parse(cls, text: str) -> SgipSequence:
        pieces = text.split("-")
        if len(pieces) != 3 or not all(p.isascii() and p.isdigit() for p in pieces):
            raise InvalidField("an SGIP sequence string is node-MMDDHHMMSS-counter")
        return cls(*(int(p) for p in pieces))


@dataclass(frozen=True)
class Bind:
    COMMAND_ID: ClassVar[int] = BIND
    login_type: int
    login_name: str
    login_password: str


@dataclass(frozen=True)
class Unbind:
    COMMAND_ID: ClassVar[int] = UNBIND


@dataclass(frozen=True)
class UnbindResp:
    COMMAND_ID: ClassVar[int] = UNBIND_RESP


@dataclass(frozen=True)
class Submit:
    COMMAND_ID: ClassVar[int] = SUBMIT
    user_numbers: tuple[str, ...]  # usually 86 + mobile
    content: bytes
    sp_number: str = ""  # the service number plus extension
    charge_number: str = "000000000000000000000"  # 21 zeros: the SP pays
    corp_id: str = ""
    service_type: str = ""
    fee_type: int = 0
    fee_value: str = "0"
    given_value: str = "0"
    agent_flag: int = 0
    morelateto_mt_flag: int = 2
    priority: int = 0
    expire_time: str = ""
    schedule_time: str = ""
    report_flag: int = 1  # 0 only on failure, 1 always, 2 none, 3 billing only
    tp_pid: int = 0
    tp_udhi: int = 0
    message_coding: int = CODING_ASCII
    message_type: int = 0


@dataclass(frozen=True)
class Deliver:
    """An MO the SMG sends over its own connection to the SP."""

    COMMAND_ID: ClassVar[int] = DELIVER
    user_number: str
    sp_number: str
    content: bytes
    tp_pid: int = 0
    tp_udhi: int = 0
    message_coding: int = CODING_ASCII


@dataclass(frozen=True)
class Report:
    """A status report about the Submit (report_type 0) with sequence ``submit_sequence``."""

    COMMAND_ID: ClassVar[int] = REPORT
    submit_sequence: SgipSequence
    user_number: str
    state: int  # STATE_DELIVERED, STATE_WAITING, STATE_FAILED
    error_code: int = 0
    report_type: int = 0


@dataclass(frozen=True)
class Response:
    """Bind_Resp, Submit_Resp, Deliver_Resp and Report_Resp: a Result and 8 reserved octets."""

    command_id: int
    result: int = RESULT_OK

    @property
    def COMMAND_ID(self) -> int:
        return self.command_id


def bind_resp(result: int = RESULT_OK) -> Response:
    return Response(BIND_RESP, result)


def submit_resp(result: int = RESULT_OK) -> Response:
    return Response(SUBMIT_RESP, result)


def deliver_resp(result: int = RESULT_OK) -> Response:
    return Response(DELIVER_RESP, result)


def report_resp(result: int = RESULT_OK) -> Response:
    return Response(REPORT_RESP, result)


# ---- encoding ----------------------------------------------------------------

def _content(content: bytes) -> bytes:
    if len(content) > MAX_CONTENT:
        raise FieldTooLong(f"MessageContent is {len(content)} octets, at most {MAX_CONTENT}")
    return u32(len(content), "MessageLength") + bytes(content)


def _encode_submit(p: Submit) -> bytes:
    users = tuple(p.user_numbers)
    if not 1 <= len(users) <= MAX_DESTINATIONS:
        raise InvalidField(f"UserCount is {len(users)}, must be 1..{MAX_DESTINATIONS}")
    return b"".join([
        digits(p.sp_number, 21, "SPNumber"), digits(p.charge_number, 21, "ChargeNumber"),
        u8(len(users), "UserCount"),
        *(digits(u, 21, "UserNumber", allow_empty=False) for u in users),
        fixed(p.corp_id, 5, "CorpId"), fixed(p.service_type, 10, "ServiceType"),
        u8(p.fee_type, "FeeType"), fixed(p.fee_value, 6, "FeeValue"),
        fixed(p.given_value, 6, "GivenValue"), u8(p.agent_flag, "AgentFlag"),
        u8(p.morelateto_mt_flag, "MorelatetoMTFlag"), u8(p.priority, "Priority"),
        fixed(p.expire_time, 16, "ExpireTime"), fixed(p.schedule_time, 16, "ScheduleTime"),
        u8(p.report_flag, "ReportFlag"), u8(p.tp_pid, "TP_pid"), u8(p.tp_udhi, "TP_udhi"),
        u8(p.message_coding, "MessageCoding"), u8(p.message_type, "MessageType"),
        _content(p.content), _RESERVE])


_ENCODERS = {
    Bind: lambda p: (u8(p.login_type, "Login Type") + fixed(p.login_name, 16, "Login Name")
                     + fixed(p.login_password, 16, "Login Password") + _RESERVE),
    Unbind: lambda p: b"", UnbindResp: lambda p: b"",
    Submit: _encode_submit,
    Deliver: lambda p: (digits(p.user_number, 21, "UserNumber")
                        + digits(p.sp_number, 21, "SPNumber") + u8(p.tp_pid, "TP_pid")
                        + u8(p.tp_udhi, "TP_udhi") + u8(p.message_coding, "MessageCoding")
                        + _content(p.content) + _RESERVE),
    Report: lambda p: (p.submit_sequence.to_bytes() + u8(p.report_type, "ReportType")
                       + digits(p.user_number, 21, "UserNumber") + u8(p.state, "State")
                       + u8(p.error_code, "ErrorCode") + _RESERVE),
    Response: lambda p: u8(p.result, "Result") + _RESERVE,
}

_RESPONSE_IDS = (BIND_RESP, SUBMIT_RESP, DELIVER_RESP, REPORT_RESP)


def encode(pdu, sequence: SgipSequence) -> bytes:
    """One PDU as bytes with its header. Raises InvalidField/FieldTooLong/InvalidAddress."""
    if isinstance(pdu, Response) and pdu.command_id not in _RESPONSE_IDS:
        raise InvalidField(f"0x{pdu.command_id:08X} is not an SGIP response with a Result")
    return encode_frame(pdu, sequence.to_bytes(), _ENCODERS, "SGIP")


# ---- decoding ----------------------------------------------------------------

def _decode_submit(r: Reader) -> Submit:
    sp_number, charge_number = r.text(21), r.text(21)
    users = tuple(r.text(21) for _ in range(r.u8()))
    corp_id, service_type, fee_type = r.text(5), r.text(10), r.u8()
    fee_value, given_value = r.text(6), r.text(6)
    agent_flag, mt_flag, priority = r.u8(), r.u8(), r.u8()
    expire_time, schedule_time = r.text(16), r.text(16)
    report_flag, tp_pid, tp_udhi, coding, message_type = (r.u8(), r.u8(), r.u8(), r.u8(),
                                                          r.u8())
    content = r.take(r.u32())
    r.take(8)
    return Submit(users, content, sp_number=sp_number, charge_number=charge_number,
                  corp_id=corp_id, service_type=service_type, fee_type=fee_type,
                  fee_value=fee_value, given_value=given_value, agent_flag=agent_flag,
                  morelateto_mt_flag=mt_flag, priority=priority, expire_time=expire_time,
                  schedule_time=schedule_time, report_flag=report_flag, tp_pid=tp_pid,
                  tp_udhi=tp_udhi, message_coding=coding, message_type=message_type)


def _decode_deliver(r: Reader) -> Deliver:
    user, sp = r.text(21), r.text(21)
    tp_pid, tp_udhi, coding = r.u8(), r.u8(), r.u8()
    content = r.take(r.u32())
    r.take(8)
    return Deliver(user, sp, content, tp_pid=tp_pid, tp_udhi=tp_udhi, message_coding=coding)


def _decode_report(r: Reader) -> Report:
    sequence = SgipSequence.from_bytes(r.take(12))
    report_type, user, state, error = r.u8(), r.text(21), r.u8(), r.u8()
    r.take(8)
    return Report(sequence, user, state, error, report_type)


def _decode_bind(r: Reader) -> Bind:
    bind = Bind(r.u8(), r.text(16), r.text(16))
    r.take(8)
    return bind


def _response(command_id: int):
    def decode_response(r: Reader) -> Response:
        result = r.u8()
        r.take(8)
        return Response(command_id, result)
    return decode_response


_DECODERS = {
    BIND: ("Bind", _decode_bind), BIND_RESP: ("Bind_Resp", _response(BIND_RESP)),
    UNBIND: ("Unbind", lambda r: Unbind()), UNBIND_RESP: ("Unbind_Resp", lambda r: UnbindResp()),
    SUBMIT: ("Submit", _decode_submit), SUBMIT_RESP: ("Submit_Resp", _response(SUBMIT_RESP)),
    DELIVER: ("Deliver", _decode_deliver),
    DELIVER_RESP: ("Deliver_Resp", _response(DELIVER_RESP)),
    REPORT: ("Report", _decode_report), REPORT_RESP: ("Report_Resp", _response(REPORT_RESP)),
}


def command_name(command_id: int) -> str | None:
    return _command_name(_DECODERS, command_id)


def header(raw: bytes) -> tuple[int, int, SgipSequence]:
    """(Message Length, Command ID, sequence number) of a frame of at least 20 octets."""
    if len(raw) < HEADER_LENGTH:
        raise FramingError(f"an SGIP header is 20 octets, got {len(raw)}")
    return (int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:8], "big"),
            SgipSequence.from_bytes(raw[8:20]))


def decode(raw: bytes) -> Frame:
    """One framed PDU into a ``Frame``; MalformedPdu for an unknown or inconsistent one."""
    length, command_id, sequence = header(raw)
    return decode_frame(raw, length, command_id, sequence, HEADER_LENGTH, _DECODERS)


def frame_splitter() -> _Splitter:
    return _Splitter(HEADER_LENGTH, MAX_LENGTH)
