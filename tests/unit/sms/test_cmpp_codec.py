"""The CMPP 2.0/3.0 codec: published test vectors, authenticators by hand, Msg_Id bits,
round trips, refused fields, malformed and truncated PDUs, and random bytes.

Byte vectors marked "gocmpp" are the packets spelled out in the tests of Go's gocmpp
(github.com/bigwhite/gocmpp, Apache-2.0: connect_test.go, packet/submit_test.go,
packet/deliver_test.go), an implementation written independently of this one.
"""
from __future__ import annotations

import hashlib
import struct
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.masking import mask_text
from sms.carrier import binary_pdu as carrier_codec
from sms.cmpp import codec as cmpp
from sms.sgip import codec as sgip
from sms.smgp import codec as smgp

V20, V30 = cmpp.V20, cmpp.V30

# gocmpp connect_test.go: Source_Addr 900001, secret 888888, Timestamp 1021080510,
# Version 0x21, Sequence_Id 0x17.
GOCMPP_CONNECT = bytes.fromhex(
    "00000027000000010000001739303030303190d00c1d517abd0b4f65f6bcf8535d16213cdc73be")
GOCMPP_CONNECT_RESP_V2 = bytes.fromhex(
    "0000001e8000000100000017006c0b846e25bab6daa4ed1c466e0f4bd821")
GOCMPP_CONNECT_RESP_V3 = bytes.fromhex(
    "000000218000000100000017000000007942977274098cf210ab0c16c367bc8d30")

# gocmpp packet/submit_test.go: one UCS2 part of "测试gocmpp submit", Sequence_Id 0x17.
GOCMPP_SUBMIT_V2 = bytes.fromhex(
    "000000bd00000004000000170000000000000000010101017465737400000000"
    "0000023133353030303032363936000000000000000000000000083930303030"
    "3130323130000000003135313130353133313535353130312b00000000000000"
    "0000000000000000000000393030303031000000000000000000000000000000"
    "013133353030303032363936000000000000000000001e6d4b8bd50067006f00"
    "63006d007000700020007300750062006d006900740000000000000000")
GOCMPP_SUBMIT_V3 = bytes.fromhex(
    "000000e100000004000000170000000000000000010101017465737400000000"
    "0000023133353030303032363936000000000000000000000000000000000000"
    "0000000000000839303030303130323130000000003135313130353133313535"
    "353130312b000000000000000000000000000000000000393030303031000000"
    "0000000000000000000000000131333530303030323639360000000000000000"
    "00000000000000000000000000001e6d4b8bd50067006f0063006d0070007000"
    "20007300750062006d0069007400000000000000000000000000000000000000"
    "00")
GOCMPP_TERMINAL = "13500002696"  # test data from gocmpp; never printed
GOCMPP_SUBMIT_RESP_V2 = bytes.fromhex("000000158000000400000017b2b9da800001000000")
GOCMPP_SUBMIT_RESP_V3 = bytes.fromhex("000000188000000400000017b2b9da800001000000000000")
# gocmpp packet/deliver_test.go: a 3.0 MO "This is a test MO." to 900001.
GOCMPP_DELIVER_V3 = bytes.fromhex(
    "0000007f0000000500000001b4c5530000010000393030303031000000000000"
    "0000000000000000000000000000000000000000000031333431323334303030"
    "3000000000000000000000000000000000000000000000001254686973206973"
    "20612074657374204d4f2e0000000000000000000000000000000000000000")

DEST = "8613912345678"
SERVICE = "1069001232901"


def same(actual, expected) -> None:
    """Fail with both sides masked: gocmpp's vectors hold whole mobile numbers."""
    if actual != expected:
        pytest.fail(f"{mask_text(repr(actual))} != {mask_text(repr(expected))}", pytrace=False)


