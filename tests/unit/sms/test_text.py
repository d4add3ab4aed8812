"""Message text encoding: GSM 7-bit vs UCS2, part sizes, UDH, surrogate pairs, part limits."""
from __future__ import annotations

import pytest
import smpplib.gsm
from hypothesis import given, settings
from hypothesis import strategies as st

from sms.carrier import text

SIGNATURE = "【示例公积金】"


def _payloads(encoded):
    """The parts without their UDH."""
    if encoded.esm_class & 0x40:
        return [p[p[0] + 1:] for p in encoded.parts]
    return encoded.parts


def test_short_chinese_is_one_ucs2_part_without_bom():
    """Up to 70 Chinese characters: one UCS2 part, utf-16-be, no BOM, no UDH."""
    msg = SIGNATURE + "您的公积金账户已入账" + "元" * (70 - 17)
    assert len(msg) == 70
    e = text.encode(msg)
    assert (e.part_count, e.data_coding, e.esm_class) == (1, 8, 0)
    assert e.parts[0] == msg.encode("utf-16-be") and not e.parts[0].startswith(b"\xfe\xff")


def test_ninety_chinese_characters_make_two_parts_like_smpplib():
    """A 90-character alert splits 67 + 23 with an 8-bit UDH, as smpplib.gsm does."""
    msg = SIGNATURE + "公" * 83
    e = text.encode(msg, reference=0x2A)
    parts, dc, esm = smpplib.gsm.make_parts(msg)
    assert (e.part_count, e.data_coding, e.esm_class) == (2, dc, esm)
    assert [len(p) for p in e.parts] == [len(p) for p in parts] == [6 + 134, 6 + 46]
    assert e.parts[0][:6] == bytes([5, 0, 3, 0x2A, 2, 1]) and e.parts[1][:6] == \
        bytes([5, 0, 3, 0x2A, 2, 2])
    assert b"".join(_payloads(e)).decode("utf-16-be") == msg


def test_sixteen_bit_reference_udh():
    """With udh16 the UDH is 06 08 04 refhi reflo n i and parts hold 66 characters."""
    e = text.encode("公" * 140, udh16=True, reference=0x1234)
    assert e.part_count == 3
    assert e.parts[0][:7] == bytes([6, 8, 4, 0x12, 0x34, 3, 1])
    assert len(e.parts[0]) == 7 + 132


def test_gsm_text_uses_seven_bit_and_160_153():
    """Plain GSM text: data_coding 0, one septet per octet, 160 in one, 153 per part."""
    assert text.encode("a" * 160).part_count == 1
    e = text.encode("a" * 161, reference=1)
    assert (e.data_coding, e.esm_class, e.part_count) == (0, 0x40, 2)
    assert [len(p) - 6 for p in e.parts] == [153, 8]


def test_gsm_extension_characters_count_two_and_are_not_split():
    """€ costs two septets (ESC 0x65); an escape pair never straddles two parts."""
    assert text.encode("€" * 80).part_count == 1
    e = text.encode("a" * 152 + "€" + "b" * 10, reference=1)
    first = e.parts[0][6:]
    assert first == b"a" * 152 and e.parts[1][6:] == b"\x1b\x65" + b"b" * 10
    assert text.decode(b"".join(_payloads(e)), 0) == "a" * 152 + "€" + "b" * 10


def test_emoji_counts_two_units_and_surrogates_stay_whole():
    """An emoji is a surrogate pair: it costs two units and is never cut across parts."""
    msg = "公" * 66 + "😀" + "公" * 5
    e = text.encode(msg, reference=1)
    assert e.part_count == 2
    assert len(e.parts[0]) == 6 + 132  # the pair did not fit after 66 characters
    for payload in _payloads(e):
        payload.decode("utf-16-be")  # each part decodes alone: no split surrogate
    assert b"".join(_payloads(e)).decode("utf-16-be") == msg


def test_too_many_parts():
    """A text needing more parts than the template allows raises TooManyParts."""
    with pytest.raises(text.TooManyParts) as info:
        text.encode("公" * 200, max_parts=2)
    assert (info.value.needed, info.value.allowed) == (3, 2)


def test_decode_by_data_coding():
    """MO bodies decode by data_coding: GSM, ASCII, latin-1 and UCS2."""
    assert text.decode(b"YE", 0) == "YE"
    assert text.decode(b"\x00", 0) == "@"
    assert text.decode("余额".encode("utf-16-be"), 8) == "余额"
    assert text.decode("café".encode("latin-1"), 3) == "café"


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=600))
def test_any_text_reassembles_and_fits(msg):
    """Any text splits into parts that fit 140 octets and reassemble to the original."""
    e = text.encode(msg, reference=5)
    assert all(len(p) <= 140 or e.data_coding == 0 and len(p) <= 160 for p in e.parts)
    joined = b"".join(_payloads(e))
    assert text.decode(joined, e.data_coding) == msg
    assert e.part_count == len(e.parts)
