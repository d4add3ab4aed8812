"""SMPP 3.4 bytes <-> PDUs: framing on command_length, smpplib's PDU layer, typed errors.

Pure functions and a stateful frame splitter, no I/O. smpplib does the field
work (``make_pdu``/``generate``, ``parse_pdu``); this module adds what it lacks:
length sanity limits (a length < 16 or > 64 KiB cannot be resynchronised, so the
link must drop), C-string length validation (smpplib silently truncates), and
typed errors that carry the status a generic_nack should answer with.
"""
from __future__ import annotations

import struct

from smpplib import command_codes, consts, exceptions as _smpplib_errors
from smpplib.smpp import make_pdu

HEADER = struct.Struct(">LLLL")
MIN_LENGTH = 16
MAX_LENGTH = 64 * 1024

# Command statuses this package reacts to (SMPP 3.4 section 5.1.3).
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RINVDSTADR = 0x0B
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64

GENERIC_NACK = 0x80000000
RESPONSE_BIT = 0x80000000

#: Deliver-receipt message_state values (SMPP 3.4 section 5.2.28) by name.
MESSAGE_STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
                  6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}


class CodecError(Exception):
    """Base of the SMPP codec's errors."""


class FramingError(CodecError):
    """The command_length is outside sane limits: the stream cannot be resynchronised."""


class MalformedPdu(CodecError):
    """A frame with a sane length whose body cannot be decoded; answer with generic_nack.

    ``status`` is what the nack carries (ESME_RINVCMDID for an unknown command,
    ESME_RINVMSGLEN for a body that does not parse); ``sequence`` is the frame's.
    """

    def __init__(self, message: str, *, command_id: int, sequence: int, status: int):
        super().__init__(message)
        self.command_id, self.sequence, self.status = command_id, sequence, status


class EncodeError(CodecError, ValueError):
    """A request PDU cannot be built from its fields (say, a non-Latin-1 address).

    ``field`` names the field when known. Every error encoding raises is this or
    FieldTooLong, so that one bad part fails alone and never breaks a send loop.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class FieldTooLong(EncodeError):
    """A field does not fit its SMPP maximum; refusing beats smpplib's silent truncation."""


class _Seq:
    """The ``client`` object smpplib wants: it only asks for the sequence number."""

    __slots__ = ("sequence",)

    def __init__(self, sequence: int):
        self.sequence = sequence

    def next_sequence(self) -> int:
        return self.sequence


def command_name(command_id: int) -> str | None:
    """smpplib's name for a command id, or None when it is not an SMPP 3.4 command."""
    try:
        return command_codes.get_command_name(command_id)
    except _smpplib_errors.UnknownCommandError:
        return None


_CLASSES: dict[str, type] = {}


def _check_lengths(name: str, fields: dict) -> None:
    params = _params(name)
    for key, value in fields.items():
        param = params.get(key)
        limit = getattr(param, "max", None)
        if limit is None or value is None:
            continue
        # smpplib's maximum for a C-Octet string counts the terminating NUL.
        allowed = limit - 1 if param.type is str else limit
        if len(value) > allowed:
            raise FieldTooLong(f"{name}.{key} is {len(value)} long, at most {allowed} allowed",
                               key)


def _params(name: str) -> dict:
    cls = _CLASSES.get(name)
    if cls is None:
        cls = type(make_pdu(name, client=_Seq(1)))
        _CLASSES[name] = cls
    return cls.params


def encode(name: str, sequence: int, status: int = ESME_ROK, **fields) -> bytes:
    """One PDU as bytes; string fields are ``str`` (ASCII), octet strings ``bytes``.

    Raises only EncodeError (FieldTooLong included), whatever the fields hold.
    """
    try:
        return _encode(name, sequence, status, fields)
    except EncodeError:
        raise
    except (UnicodeError, ValueError, TypeError, OverflowError, struct.error,
            AttributeError) as e:
        raise EncodeError(f"{name} does not encode ({type(e).__name__})") from None