def gocmpp_submit() -> cmpp.Submit:
    return cmpp.Submit((GOCMPP_TERMINAL,), "测试gocmpp submit".encode("utf-16-be"),
                       src_id="900001", msg_src="900001", service_id="test",
                       msg_fmt=cmpp.MSG_FMT_UCS2, registered_delivery=1, msg_level=1,
                       fee_user_type=2, fee_terminal_id=GOCMPP_TERMINAL, fee_type="02",
                       fee_code="10", valid_time="151105131555101+")


# ---- login -------------------------------------------------------------------

def test_connect_matches_gocmpp_vector_both_ways():
    """CONNECT with AuthenticatorSource encodes to gocmpp's bytes and decodes back."""
    auth = cmpp.authenticator_source("900001", "888888", 1021080510)
    connect = cmpp.Connect("900001", auth, 0x21, 1021080510)
    assert cmpp.encode(connect, 0x17, V20) == GOCMPP_CONNECT
    frame = cmpp.decode(GOCMPP_CONNECT, V20)
    assert (frame.command_id, frame.sequence, frame.pdu) == (cmpp.CONNECT, 0x17, connect)
    assert cmpp.check_connect(frame.pdu, "888888")
    assert not cmpp.check_connect(frame.pdu, "888889")


def test_authenticator_source_is_md5_over_spelled_bytes():
    """AuthenticatorSource = MD5(Source_Addr + 9 zero octets + secret + "MMDDHHMMSS")."""
    by_hand = hashlib.md5(b"901234" + b"\x00" * 9 + b"s3cret" + b"0102030405").digest()
    assert cmpp.authenticator_source("901234", "s3cret", 102030405) == by_hand
    connect = cmpp.make_connect("901234", "s3cret", datetime(2026, 1, 2, 3, 4, 5), V30)
    assert (connect.timestamp, connect.authenticator, connect.version) == \
        (102030405, by_hand, 0x30)


@pytest.mark.parametrize("version, raw, status_bytes", [
    (V20, GOCMPP_CONNECT_RESP_V2, b"\x00"),
    (V30, GOCMPP_CONNECT_RESP_V3, b"\x00\x00\x00\x00"),
])
def test_connect_resp_matches_gocmpp_and_md5_by_hand(version, raw, status_bytes):
    """AuthenticatorISMG = MD5(Status + AuthenticatorSource + secret), Status one octet on
    2.0 and four on 3.0; the response decodes and verifies, and a wrong secret does not."""
    source_auth = cmpp.authenticator_source("900001", "888888", 1021080510)
    by_hand = hashlib.md5(status_bytes + source_auth + b"888888").digest()
    assert cmpp.authenticator_ismg(0, source_auth, "888888", version) == by_hand
    resp = cmpp.ConnectResp(0, by_hand, 0x21 if version == V20 else 0x30)
    assert cmpp.encode(resp, 0x17, version) == raw
    decoded = cmpp.decode(raw, version).pdu
    assert decoded == resp
    assert cmpp.verify_connect_resp(decoded, source_auth, "888888", version)
    assert not cmpp.verify_connect_resp(decoded, source_auth, "wrong", version)


# ---- submit ------------------------------------------------------------------

@pytest.mark.parametrize("version, raw", [(V20, GOCMPP_SUBMIT_V2), (V30, GOCMPP_SUBMIT_V3)])
def test_submit_matches_gocmpp_vector_both_ways(version, raw):
    """SUBMIT in the 2.0 layout (21-octet ids, Reserve) and the 3.0 layout (32-octet ids,
    terminal types, LinkID) encodes to gocmpp's bytes and decodes to the same dataclass."""
    submit = gocmpp_submit()
    assert cmpp.encode(submit, 0x17, version) == raw
    same(cmpp.decode(raw, version).pdu, submit)


@pytest.mark.parametrize("version, raw", [(V20, GOCMPP_SUBMIT_RESP_V2),
                                          (V30, GOCMPP_SUBMIT_RESP_V3)])
