"""The mechanisms CMPP, SMGP and SGIP share (sms/carrier/binary_pdu.py): framing on a u32 length,
field helpers that refuse instead of truncating, the strict body reader, the login
timestamp, and the table-driven frame."""
from __future__ import annotations

import struct
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms.carrier import binary_pdu as cc


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6), st.integers(1, 50))
def test_splitter_returns_whole_frames_whatever_the_chunking(bodies, step):
    """Frames fed in any chunk size come out whole, in order, with nothing left over."""
    frames = [struct.pack(">L", 12 + len(b)) + b"\0" * 8 + b for b in bodies]
    stream = b"".join(frames)
    splitter = cc.FrameSplitter(12, 1024)
    out = []
    for i in range(0, len(stream), step):
        out += splitter.feed(stream[i:i + step])
    assert out == frames and splitter.buffered == 0


def test_splitter_waits_for_the_length_and_the_body():
    """Fewer than 4 octets, or a body not yet arrived, yield nothing and stay buffered."""
    splitter = cc.FrameSplitter(20, 1024)
    assert splitter.feed(b"\0\0") == [] and splitter.buffered == 2
    assert splitter.feed(b"\0\x15" + bytes(10)) == [] and splitter.buffered == 14
    assert splitter.feed(bytes(7)) == [b"\0\0\0\x15" + bytes(17)]


@pytest.mark.parametrize("length", [0, 19, 1025])
def test_splitter_refuses_lengths_outside_its_limits(length):
    """A length under the header size or over the maximum cannot be resynchronised."""
    with pytest.raises(cc.FramingError):
        cc.FrameSplitter(20, 1024).feed(struct.pack(">L", length))


def test_fixed_pads_and_refuses_instead_of_truncating():
    """fixed() NUL-pads to the width, refuses a longer value and any non-ASCII text."""
    assert cc.fixed("ab", 4, "f") == b"ab\0\0"
    assert cc.fixed(b"\x01\x02", 2, "f") == b"\x01\x02"
    with pytest.raises(cc.FieldTooLong):
        cc.fixed("abcde", 4, "f")
    with pytest.raises(cc.InvalidField):
        cc.fixed("公积金", 10, "f")


@pytest.mark.parametrize("value", ["12a", " 123", "１２３", "+86", "12.3", "٣٣"])
def test_digits_refuses_anything_but_ascii_digits(value):
    """Terminal ids are ASCII digits; full-width or Arabic-Indic digits count as not."""
    with pytest.raises(cc.InvalidAddress):
        cc.digits(value, 21, "Dest")


def test_digits_width_and_empty():
    """digits() pads to the width, refuses longer, and allows empty only when asked to."""
    assert cc.digits("106", 5, "Src") == b"106\0\0"
    assert cc.digits("", 3, "Fee") == b"\0\0\0"
    with pytest.raises(cc.FieldTooLong):
        cc.digits("1" * 22, 21, "Dest")
    with pytest.raises(cc.InvalidAddress):
        cc.digits("", 21, "Dest", allow_empty=False)


@pytest.mark.parametrize("encode, value", [(cc.u8, 256), (cc.u8, -1), (cc.u16, 1 << 16),
                                           (cc.u32, 1 << 32), (cc.u8, "1")])
def test_integers_out_of_range_are_refused(encode, value):
    """An integer that does not fit its octets is refused, never wrapped."""
    with pytest.raises(cc.InvalidField):
        encode(value, "f")


def test_reader_is_strict_about_both_ends():
    """Reading past the end, or leaving octets unread, raises BodyOverrun; text() stops
    at the first NUL and never fails on non-ASCII octets."""
    r = cc.Reader(b"ab\0c\xff\x01")
    assert r.text(4) == "ab" and r.remaining == 2
    with pytest.raises(cc.BodyOverrun):
        r.take(3)
    with pytest.raises(cc.BodyOverrun):
        r.done()
    assert r.text(2) == "\xff\x01"
    r.done()


def test_decoding_turns_overruns_into_malformed_pdu_with_the_header():
    """A body shorter than its layout becomes MalformedPdu naming command and sequence."""
    raw = struct.pack(">LLL", 12, 0x4, 77)
    with pytest.raises(cc.MalformedPdu) as info:
        cc.decode_frame(raw, 12, 0x4, 77, 12, {0x4: ("SUBMIT", lambda r: r.u8())})
    assert (info.value.command_id, info.value.sequence) == (4, 77)
    assert str(info.value).startswith("SUBMIT:")


def test_timestamps_are_mmddhhmmss():
    """The login timestamp is MMDDHHMMSS as an integer, hashed as 10 ASCII digits."""
    ts = cc.timestamp(datetime(2026, 1, 2, 3, 4, 5))
    assert ts == 102030405 and cc.timestamp_text(ts) == b"0102030405"
    with pytest.raises(cc.InvalidField):
        cc.timestamp_text(1231235960 + 1)


def test_encode_frame_refuses_a_foreign_object_and_decode_frame_an_unknown_command():
    """The table-driven frame names what it cannot handle with a typed error."""
    with pytest.raises(cc.InvalidField):
        cc.encode_frame(object(), b"\0" * 4, {}, "CMPP")
    raw = struct.pack(">LLL", 12, 0x99, 3)
    with pytest.raises(cc.MalformedPdu) as info:
        cc.decode_frame(raw, 12, 0x99, 3, 12, {})
    assert (info.value.command_id, info.value.sequence) == (0x99, 3)
    with pytest.raises(cc.FramingError):
        cc.decode_frame(raw, 13, 0x99, 3, 12, {})


def test_secret_bytes():
    """Secrets hash as given (bytes) or as ASCII (text); other text is refused."""
    assert cc.secret_bytes(b"\xff") == b"\xff" and cc.secret_bytes("abc") == b"abc"
    with pytest.raises(cc.InvalidField):
        cc.secret_bytes("密码")
