"""Message text to submit_sm bodies: GSM 7-bit when it fits, UCS2 otherwise, split with a UDH.

GSM text goes out unpacked (one septet per octet, data_coding 0), as SMSCs expect
over SMPP; characters of the extension table take two septets (ESC + code) and an
escape pair is never split across parts. Anything else is UCS2 (utf-16-be, never
a BOM, data_coding 8); lengths count UTF-16 code units, so an emoji costs two and
a surrogate pair is never split. Multi-part messages carry a concatenation UDH
(8-bit reference ``05 00 03 ref n i`` or 16-bit ``06 08 04 refhi reflo n i``) and
esm_class 0x40.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

GSM_DEFAULT = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C,
                 "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}
_GSM_CODE = {ch: i for i, ch in enumerate(GSM_DEFAULT) if ch != "\x1b"}
_GSM_CHAR = {i: ch for ch, i in _GSM_CODE.items()}
_GSM_EXT_CHAR = {code: ch for ch, code in GSM_EXTENSION.items()}

DC_GSM = 0x00
DC_LATIN1 = 0x03
DC_UCS2 = 0x08
DC_GBK = 0x0F  # CMPP/SMGP/SGIP Msg_Fmt 15: GB 18030's two-octet subset, as some carriers want
ESM_UDHI = 0x40

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART, UCS2_PART16 = 70, 67, 66
GSM_PART16 = 152


class TooManyParts(ValueError):
    """The text needs more parts than the template allows."""

    def __init__(self, needed: int, allowed: int):
        super().__init__(f"{needed} parts needed, at most {allowed} allowed")
        self.needed, self.allowed = needed, allowed


@dataclass(frozen=True)
class EncodedMessage:
    parts: list[bytes]  # each a whole short_message, UDH included
    data_coding: int
    esm_class: int
    part_count: int


def is_gsm(text: str) -> bool:
    """True when every character is in the GSM default alphabet or its extension table."""
    return all(ch in _GSM_CODE or ch in GSM_EXTENSION for ch in text)


def _gsm_units(text: str) -> list[bytes]:
    """One entry per character: its one or two septets."""
    return [bytes([0x1B, GSM_EXTENSION[ch]]) if ch in GSM_EXTENSION else bytes([_GSM_CODE[ch]])
            for ch in text]


def _ucs2_units(text: str) -> list[bytes]:
    """One entry per character: 2 octets, or 4 for a character outside the BMP."""
    return [ch.encode("utf-16-be") for ch in text]


def _pack(units: list[bytes], per_part: int) -> list[bytes]:
    """Greedy split on unit boundaries, so escapes and surrogate pairs stay whole."""
    chunks, current, size = [], [], 0
    for unit in units:
        if size + len(unit) > per_part:
            chunks.append(b"".join(current))
            current, size = [], 0
        current.append(unit)
        size += len(unit)
    chunks.append(b"".join(current))
    return chunks


def encode(text: str, *, udh16: bool = False, max_parts: int | None = None,
           reference: int | None = None) -> EncodedMessage:
    """Encode ``text`` into one or more short_message bodies.

    ``reference`` is the concatenation reference (random when None: the caller
    stores the parts, so one message keeps one reference across retries).
    """
    if is_gsm(text):
        units, dc, single, per_part = _gsm_units(text), DC_GSM, GSM_SINGLE, GSM_PART
        if udh16:
            per_part = GSM_PART16
    else:
        raw = text.encode("utf-16-be")
        if len(raw) <= UCS2_SINGLE * 2:  # the usual Chinese notice: one part, nothing to split
            return EncodedMessage([raw], DC_UCS2, 0, 1)
        units, dc, single = _ucs2_units(text), DC_UCS2, UCS2_SINGLE * 2
        per_part = (UCS2_PART16 if udh16 else UCS2_PART) * 2
    total = sum(len(u) for u in units)
    if total <= single:
        return EncodedMessage([b"".join(units)], dc, 0, 1)
    chunks = _pack(units, per_part)
    n = len(chunks)
    if max_parts is not None and n > max_parts:
        raise TooManyParts(n, max_parts)
    if n > 255:
        raise TooManyParts(n, 255)
    if reference is None:
        reference = random.randrange(0x10000 if udh16 else 0x100)
    if udh16:
        udhs = [bytes([6, 8, 4, (reference >> 8) & 0xFF, reference & 0xFF, n, i + 1])
                for i in range(n)]
    else:
        udhs = [bytes([5, 0, 3, reference & 0xFF, n, i + 1]) for i in range(n)]
    return EncodedMessage([udh + chunk for udh, chunk in zip(udhs, chunks)], dc, ESM_UDHI, n)


def part_count(text: str, *, udh16: bool = False) -> int:
    """How many submit_sm ``text`` needs (for `hotline sms render` and template checks)."""
    return encode(text, udh16=udh16, reference=0).part_count


def split_udh(short_message: bytes, esm_class: int) -> tuple[bytes, bytes]:
    """(udh, payload) of a received body: the UDH only when esm_class has UDHI set."""
    if esm_class & ESM_UDHI and short_message:
        size = short_message[0] + 1
        return short_message[:size], short_message[size:]
    return b"", short_message


def decode(payload: bytes, data_coding: int) -> str:
    """Text of a received body (UDH already removed) by its data_coding.

    0 is read as unpacked GSM 7-bit (bytes >= 0x80 as latin-1, which some SMSCs
    send as "default alphabet"), 1 as ASCII, 8 as UCS2, 3 as latin-1; anything
    else as utf-8 with replacement, so an MO is never lost for its encoding.
    """
    if data_coding == DC_UCS2:
        return payload.decode("utf-16-be", errors="replace")
    if data_coding == DC_GBK:
        return payload.decode("gbk", errors="replace")
    if data_coding == DC_LATIN1:
        return payload.decode("latin-1")
    if data_coding == DC_GSM:
        return _gsm_decode(payload)
    if data_coding == 0x01:
        return payload.decode("ascii", errors="replace")
    return payload.decode("utf-8", errors="replace")


def _gsm_decode(payload: bytes) -> str:
    out, escape = [], False
    for b in payload:
        if escape:
            out.append(_GSM_EXT_CHAR.get(b, " "))
            escape = False
        elif b == 0x1B:
            escape = True
        elif b < 0x80:
            out.append(_GSM_CHAR.get(b, "?"))
        else:
            out.append(chr(b))
    return "".join(out)


def for_carrier(short_message: bytes, data_coding: int, esm_class: int,
                gbk: bool = False) -> tuple[bytes, int]:
    """A part encoded for SMPP as (body, Msg_Fmt) for CMPP, SMGP and SGIP.

    Their Msg_Fmt 0 is ASCII, not unpacked GSM: GSM parts are re-encoded as ASCII
    (as latin-1 where a character is not ASCII, so no byte is invented). With ``gbk``
    a UCS2 part goes out in GBK (Msg_Fmt 15), its UDH kept; a character GBK lacks
    (an emoji) keeps the part in UCS2. The split stays the UCS2 one: 67 characters
    in GBK take at most as many octets as in UCS2.
    """
    if data_coding == DC_GSM:
        udh, payload = split_udh(short_message, esm_class)
        text = _gsm_decode(payload)
        try:
            return udh + text.encode("ascii"), DC_GSM
        except UnicodeEncodeError:
            return udh + text.encode("latin-1", errors="replace"), DC_LATIN1
    if gbk and data_coding == DC_UCS2:
        udh, payload = split_udh(short_message, esm_class)
        try:
            return udh + payload.decode("utf-16-be").encode("gbk"), DC_GBK
        except (UnicodeDecodeError, UnicodeEncodeError):
            return short_message, DC_UCS2
    return short_message, data_coding


def concatenation(short_message: bytes, esm_class: int) -> tuple[int, int]:
    """(total, number) from a part's concatenation UDH; (1, 1) for a single part."""
    udh, _payload = split_udh(short_message, esm_class)
    i = 1
    while i + 1 < len(udh):
        iei, size = udh[i], udh[i + 1]
        if iei == 0x00 and size == 3 and i + 4 < len(udh):
            return udh[i + 3], udh[i + 4]
        if iei == 0x08 and size == 4 and i + 5 < len(udh):
            return udh[i + 4], udh[i + 5]
        i += 2 + size
    return 1, 1