def test_submit_resp_matches_gocmpp_and_msg_id_decodes(version, raw):
    """SUBMIT_RESP's Result is u8 on 2.0 and u32 on 3.0; gocmpp's Msg_Id
    12878564852733378560 reads as month 11, day 5, ISMG 1, sequence 0."""
    msg_id = cmpp.MsgId.from_int(12878564852733378560)
    assert cmpp.encode(cmpp.SubmitResp(msg_id, 0), 0x17, version) == raw
    assert cmpp.decode(raw, version).pdu == cmpp.SubmitResp(msg_id, 0)
    assert (msg_id.month, msg_id.day, msg_id.gateway, msg_id.sequence) == (11, 5, 1, 0)


def test_deliver_mo_matches_gocmpp_vector():
    """A 3.0 MO DELIVER encodes to gocmpp's bytes and decodes to its fields."""
    mo = cmpp.Deliver(cmpp.MsgId.from_int(13025908756704198656), "900001", "13412340000",
                      content=b"This is a test MO.")
    assert cmpp.encode(mo, 1, V30) == GOCMPP_DELIVER_V3
    same(cmpp.decode(GOCMPP_DELIVER_V3, V30).pdu, mo)


def test_three_zero_differences_are_where_the_specification_puts_them():
    """The same SUBMIT is 36 octets longer on 3.0: 11 more per terminal id (fee and one
    destination), a type octet after each, and LinkID (20) instead of Reserve (8)."""
    submit = cmpp.Submit((DEST,), b"x", src_id=SERVICE)
    v2, v3 = cmpp.encode(submit, 1, V20), cmpp.encode(submit, 1, V30)
    assert len(v3) - len(v2) == 11 * 2 + 2 + (20 - 8)
    assert v2[-8:] == bytes(8)
    with_link = cmpp.encode(cmpp.Submit((DEST,), b"x", src_id=SERVICE, link_id="L"), 1, V30)
    assert with_link[-20:] == b"L" + bytes(19)


def test_two_part_ucs2_submit_carries_udh_and_part_numbers():
    """A long message's parts keep Pk_total/Pk_number, TP_udhi and the UDH in Msg_Content."""
    udh = bytes([5, 0, 3, 0x2A, 2, 2])
    part = cmpp.Submit((DEST, "8613912345679"), udh + "第二部分".encode("utf-16-be"),
                       src_id=SERVICE, msg_fmt=cmpp.MSG_FMT_UCS2, tp_udhi=1, pk_total=2,
                       pk_number=2, registered_delivery=1, link_id="abc",
                       dest_terminal_type=0)
    decoded = cmpp.decode(cmpp.encode(part, 9, V30), V30).pdu
    assert decoded == part and decoded.content[:6] == udh


# ---- status reports ----------------------------------------------------------

@pytest.mark.parametrize("version, width", [(V20, 21), (V30, 32)])
def test_report_inside_deliver_is_parsed_from_spelled_bytes(version, width):
    """Msg_Content of a status report: Msg_Id (8), Stat (7), Submit_time (10), Done_time
    (10), Dest_terminal_Id (21 on 2.0, 32 on 3.0), SMSC_sequence (u32): 60 or 71 octets."""
    msg_id = bytes.fromhex("b4c5530000010002")
    content = (msg_id + b"DELIVRD" + b"2611301325" + b"2611301326"
               + DEST.encode() + bytes(width - len(DEST)) + struct.pack(">L", 77))
    assert len(content) == (60 if version == V20 else 71)
    report = cmpp.decode_report(content, version)
    assert report == cmpp.Report(cmpp.MsgId.from_bytes(msg_id), "DELIVRD", "2611301325",
                                 "2611301326", DEST, 77)
    assert cmpp.encode_report(report, version) == content
    deliver = cmpp.Deliver(cmpp.MsgId.from_int(1), SERVICE, DEST, report=report)
    raw = cmpp.encode(deliver, 5, version)
    assert raw[12 + 8 + 21 + 10 + 3 + width + (version == V30)] == 1  # Registered_Delivery
    assert cmpp.decode(raw, version).pdu == deliver
    assert str(cmpp.decode(raw, version).pdu.report.msg_id) == str(cmpp.MsgId.from_bytes(msg_id))


