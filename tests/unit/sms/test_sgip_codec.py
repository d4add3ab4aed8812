"""The SGIP 1.2 codec: layouts spelled out from the specification (SGIP 1.2 section 4),
the 12-octet sequence number, the Report that names a Submit, refusals, truncation and
random bytes.

The Report body size (44 octets: sequence 12, ReportType 1, UserNumber 21, State 1,
ErrorCode 1, Reserve 8) is the one Java SGIP clients check, e.g. SGIPReportMessage's
LEN_SGIP_REPORT = 44 in github.com/495291493/code
(common/src/main/java/com/clschina/common/sms/sgip/sgip12/SGIPReportMessage.java).
"""
from __future__ import annotations

import struct
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms.sgip import codec as sgip

USER = "8613012345678"
SERVICE = "1065501232901"
SEQ = sgip.SgipSequence(3020012345, 1130132535, 7)
SEQ_BYTES = bytes.fromhex("b401bb39" "435c7437" "00000007")  # 3020012345, 1130132535, 7


def test_sequence_number_is_three_u32_and_has_a_canonical_string():
    """Node id, MMDDHHMMSS and counter, each a big-endian u32; "node-MMDDHHMMSS-counter"."""
    assert SEQ.to_bytes() == SEQ_BYTES
    assert sgip.SgipSequence.from_bytes(SEQ_BYTES) == SEQ
    assert str(SEQ) == "3020012345-1130132535-7"
    assert sgip.SgipSequence.parse("3020012345-1130132535-7") == SEQ
    assert sgip.SgipSequence.at(3020012345, datetime(2026, 11, 30, 13, 25, 35), 7) == SEQ
    assert str(sgip.SgipSequence(1, 102030405, 0)) == "1-0102030405-0"
    for bad in ("1-2", "a-b-c", "1-2-3-4"):
        with pytest.raises(sgip.InvalidField):
            sgip.SgipSequence.parse(bad)


def test_bind_layout_spelled_out():
    """Bind (section 4.2.1): Login Type (1), Login Name (16), Login Password (16),
    Reserve (8) after the 20-octet header: 61 octets in all."""
    raw = sgip.encode(sgip.Bind(sgip.LOGIN_SP_TO_SMG, "hotline", "secret"), SEQ)
    assert raw == (bytes.fromhex("0000003d" "00000001") + SEQ_BYTES + b"\x01"
                   + b"hotline" + bytes(9) + b"secret" + bytes(10) + bytes(8))
    frame = sgip.decode(raw)
    assert (frame.command_id, frame.sequence, frame.pdu) == \
        (sgip.BIND, SEQ, sgip.Bind(1, "hotline", "secret"))


def test_responses_are_result_and_reserve():
    """Every *_Resp is Result (1) + Reserve (8): 29 octets with the header."""
    for make, command_id in ((sgip.bind_resp, sgip.BIND_RESP),
                             (sgip.submit_resp, sgip.SUBMIT_RESP),
                             (sgip.deliver_resp, sgip.DELIVER_RESP),
                             (sgip.report_resp, sgip.REPORT_RESP)):
        raw = sgip.encode(make(sgip.RESULT_BAD_LOGIN), SEQ)
        assert raw == struct.pack(">LL", 29, command_id) + SEQ_BYTES + b"\x01" + bytes(8)
        assert sgip.decode(raw).pdu == sgip.Response(command_id, 1)
    with pytest.raises(sgip.InvalidField):
        sgip.encode(sgip.Response(sgip.UNBIND_RESP, 0), SEQ)