def _encode(name: str, sequence: int, status: int, fields: dict) -> bytes:
    if name == "submit_sm" and status == ESME_ROK and _FAST_SUBMIT.issuperset(fields):
        return encode_submit_sm(sequence, **fields)
    command_id = _FAST_RESPONSES.get(name)
    if command_id is not None and (not fields or (
            command_id in _ID_RESPONSES and fields.keys() == {"message_id"})):
        # Sent once per receipt (and per submit_sm by the door's SMPP server): smpplib's
        # reflection would cost more than the PDU.
        _check_lengths(name, fields)
        body = (fields.get("message_id") or "").encode("ascii") + b"\0" \
            if command_id in _ID_RESPONSES else b""
        return HEADER.pack(MIN_LENGTH + len(body), command_id, status, sequence) + body
    _check_lengths(name, fields)
    pdu = make_pdu(name, client=_Seq(sequence), status=status, **fields)
    return pdu.generate()


_FAST_SUBMIT = frozenset({
    "service_type", "source_addr_ton", "source_addr_npi", "source_addr", "dest_addr_ton",
    "dest_addr_npi", "destination_addr", "esm_class", "protocol_id", "priority_flag",
    "validity_period", "registered_delivery", "data_coding", "short_message",
    "sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum"})
_SUBMIT_SM = 0x00000004


def _cstr(value: str | None, limit: int, field: str) -> bytes:
    if not value:
        return b"\0"
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise EncodeError(f"submit_sm.{field} is not Latin-1 text", field) from None
    if b"\0" in raw:
        raise EncodeError(f"submit_sm.{field} holds a NUL", field)
    if len(raw) > limit:
        raise FieldTooLong(f"submit_sm.{field} is {len(raw)} long, at most {limit} allowed",
                           field)
    return raw + b"\0"


def encode_submit_sm(sequence: int, *, source_addr: str = "", destination_addr: str = "",
                     short_message: bytes = b"", service_type: str = "",
                     source_addr_ton: int = 0, source_addr_npi: int = 0, dest_addr_ton: int = 0,
                     dest_addr_npi: int = 0, esm_class: int = 0, protocol_id: int = 0,
                     priority_flag: int = 0, validity_period: str | None = None,
                     registered_delivery: int = 0, data_coding: int = 0,
                     sar_msg_ref_num: int | None = None, sar_total_segments: int | None = None,
                     sar_segment_seqnum: int | None = None) -> bytes:
    """submit_sm without smpplib's per-field reflection: the hot path, byte-identical to it.

    smpplib spends ~40 us building a submit_sm; this takes a few. Tests compare the
    two encoders byte for byte.
    """
    short_message = short_message or b""
    if len(short_message) > 254:
        raise FieldTooLong(f"submit_sm.short_message is {len(short_message)} octets, at most 254",
                           "short_message")
    body = b"".join((
        _cstr(service_type, 5, "service_type"),
        bytes((source_addr_ton or 0, source_addr_npi or 0)),
        _cstr(source_addr, 20, "source_addr"),
        bytes((dest_addr_ton or 0, dest_addr_npi or 0)),
        _cstr(destination_addr, 20, "destination_addr"),
        bytes((esm_class or 0, protocol_id or 0, priority_flag or 0)),
        b"\0",  # schedule_delivery_time: immediate
        _cstr(validity_period, 16, "validity_period"),
        bytes((registered_delivery or 0, 0, data_coding or 0, 0, len(short_message))),
        short_message,
    ))
    if sar_msg_ref_num is not None:
        body += struct.pack(">HHH", 0x020C, 2, sar_msg_ref_num)
    if sar_total_segments is not None:
        body += struct.pack(">HHB", 0x020E, 1, sar_total_segments)
    if sar_segment_seqnum is not None:
        body += struct.pack(">HHB", 0x020F, 1, sar_segment_seqnum)
    return HEADER.pack(16 + len(body), _SUBMIT_SM, ESME_ROK, sequence) + body


class Pdu:
    """A decoded PDU from the fast path; fields it does not carry read as None (like smpplib)."""

    def __init__(self, command: str, status: int, sequence: int, **fields):
        self.command, self.status, self.sequence = command, status, sequence
        self.__dict__.update(fields)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return None


_BODYLESS = {0x80000000: "generic_nack", 0x80000015: "enquire_link_resp",
             0x80000006: "unbind_resp", 0x00000015: "enquire_link", 0x00000006: "unbind"}
_ID_RESPONSES = {0x80000004: "submit_sm_resp", 0x80000005: "deliver_sm_resp",
                 0x80000103: "data_sm_resp"}


_FAST_RESPONSES = {"submit_sm_resp": 0x80000004, "deliver_sm_resp": 0x80000005, "data_sm_resp": 0x80000103,
                   "enquire_link_resp": 0x80000015, "unbind_resp": 0x80000006,
                   "enquire_link": 0x00000015, "unbind": 0x00000006}