def test_deliver_with_a_report_of_the_wrong_size_is_malformed():
    """A 2.0-sized report (60 octets) inside a 3.0 DELIVER is refused, not misread."""
    raw = bytearray(cmpp.encode(cmpp.Deliver(cmpp.MsgId(), SERVICE, DEST, content=bytes(60)),
                                8, V30))
    raw[12 + 8 + 21 + 10 + 3 + 32 + 1] = 1  # Registered_Delivery: a report
    with pytest.raises(cmpp.MalformedPdu) as info:
        cmpp.decode(bytes(raw), V30)
    assert (info.value.command_id, info.value.sequence) == (cmpp.DELIVER, 8)
    raw[12 + 8 + 21 + 10 + 3 + 32 + 1] = 2  # neither MO nor report
    with pytest.raises(cmpp.MalformedPdu):
        cmpp.decode(bytes(raw), V30)


def test_deliver_refuses_both_content_and_report():
    """A DELIVER is an MO or a report: asking for both is a programming error."""
    report = cmpp.Report(cmpp.MsgId(), "DELIVRD", "", "", DEST)
    with pytest.raises(cmpp.InvalidField):
        cmpp.encode(cmpp.Deliver(cmpp.MsgId(), SERVICE, DEST, content=b"x", report=report), 1)


# ---- Msg_Id ------------------------------------------------------------------

def test_msg_id_bit_layout_by_hand():
    """month 4 bits, day 5, hour 5, minute 6, second 6, ISMG code 22, sequence 16."""
    msg_id = cmpp.MsgId(11, 30, 13, 25, 35, 123456, 42)
    by_hand = (11 << 60) | (30 << 55) | (13 << 50) | (25 << 44) | (35 << 38) | \
        (123456 << 16) | 42
    assert msg_id.to_int() == by_hand
    assert msg_id.to_bytes() == by_hand.to_bytes(8, "big")
    assert cmpp.MsgId.from_bytes(by_hand.to_bytes(8, "big")) == msg_id


def test_msg_id_canonical_string_round_trips():
    """The 22-digit form (MMDDHHMMSS + 7-digit ISMG code + 5-digit sequence) is what
    receipts are matched on; it parses back to the same id."""
    msg_id = cmpp.MsgId(1, 2, 3, 4, 5, 6789, 12)
    assert str(msg_id) == "0102030405000678900012"
    assert cmpp.MsgId.parse(str(msg_id)) == msg_id
    for bad in ("", "01020304050006789000120", "0102030405000678900O12"):
        with pytest.raises(cmpp.InvalidField):
            cmpp.MsgId.parse(bad)


@pytest.mark.parametrize("field, value", [("month", 16), ("day", 32), ("gateway", 1 << 22),
                                          ("sequence", 1 << 16), ("second", -1)])
def test_msg_id_part_out_of_range_is_refused(field, value):
    """A part that does not fit its bits would silently corrupt its neighbours: refused."""
    with pytest.raises(cmpp.InvalidField):
        cmpp.MsgId(**{field: value}).to_bytes()


def test_a_msg_id_is_an_immutable_value():
    """Kept as its 64-bit integer, a Msg_Id still reads as its parts, compares and hashes by
    value (never equal to its integer), cannot be changed, and survives pickling."""
    import dataclasses
    import pickle

    msg_id = cmpp.MsgId(11, 30, 13, 25, 35, 123456, 42)
    same_id = cmpp.MsgId.from_int(msg_id.to_int())
    assert (same_id.month, same_id.day, same_id.hour, same_id.minute, same_id.second,
            same_id.gateway, same_id.sequence) == (11, 30, 13, 25, 35, 123456, 42)
    assert same_id == msg_id and hash(same_id) == hash(msg_id) and len({msg_id, same_id}) == 1
    assert msg_id != msg_id.to_int() and msg_id != cmpp.MsgId(11, 30, 13, 25, 35, 123456, 43)
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg_id.month = 1  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(msg_id)) == msg_id
    assert repr(msg_id) == ("MsgId(month=11, day=30, hour=13, minute=25, second=35, "
                            "gateway=123456, sequence=42)")