def test_submit_layout_spelled_out():
    """Submit (section 4.2.3): SPNumber (21), ChargeNumber (21), UserCount (1), UserNumber
    (21 each), CorpId (5), ServiceType (10), FeeType (1), FeeValue (6), GivenValue (6),
    AgentFlag, MorelatetoMTFlag, Priority, ExpireTime (16), ScheduleTime (16), ReportFlag,
    TP_pid, TP_udhi, MessageCoding, MessageType, MessageLength (u32), content, Reserve (8)."""
    submit = sgip.Submit((USER,), b"hi", sp_number=SERVICE, corp_id="12329",
                         service_type="HPF", report_flag=1, tp_udhi=1,
                         message_coding=sgip.CODING_UCS2)
    body = (SERVICE.encode() + bytes(21 - len(SERVICE)) + b"0" * 21 + b"\x01"
            + USER.encode() + bytes(21 - len(USER)) + b"12329" + b"HPF" + bytes(7)
            + b"\x00" + b"0" + bytes(5) + b"0" + bytes(5) + b"\x00\x02\x00" + bytes(16)
            + bytes(16) + b"\x01\x00\x01\x08\x00" + b"\x00\x00\x00\x02" + b"hi" + bytes(8))
    raw = sgip.encode(submit, SEQ)
    assert raw == struct.pack(">LL", 20 + len(body), sgip.SUBMIT) + SEQ_BYTES + body
    assert sgip.decode(raw).pdu == submit


def test_report_names_the_submit_by_its_sequence_number():
    """Report (section 4.2.5): SubmitSequenceNumber (12), ReportType, UserNumber (21),
    State, ErrorCode, Reserve (8): a 44-octet body; receipts match on the sequence."""
    report = sgip.Report(SEQ, USER, sgip.STATE_DELIVERED)
    own = sgip.SgipSequence(3020099999, 1130132600, 1)
    raw = sgip.encode(report, own)
    assert len(raw) == 20 + 44
    assert raw[20:32] == SEQ_BYTES and raw[32] == 0 and raw[54:56] == b"\x00\x00"
    frame = sgip.decode(raw)
    assert frame.sequence == own and frame.pdu == report
    assert str(frame.pdu.submit_sequence) == str(SEQ)


def test_deliver_mo_round_trips_with_a_u32_length():
    """Deliver (section 4.2.4): UserNumber, SPNumber, TP_pid, TP_udhi, MessageCoding,
    MessageLength (u32, unlike CMPP's octet), content, Reserve."""
    mo = sgip.Deliver(USER, SERVICE, "公积金余额".encode("utf-16-be"), message_coding=8)
    raw = sgip.encode(mo, SEQ)
    assert raw[20 + 42 + 3:20 + 42 + 7] == struct.pack(">L", 10)
    assert sgip.decode(raw).pdu == mo


@pytest.mark.parametrize("pdu", [sgip.Unbind(), sgip.UnbindResp()])
def test_unbind_is_header_only(pdu):
    """Unbind and Unbind_Resp have no body."""
    raw = sgip.encode(pdu, SEQ)
    assert len(raw) == 20 and sgip.decode(raw).pdu == pdu


def test_flow_control_is_node_busy():
    """Result 11 (node busy) is SGIP's slow-down answer: a throttle, not a failure."""
    assert sgip.is_flow_control(sgip.RESULT_NODE_BUSY)
    assert not sgip.is_flow_control(sgip.RESULT_OK)
    assert not sgip.is_flow_control(sgip.RESULT_BAD_MOBILE)


@pytest.mark.parametrize("changes, error", [
    ({"corp_id": "123456"}, sgip.FieldTooLong),
    ({"user_numbers": ("1" * 22,)}, sgip.FieldTooLong),
    ({"content": bytes(256)}, sgip.FieldTooLong),
    ({"user_numbers": ("+8613012345678",)}, sgip.InvalidAddress),
    ({"sp_number": "１０６５５"}, sgip.InvalidAddress),
    ({"charge_number": "付费"}, sgip.InvalidAddress),
    ({"service_type": "公积金"}, sgip.InvalidField),
    ({"user_numbers": tuple(f"86130{i:08d}" for i in range(101))}, sgip.InvalidField),
    ({"priority": 256}, sgip.InvalidField),
])
def test_refused_fields(changes, error):
    """Too long raises FieldTooLong, non-digit numbers InvalidAddress, other bad values
    InvalidField, and never a UnicodeEncodeError."""
    base = {"user_numbers": (USER,), "content": b"x", "sp_number": SERVICE}
    base.update(changes)
    with pytest.raises(error):
        sgip.encode(sgip.Submit(**base), SEQ)