def _fast_decode(raw: bytes, length: int, command_id: int, status: int, sequence: int):
    """The hot PDUs without smpplib: responses, keepalives and TLV-free submit/deliver_sm.

    Returns None when the PDU needs the general path (TLVs, other commands).
    """
    name = _BODYLESS.get(command_id)
    if name is not None:
        return Pdu(name, status, sequence)
    name = _ID_RESPONSES.get(command_id)
    if name is not None:
        if length == MIN_LENGTH:
            return Pdu(name, status, sequence, message_id=None)
        nul = raw.find(b"\0", MIN_LENGTH)
        if nul < 0 or nul - MIN_LENGTH > 64 or nul + 1 != length:
            return None
        return Pdu(name, status, sequence, message_id=raw[MIN_LENGTH:nul])
    if command_id in (0x00000004, 0x00000005):
        return _fast_sm(raw, length, command_id, status, sequence)
    return None


def _fast_sm(raw: bytes, length: int, command_id: int, status: int, sequence: int):
    find = raw.find
    pos = MIN_LENGTH
    values = []
    ton_npi_at = []  # where the source and destination ton/npi pairs sit
    for fixed_before, limit in ((0, 5), (2, 20), (2, 20)):
        if fixed_before:
            ton_npi_at.append(pos)
        pos += fixed_before
        nul = find(b"\0", pos, length)
        if nul < 0 or nul - pos > limit:
            return None
        values.append(raw[pos:nul])
        pos = nul + 1
    if pos + 3 > length:
        return None
    esm_class, protocol_id, priority_flag = raw[pos], raw[pos + 1], raw[pos + 2]
    pos += 3
    for limit in (16, 16):  # schedule_delivery_time, validity_period
        nul = find(b"\0", pos, length)
        if nul < 0 or nul - pos > limit:
            return None
        pos = nul + 1
    if pos + 5 > length:
        return None
    registered_delivery, data_coding, sm_length = raw[pos], raw[pos + 2], raw[pos + 4]
    pos += 5
    end = pos + sm_length
    if end > length:
        return None  # the body lies: the general path rejects it
    tlvs = _fast_tlvs(raw, end, length) if end != length else {}
    if tlvs is None:
        return None
    src, dst = ton_npi_at
    return Pdu("submit_sm" if command_id == 4 else "deliver_sm", status, sequence,
               service_type=values[0], source_addr=values[1], destination_addr=values[2],
               source_addr_ton=raw[src], source_addr_npi=raw[src + 1],
               dest_addr_ton=raw[dst], dest_addr_npi=raw[dst + 1],
               esm_class=esm_class, protocol_id=protocol_id, priority_flag=priority_flag,
               registered_delivery=registered_delivery, data_coding=data_coding,
               sm_length=sm_length, short_message=raw[pos:end] if sm_length or tlvs else None, **tlvs)


# The TLVs a receipt (and a split submit_sm) carries: tag -> (name, kind, size or max with NUL).
_FAST_TLVS = {0x001E: ("receipted_message_id", "cstr", 65), 0x0427: ("message_state", "int", 1),
              0x0423: ("network_error_code", "ostr", 3), 0x020C: ("sar_msg_ref_num", "int", 2),
              0x020E: ("sar_total_segments", "int", 1), 0x020F: ("sar_segment_seqnum", "int", 1)}


def _fast_tlvs(raw: bytes, pos: int, length: int) -> dict | None:
    """The receipt and SAR TLVs as smpplib would give them; None for any other or odd TLV."""
    out = {}
    while pos < length:
        if pos + 4 > length:
            return None
        tag = (raw[pos] << 8) | raw[pos + 1]
        size = (raw[pos + 2] << 8) | raw[pos + 3]
        pos += 4
        known = _FAST_TLVS.get(tag)
        if known is None or pos + size > length:
            return None
        name, kind, limit = known
        value = raw[pos:pos + size]
        if kind == "int":
            if size != limit:
                return None
            out[name] = int.from_bytes(value, "big")
        elif kind == "ostr":
            if size != limit:
                return None
            out[name] = value
        else:
            if size == 0 or size > limit or value.find(b"\0") != size - 1:
                return None
            out[name] = value[:-1]
        pos += size
    return out


