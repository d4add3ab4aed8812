"""What the mainland carriers' binary protocols (CMPP, SMGP, SGIP) share, written once.

All three frame on a big-endian u32 total length that counts the whole PDU,
carry fixed-width octet strings padded with NULs, and put a command id with a
response bit 0x80000000 in the header. This module holds those mechanisms and
the error types; the per-protocol codecs (``sms.cmpp.codec``, ``sms.smgp.codec``,
``sms.sgip.codec``) hold only their layouts. Pure: no I/O, no Twisted.

Decoding is strict: a body shorter or longer than its layout says raises
``MalformedPdu`` (carrying the command id and sequence, so the link can answer
or log it), and nothing else escapes a decoder: a wrong-version peer shows up as
a typed error, never as an IndexError deep in a parser. Encoding refuses what it
cannot send faithfully: a field too long raises ``FieldTooLong`` (no silent
truncation), an address that is not ASCII digits raises ``InvalidAddress``.
"""
from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Callable
from datetime import datetime
from common.records import frozen_record

RESPONSE_BIT = 0x80000000
_U32 = struct.Struct(">L")


class CodecError(Exception):
    """Base of every carrier codec error: what a link catches around decode and encode."""


class FramingError(CodecError):
    """The total length is outside sane limits: the byte stream cannot be resynchronised."""


class MalformedPdu(CodecError):
    """A frame of sane length whose body does not match its command's layout.

    ``command_id`` and ``sequence`` are the header's (the sequence is an int for
    CMPP and SMGP, an ``SgipSequence`` for SGIP), so the link can log or answer it.
    """

    def __init__(self, message: str, *, command_id: int, sequence):
        super().__init__(message)
        self.command_id, self.sequence = command_id, sequence


class InvalidField(CodecError, ValueError):
    """A field value the codec refuses to encode (wrong charset, out of range)."""


class FieldTooLong(InvalidField):
    """A field does not fit its fixed width; refusing beats truncating an address or id."""


class InvalidAddress(InvalidField):
    """A terminal id or service number that is not ASCII digits (or is too long)."""


class FrameSplitter:
    """Cuts a byte stream into whole PDUs on a leading big-endian u32 total length.

    ``min_length`` is the protocol's header size: a shorter length can never be a
    PDU, and a length above ``max_length`` is garbage or an attack. Either way the
    stream cannot be resynchronised, so ``feed`` raises FramingError and the link
    must drop.
    """

    __slots__ = ("_buffer", "max_length", "min_length")

    def __init__(self, min_length: int, max_length: int):
        self._buffer = bytearray()
        self.min_length, self.max_length = min_length, max_length

    def feed(self, data: bytes) -> list[bytes]:
        """Return the complete frames now buffered; raise FramingError on an insane length."""
        buf = self._buffer
        buf += data
        frames = []
        pos, size = 0, len(buf)
        while size - pos >= 4:
            length = _U32.unpack_from(buf, pos)[0]
            if length < self.min_length or length > self.max_length:
                raise FramingError(
                    f"total length {length} outside {self.min_length}..{self.max_length}")
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


class BodyOverrun(Exception):
    """Internal: the body ended early or ran long; decoders turn it into MalformedPdu."""