def test_bind_password_too_long_is_refused():
    """Login Password is 16 octets; a longer one raises FieldTooLong instead of being cut."""
    with pytest.raises(sgip.FieldTooLong):
        sgip.encode(sgip.Bind(1, "hotline", "p" * 17), SEQ)


@pytest.mark.parametrize("cut", range(1, 30))
def test_truncated_submit_is_malformed_with_its_sequence(cut):
    """A Submit cut short raises MalformedPdu carrying the command id and the SgipSequence."""
    raw = sgip.encode(sgip.Submit((USER,), b"hello", sp_number=SERVICE), SEQ)[:-cut]
    raw = struct.pack(">L", len(raw)) + raw[4:]
    with pytest.raises(sgip.MalformedPdu) as info:
        sgip.decode(raw)
    assert (info.value.command_id, info.value.sequence) == (sgip.SUBMIT, SEQ)


def test_message_length_past_the_end_is_malformed():
    """A MessageLength claiming more octets than the frame holds is malformed, not a read
    past the end (a u32 length could claim 4 GiB)."""
    raw = bytearray(sgip.encode(sgip.Deliver(USER, SERVICE, b"YE"), SEQ))
    raw[20 + 45:20 + 49] = struct.pack(">L", 0xFFFFFFF0)
    with pytest.raises(sgip.MalformedPdu):
        sgip.decode(bytes(raw))


@pytest.mark.parametrize("length", [0, 19, sgip.MAX_LENGTH + 1, 0xFFFFFFFF])
def test_insane_message_length_is_a_framing_error(length):
    """A Message Length below the 20-octet header or above the limit is a FramingError."""
    with pytest.raises(sgip.FramingError):
        sgip.frame_splitter().feed(struct.pack(">LL", length, sgip.UNBIND) + SEQ_BYTES)


def test_splitter_and_unknown_command():
    """Frames come out whole from odd-sized reads; an unknown Command ID is malformed."""
    frames = [sgip.encode(sgip.Unbind(), SEQ), sgip.encode(sgip.report_resp(), SEQ)]
    stream = b"".join(frames)
    splitter = sgip.frame_splitter()
    out = []
    for i in range(0, len(stream), 7):
        out += splitter.feed(stream[i:i + 7])
    assert out == frames
    with pytest.raises(sgip.MalformedPdu) as info:
        sgip.decode(struct.pack(">LL", 20, 0x1000) + SEQ_BYTES)  # Trace: not handled
    assert (info.value.command_id, info.value.sequence) == (0x1000, SEQ)


_IDS = [sgip.BIND, sgip.BIND_RESP, sgip.UNBIND, sgip.UNBIND_RESP, sgip.SUBMIT,
        sgip.SUBMIT_RESP, sgip.DELIVER, sgip.DELIVER_RESP, sgip.REPORT, sgip.REPORT_RESP,
        0x1000]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(_IDS), st.binary(min_size=12, max_size=12))
def test_random_bodies_never_raise_anything_but_codec_error(body, command_id, sequence):
    """Whatever the body, decode returns a Frame or raises a CodecError."""
    try:
        sgip.decode(struct.pack(">LL", 20 + len(body), command_id) + sequence + body)
    except sgip.CodecError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_streams_never_raise_anything_but_codec_error(stream):
    """Random bytes through the splitter and decoder raise only CodecError subclasses."""
    try:
        for raw in sgip.frame_splitter().feed(stream):
            try:
                sgip.decode(raw)
            except sgip.MalformedPdu:
                pass
    except sgip.FramingError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=21), min_size=1,
                max_size=5), st.binary(max_size=255), st.integers(0, 3),
       st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
def test_submit_round_trip_property(users, content, report_flag, node, time, counter):
    """Any valid Submit and sequence number survive encode/decode."""
    submit = sgip.Submit(tuple(users), content, report_flag=report_flag)
    sequence = sgip.SgipSequence(node, time, counter)
    frame = sgip.decode(sgip.encode(submit, sequence))
    assert frame.pdu == submit and frame.sequence == sequence