def as_text(value) -> str:
    """A C-octet string field as text (ids and names are ASCII; absent reads as "")."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def generic_nack(sequence: int, status: int) -> bytes:
    """A generic_nack without smpplib: it has no body, and is sent when parsing failed."""
    return HEADER.pack(MIN_LENGTH, GENERIC_NACK, status, sequence)


def header(raw: bytes) -> tuple[int, int, int, int]:
    """(command_length, command_id, command_status, sequence_number) of a frame."""
    return HEADER.unpack_from(raw)


def decode(raw: bytes):
    """One framed PDU into an object with ``.command``, ``.status``, ``.sequence`` and fields.

    The hot PDUs come from a fast path (``Pdu``), the rest from smpplib; both give
    string fields as bytes and absent fields as None.

    Raises MalformedPdu with the nack status when the command is unknown or the body
    is inconsistent (a string without NUL, a length running past the end).
    """
    length, command_id, status, sequence = HEADER.unpack_from(raw)
    if length == len(raw):
        pdu = _fast_decode(raw, length, command_id, status, sequence)
        if pdu is not None:
            return pdu
    name = command_name(command_id)
    if name is None:
        raise MalformedPdu(f"unknown command_id 0x{command_id:08X}", command_id=command_id,
                           sequence=sequence, status=ESME_RINVCMDID)
    body = raw[MIN_LENGTH:]
    try:
        _validate_body(name, body)
        pdu = make_pdu(name, client=_Seq(sequence), allow_unknown_opt_params=True)
        pdu.parse(raw)
    except (struct.error, ValueError, IndexError, KeyError, TypeError,
            _smpplib_errors.UnknownCommandError) as e:
        raise MalformedPdu(f"{name}: body does not parse ({type(e).__name__})",
                           command_id=command_id, sequence=sequence,
                           status=ESME_RINVMSGLEN) from None
    return pdu


def _validate_body(name: str, body: bytes) -> None:
    """Walk the mandatory fields and TLV headers so a lying body fails here, not deep in smpplib."""
    cls = _CLASSES.get(name) or type(make_pdu(name, client=_Seq(1)))
    _CLASSES[name] = cls
    params = cls.params
    pos, end = 0, len(body)
    values: dict[str, int] = {}
    mandatory = getattr(cls, "mandatory_fields", ())
    for field in getattr(cls, "params_order", ()):
        if pos == end:
            break
        if field not in mandatory and field in consts.OPTIONAL_PARAMS:
            break
        param = params[field]
        if param.type is int:
            size = param.size
            if pos + size > end:
                raise ValueError(f"{field} runs past the end")
            values[field] = int.from_bytes(body[pos:pos + size], "big")
            pos += size
        elif param.type is str:
            nul = body.find(b"\0", pos)
            if nul < 0:
                raise ValueError(f"{field} has no NUL terminator")
            limit = getattr(param, "max", None)
            if limit is not None and nul - pos >= limit:
                raise ValueError(f"{field} is longer than {limit - 1}")
            pos = nul + 1
        else:
            length = values.get(getattr(param, "len_field", ""), 0)
            if pos + length > end:
                raise ValueError(f"{field} runs past the end")
            pos += length
    while pos < end:
        if pos + 4 > end:
            raise ValueError("truncated TLV header")
        tag, length = struct.unpack_from(">HH", body, pos)
        pos += 4 + length
        if pos > end:
            raise ValueError(f"TLV 0x{tag:04X} runs past the end")
        name_ = _TLV_NAMES.get(tag)
        param = params.get(name_) if name_ else None
        if param is not None and param.type is int and length != param.size:
            raise ValueError(f"TLV {name_} has length {length}, expected {param.size}")


_TLV_NAMES = {code: name for name, code in consts.OPTIONAL_PARAMS.items()}


class FrameSplitter:
    """Cuts a byte stream into whole PDUs on the 4-byte command_length."""

    __slots__ = ("_buffer",)

    def __init__(self):
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Return the complete frames now buffered; raise FramingError on an insane length."""
        buf = self._buffer
        buf += data
        frames = []
        pos, size = 0, len(buf)
        while size - pos >= 4:
            length = int.from_bytes(buf[pos:pos + 4], "big")
            if length < MIN_LENGTH or length > MAX_LENGTH:
                raise FramingError(f"command_length {length} outside {MIN_LENGTH}..{MAX_LENGTH}")
            if size - pos < length:
                break
            frames.append(bytes(buf[pos:pos + length]))
            pos += length
        if pos:
            del buf[:pos]
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buffer)