@given(st.integers(0, (1 << 64) - 1))
def test_any_eight_octets_are_a_msg_id(value):
    """Every u64 decodes to parts that encode back to the same octets."""
    assert cmpp.MsgId.from_int(value).to_int() == value


# ---- result codes --------------------------------------------------------------

def test_flow_control_is_result_eight_only():
    """Result 8 is the ISMG's "too fast" (a throttle to retry); no other result is."""
    assert cmpp.is_flow_control(cmpp.RESULT_FLOW_CONTROL) and cmpp.RESULT_FLOW_CONTROL == 8
    assert not any(cmpp.is_flow_control(r) for r in range(256) if r != 8)


# ---- validation --------------------------------------------------------------

@pytest.mark.parametrize("version, changes", [
    (V30, {"service_id": "HPF1232901X"}),  # 11 > 10
    (V30, {"msg_src": "9012345"}),
    (V30, {"fee_code": "1234567"}),
    (V30, {"src_id": "1" * 22}),
    (V20, {"dest_terminal_ids": ("1" * 22,)}),  # 21 on 2.0
    (V30, {"dest_terminal_ids": ("1" * 33,)}),  # 32 on 3.0
    (V30, {"link_id": "L" * 21}),
    (V30, {"content": bytes(256)}),
])
def test_too_long_field_raises_field_too_long(version, changes):
    """A field over its width raises FieldTooLong (a ValueError), never a truncated PDU."""
    base = {"dest_terminal_ids": (DEST,), "content": b"x", "src_id": SERVICE}
    base.update(changes)
    with pytest.raises(cmpp.FieldTooLong):
        cmpp.encode(cmpp.Submit(**base), 1, version)
    assert issubclass(cmpp.FieldTooLong, ValueError)


@pytest.mark.parametrize("changes, field", [
    (dict(pk_total=256), "Pk_total"), (dict(msg_level=-1), "Msg_level"),
    (dict(msg_fmt=300), "Msg_Fmt"), (dict(tp_udhi=2.0), "TP_udhi"),
])
def test_a_one_octet_submit_field_out_of_range_is_refused_by_name(changes, field):
    """The one-octet fields go out in one pack; one that does not fit is still refused with
    its own name, never struct's message."""
    submit = cmpp.Submit(("13800000000",), b"x", src_id="1069012329", **changes)
    with pytest.raises(cmpp.InvalidField, match=field):
        cmpp.encode(submit, 1, V30)


def test_a_22_digit_destination_fits_on_three_zero_only():
    """32-octet terminal ids are the 3.0 widening: what 2.0 refuses, 3.0 carries."""
    submit = cmpp.Submit(("1" * 22,), b"x", src_id=SERVICE)
    assert cmpp.decode(cmpp.encode(submit, 1, V30), V30).pdu == submit


@pytest.mark.parametrize("field, value", [
    ("dest_terminal_ids", ("138-0013-8000",)), ("dest_terminal_ids", ("１３８００１３８０００",)),
    ("dest_terminal_ids", ("手机",)), ("dest_terminal_ids", ("",)), ("src_id", "1069x"),
    ("fee_terminal_id", "+8613912345678"), ("src_id", "１０６９"),
])
def test_non_digit_address_raises_invalid_address(field, value):
    """Any address that is not ASCII digits raises InvalidAddress (never UnicodeEncodeError),
    and the message does not echo the value (it may be a mobile number)."""
    base = {"dest_terminal_ids": (DEST,), "content": b"x", "src_id": SERVICE}
    base[field] = value
    with pytest.raises(cmpp.InvalidAddress) as info:
        cmpp.encode(cmpp.Submit(**base), 1, V30)
    shown = value if isinstance(value, str) else value[0]
    assert not shown or shown not in str(info.value)