class Reader:
    """Reads a PDU body field by field; any overrun raises ``BodyOverrun`` (caught by decoders)."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None):
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, size: int) -> bytes:
        pos = self.pos
        new = pos + size
        if new > self.end or size < 0:
            raise BodyOverrun(f"{size} octets wanted, {self.end - pos} left")
        self.pos = new
        return self.data[pos:new]

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def text(self, size: int) -> str:
        """A fixed-width octet string: up to its first NUL, read as latin-1 (never fails)."""
        pos = self.pos
        new = pos + size
        if new > self.end or size < 0:  # ``take`` inlined: every fixed field comes here
            raise BodyOverrun(f"{size} octets wanted, {self.end - pos} left")
        self.pos = new
        nul = self.data.find(b"\0", pos, new)
        return self.data[pos:new if nul < 0 else nul].decode("latin-1")

    def fields(self, layout: struct.Struct) -> tuple:
        """Consecutive fixed fields in one ``struct`` unpack: the layout of a PDU every
        message brings (a status report's DELIVER), read at a fraction of field by field."""
        pos = self.pos
        new = pos + layout.size
        if new > self.end:
            raise BodyOverrun(f"{layout.size} octets wanted, {self.end - pos} left")
        self.pos = new
        return layout.unpack_from(self.data, pos)

    def rest(self) -> bytes:
        return self.take(self.end - self.pos)

    def done(self) -> None:
        """The body must end here: trailing octets mean a layout (or version) mismatch."""
        if self.pos != self.end:
            raise BodyOverrun(f"{self.end - self.pos} octets left over")


_U8 = tuple(bytes((i,)) for i in range(256))  # every octet, built once: u8 is on every PDU


def cstr(raw: bytes) -> str:
    """A fixed-width octet string taken whole (from ``Reader.fields``) as ``Reader.text``
    reads one: up to its first NUL, as latin-1."""
    return raw.partition(b"\0")[0].decode("latin-1")


def u8(value: int, field: str) -> bytes:
    if type(value) is int and 0 <= value < 256:
        return _U8[value]
    return _uint(value, 1, field)


def u16(value: int, field: str) -> bytes:
    return _uint(value, 2, field)


def u32(value: int, field: str) -> bytes:
    if type(value) is int and 0 <= value <= 0xFFFFFFFF:  # every frame's length and sequence
        return _U32.pack(value)
    return _uint(value, 4, field)


def _uint(value: int, size: int, field: str) -> bytes:
    if not isinstance(value, int):
        raise InvalidField(f"{field} must be an integer")
    if not 0 <= value < 1 << (8 * size):
        raise InvalidField(f"{field} = {value} does not fit {size} octet(s)")
    return value.to_bytes(size, "big")


def fixed(value: str | bytes, size: int, field: str) -> bytes:
    """An ASCII (or raw) value NUL-padded to ``size``; longer raises FieldTooLong."""
    if isinstance(value, str):
        return _fixed_text(value, size, field)
    raw = bytes(value)
    if len(raw) > size:
        raise FieldTooLong(f"{field} is {len(raw)} octets, at most {size}")
    return raw + b"\0" * (size - len(raw))


@functools.lru_cache(maxsize=512)
def _fixed_text(value: str, size: int, field: str) -> bytes:
    """``fixed`` for text, remembered: a link sends the same Service_Id, Msg_src, fee
    fields and times in every submit (a refused value raises, and is not remembered)."""
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidField(f"{field} must be ASCII") from None
    if len(raw) > size:
        raise FieldTooLong(f"{field} is {len(raw)} octets, at most {size}")
    return raw + b"\0" * (size - len(raw))


def digits(value: str, size: int, field: str, *, allow_empty: bool = True) -> bytes:
    """A terminal id or service number: ASCII digits only, NUL-padded to ``size``.

    Carriers reject anything else late and with an opaque code; refusing here with
    ``InvalidAddress`` names the field (the value itself is not echoed: it may be
    a mobile number).
    """
    if not isinstance(value, str) or not (value.isascii() and (value.isdigit() or
                                                                (allow_empty and not value))):
        raise InvalidAddress(f"{field} must be ASCII digits")
    if len(value) > size:
        raise FieldTooLong(f"{field} is {len(value)} digits, at most {size}")
    return value.encode("ascii") + b"\0" * (size - len(value))


def md5(*parts: bytes) -> bytes:
    """MD5 over the concatenation: every carrier login authenticator is one of these."""
    return hashlib.md5(b"".join(parts)).digest()


def timestamp(moment: datetime) -> int:
    """The MMDDHHMMSS login timestamp as the integer sent in a u32 (1130132535)."""
    return int(moment.strftime("%m%d%H%M%S"))


def timestamp_text(value: int) -> bytes:
    """The same timestamp as the 10 ASCII digits hashed into an authenticator."""
    if not 0 <= value <= 1231235959:
        raise InvalidField(f"timestamp {value} is not MMDDHHMMSS")
    return b"%010d" % value


def secret_bytes(secret: str | bytes) -> bytes:
    """A shared secret as hashed: bytes as given, text as ASCII (else InvalidField)."""
    if isinstance(secret, bytes):
        return secret
    try:
        return secret.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidField("the shared secret must be ASCII") from None


# ---- the table-driven frame, shared by the three codecs ----------------------------

@frozen_record
class Frame:
    """One decoded PDU: its header's command id, its sequence (an int for CMPP and SMGP,
    an ``SgipSequence`` for SGIP) and the PDU dataclass."""

    command_id: int
    sequence: object
    pdu: object


#: command id -> (the specification's name, decoder(reader, *args) -> PDU)
Decoders = dict[int, tuple[str, Callable]]


def is_response(command_id: int) -> bool:
    return bool(command_id & RESPONSE_BIT)


def command_name(decoders: Decoders, command_id: int) -> str | None:
    entry = decoders.get(command_id)
    return entry[0] if entry else None


def header12(raw: bytes, protocol: str) -> tuple[int, int, int]:
    """(length, command id, sequence) of a CMPP or SMGP frame: three big-endian u32."""
    if len(raw) < 12:
        raise FramingError(f"a {protocol} header is 12 octets, got {len(raw)}")
    return struct.unpack_from(">LLL", raw)


def decode_frame(raw: bytes, length: int, command_id: int, sequence, body_start: int,
                 decoders: Decoders, *args) -> Frame:
    """Decode the body of one whole frame whose header was read as given.

    FramingError when the header's length is not the frame's; MalformedPdu for an
    unknown command, or a body shorter or longer than its layout.
    """
    if length != len(raw):
        raise FramingError(f"the header says {length} octets but the frame is {len(raw)}")
    entry = decoders.get(command_id)
    if entry is None:
        raise MalformedPdu(f"unknown command id 0x{command_id:08X}", command_id=command_id,
                           sequence=sequence)
    name, decoder = entry
    r = Reader(raw, body_start)
    try:  # a layout overrun or a refused value becomes this frame's MalformedPdu
        pdu = decoder(r, *args)
        r.done()
    except (BodyOverrun, InvalidField) as e:
        raise MalformedPdu(f"{name}: {e}", command_id=command_id, sequence=sequence) from None
    return Frame(command_id, sequence, pdu)


def encode_frame(pdu, sequence_octets: bytes, encoders: dict[type, Callable], protocol: str,
                 *args) -> bytes:
    """Length (u32) + the PDU's COMMAND_ID (u32) + the sequence octets + the encoded body."""
    encoder = encoders.get(type(pdu))
    if encoder is None:
        raise InvalidField(f"not a {protocol} PDU: {type(pdu).__name__}")
    body = encoder(pdu, *args)
    return (u32(8 + len(sequence_octets) + len(body), "length")
            + u32(pdu.COMMAND_ID, "command id") + sequence_octets + body)