def test_non_ascii_text_field_is_invalid_not_unicode_error():
    """Service_Id and friends are ASCII; a Chinese value raises InvalidField."""
    with pytest.raises(cmpp.InvalidField):
        cmpp.encode(cmpp.Submit((DEST,), b"x", service_id="公积金"), 1)
    with pytest.raises(cmpp.InvalidField):
        cmpp.make_connect("901234", "密码", datetime(2026, 1, 1))


@pytest.mark.parametrize("changes", [{"link_id": "L"}, {"fee_terminal_type": 1},
                                     {"dest_terminal_type": 1}])
def test_three_zero_only_fields_are_refused_on_two_zero(changes):
    """Fields 2.0 has no room for raise InvalidField instead of vanishing."""
    with pytest.raises(cmpp.InvalidField):
        cmpp.encode(cmpp.Submit((DEST,), b"x", **changes), 1, V20)


@pytest.mark.parametrize("count", [0, 101])
def test_destination_count_must_be_one_to_a_hundred(count):
    """DestUsr_tl is 1..100 by the specification."""
    dests = tuple(f"86139{i:08d}" for i in range(count))
    with pytest.raises(cmpp.InvalidField):
        cmpp.encode(cmpp.Submit(dests, b"x"), 1)


def test_a_hundred_destinations_round_trip():
    """The maximum DestUsr_tl fits under the frame limit on 3.0."""
    submit = cmpp.Submit(tuple(f"86139{i:08d}" for i in range(100)), bytes(140),
                         src_id=SERVICE)
    raw = cmpp.encode(submit, 1, V30)
    assert len(raw) < cmpp.MAX_LENGTH and cmpp.decode(raw, V30).pdu == submit


# ---- framing, malformed, truncated --------------------------------------------

def test_splitter_reassembles_frames_from_any_chunking():
    """Frames cut across reads or packed together come out whole and in order."""
    frames = [cmpp.encode(cmpp.ActiveTest(), 1), GOCMPP_SUBMIT_V3,
              cmpp.encode(cmpp.ActiveTestResp(), 2)]
    stream = b"".join(frames)
    for step in (1, 5, 13, len(stream)):
        splitter = cmpp.frame_splitter()
        out = []
        for i in range(0, len(stream), step):
            out += splitter.feed(stream[i:i + step])
        assert out == frames and splitter.buffered == 0


@pytest.mark.parametrize("length", [0, 11, cmpp.MAX_LENGTH + 1, 0xFFFFFFFF])
def test_insane_total_length_is_a_framing_error(length):
    """A Total_Length below the header or above the limit cannot be resynchronised."""
    with pytest.raises(cmpp.FramingError):
        cmpp.frame_splitter().feed(struct.pack(">LLL", length, cmpp.ACTIVE_TEST, 1))


def test_unknown_command_is_malformed_with_its_id_and_sequence():
    """An unknown Command_Id names itself and its sequence in MalformedPdu."""
    with pytest.raises(cmpp.MalformedPdu) as info:
        cmpp.decode(struct.pack(">LLL", 12, 0x00000777, 5))
    assert (info.value.command_id, info.value.sequence) == (0x777, 5)


@pytest.mark.parametrize("cut", range(1, 60))
def test_truncated_submit_is_malformed(cut):
    """A SUBMIT whose body was cut short (its header saying so) raises MalformedPdu
    carrying the command id and the sequence, whatever field the cut lands in."""
    raw = GOCMPP_SUBMIT_V3[:-cut]
    raw = struct.pack(">L", len(raw)) + raw[4:]
    with pytest.raises(cmpp.MalformedPdu) as info:
        cmpp.decode(raw, V30)
    assert (info.value.command_id, info.value.sequence) == (cmpp.SUBMIT, 0x17)


def test_other_versions_layout_is_malformed_not_misread():
    """A 3.0 SUBMIT read as 2.0 (and the reverse) does not parse: the lengths disagree."""
    for raw, version in ((GOCMPP_SUBMIT_V3, V20), (GOCMPP_SUBMIT_V2, V30),
                         (GOCMPP_SUBMIT_RESP_V3, V20), (GOCMPP_CONNECT_RESP_V2, V30)):
        with pytest.raises(cmpp.MalformedPdu):
            cmpp.decode(raw, version)


def test_trailing_octets_are_malformed_but_active_test_resp_may_omit_reserved():
    """Strict lengths everywhere, except the one-octet ACTIVE_TEST_RESP that some
    clients (pycmpp) send empty: both forms are accepted."""
    with pytest.raises(cmpp.MalformedPdu):
        cmpp.decode(struct.pack(">LLL", 13, cmpp.TERMINATE, 1) + b"\0")
    assert cmpp.decode(struct.pack(">LLL", 12, cmpp.ACTIVE_TEST_RESP, 1)).pdu == \
        cmpp.ActiveTestResp()
    assert cmpp.decode(cmpp.encode(cmpp.ActiveTestResp(), 1)).pdu == cmpp.ActiveTestResp()


def test_length_disagreeing_with_frame_is_a_framing_error():
    """decode() takes exactly one frame; a Total_Length that disagrees is FramingError."""
    with pytest.raises(cmpp.FramingError):
        cmpp.decode(GOCMPP_CONNECT + b"\0")
    with pytest.raises(cmpp.FramingError):
        cmpp.decode(GOCMPP_CONNECT[:8])


@pytest.mark.parametrize("pdu", [
    cmpp.ActiveTest(), cmpp.ActiveTestResp(), cmpp.Terminate(), cmpp.TerminateResp(),
    cmpp.Query("20261130", 1, "HPF12329"),
    cmpp.QueryResp("20261130", 0, "", (1, 2, 3, 4, 5, 6, 7, 8)),
    cmpp.DeliverResp(cmpp.MsgId(1, 2, 3, 4, 5, 6, 7), 9),
])
@pytest.mark.parametrize("version", [V20, V30])
def test_small_pdus_round_trip(pdu, version):
    """ACTIVE_TEST, TERMINATE, QUERY and DELIVER_RESP survive encode/decode on both versions."""
    assert cmpp.decode(cmpp.encode(pdu, 3, version), version).pdu == pdu


@pytest.mark.parametrize("version", [V20, V30])
@pytest.mark.parametrize("msg_id,result", [
    (cmpp.MsgId(1, 2, 3, 4, 5, 6, 7), 0), (cmpp.MsgId(12, 31, 23, 59, 59, (1 << 22) - 1, 65535), 8),
])
def test_deliver_resp_in_one_pack_is_the_encoders_frame(msg_id, result, version):
    """The status report's answer written in one pack is byte for byte what ``encode`` writes
    for the same DELIVER_RESP, on both versions."""
    assert cmpp.encode_deliver_resp(msg_id, result, 0x7FFFFFFF, version) == cmpp.encode(
        cmpp.DeliverResp(msg_id, result), 0x7FFFFFFF, version)


def test_deliver_resp_in_one_pack_refuses_what_encode_refuses():
    """A result too wide for 2.0's one octet gets ``encode``'s clear error, not struct's."""
    with pytest.raises(cmpp.InvalidField, match="Result"):
        cmpp.encode_deliver_resp(cmpp.MsgId(1, 2, 3, 4, 5, 6, 7), 300, 1, V20)


def test_a_connections_decoder_checks_its_version_once_and_decodes_as_decode():
    """``decoder(version)`` refuses a version that is neither 2.0 nor 3.0 when the connection
    is made, and then reads every frame as ``decode`` does, framing errors included."""
    with pytest.raises(cmpp.InvalidField):
        cmpp.decoder(0x21)
    for version, raw in ((V20, GOCMPP_SUBMIT_RESP_V2), (V30, GOCMPP_SUBMIT_RESP_V3)):
        assert cmpp.decoder(version)(raw) == cmpp.decode(raw, version)
    with pytest.raises(cmpp.FramingError):
        cmpp.decoder(V30)(GOCMPP_SUBMIT_RESP_V3[:8])


def test_errors_and_frames_are_shared_by_the_carrier_codecs():
    """One except clause (CodecError) covers every protocol's codec errors, and CMPP,
    SMGP and SGIP decode into the same Frame type (one mechanism, written once)."""
    for error in (cmpp.FramingError, cmpp.MalformedPdu, cmpp.FieldTooLong, cmpp.InvalidAddress):
        assert issubclass(error, carrier_codec.CodecError)
    assert cmpp.Frame is smgp.Frame is sgip.Frame is carrier_codec.Frame
    assert cmpp.is_response(cmpp.SUBMIT_RESP) and not cmpp.is_response(cmpp.SUBMIT)


# ---- properties ----------------------------------------------------------------

_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=21)
_ASCII = st.text(alphabet="ABCDEFGHIJ0123456789+", max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(_DIGITS, min_size=1, max_size=5), st.binary(max_size=255),
       st.integers(0, 255), st.integers(0, 255), st.sampled_from([0, 8, 15]), _ASCII,
       st.sampled_from([V20, V30]), st.integers(0, 0xFFFFFFFF))
def test_submit_round_trip_property(dests, content, pk_total, pk_number, fmt, text, version,
                                    seq):
    """Any valid SUBMIT survives encode/decode on either version, field for field."""
    submit = cmpp.Submit(tuple(dests), content, src_id="10690", msg_src=text, service_id=text,
                         msg_fmt=fmt, pk_total=pk_total, pk_number=pk_number, tp_udhi=1,
                         fee_type=text[:2], link_id=text if version == V30 else "")
    frame = cmpp.decode(cmpp.encode(submit, seq, version), version)
    assert frame.pdu == submit and frame.sequence == seq


_COMMANDS = [cmpp.CONNECT, cmpp.CONNECT_RESP, cmpp.SUBMIT, cmpp.SUBMIT_RESP, cmpp.DELIVER,
             cmpp.DELIVER_RESP, cmpp.QUERY, cmpp.QUERY_RESP, cmpp.ACTIVE_TEST,
             cmpp.ACTIVE_TEST_RESP, cmpp.TERMINATE, cmpp.TERMINATE_RESP, 0x7, 0x80000777]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(_COMMANDS), st.sampled_from([V20, V30]))
def test_random_bodies_never_raise_anything_but_codec_error(body, command_id, version):
    """Whatever the body, decode returns a Frame or raises a CodecError, never another error."""
    raw = struct.pack(">LLL", 12 + len(body), command_id, 1) + body
    try:
        cmpp.decode(raw, version)
    except cmpp.CodecError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([V20, V30]))
def test_random_streams_never_raise_anything_but_codec_error(stream, version):
    """Random bytes through the splitter and decoder raise only CodecError subclasses."""
    try:
        for raw in cmpp.frame_splitter().feed(stream):
            try:
                cmpp.decode(raw, version)
            except cmpp.MalformedPdu:
                pass
    except cmpp.FramingError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.sampled_from(["dest_terminal_ids", "src_id", "service_id",
                                               "fee_terminal_id", "link_id"]))
def test_encoding_any_text_raises_only_codec_errors(value, field):
    """Whatever text lands in a field, encode succeeds or raises a CodecError (ValueError)."""
    base = {"dest_terminal_ids": (DEST,), "content": b"x"}
    base[field] = (value,) if field == "dest_terminal_ids" else value
    try:
        cmpp.encode(cmpp.Submit(**base), 1, V30)
    except cmpp.CodecError:
        pass
