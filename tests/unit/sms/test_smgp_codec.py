"""The SMGP 3.0 codec: Login authenticators by hand, layouts spelled out from the
specification (SMGP 3.0 section 6), TLVs, the 10-octet MsgID, status reports (including
one captured from a real SMGW), refusals, truncation and random bytes.

The real-world report vector and the BCD MsgID "12345607091206000017" come from the
tests of Java's SMSGate (github.com/Lihuanghe/SMSGate,
src/test/java/com/zx/sms/codec/smgp/TestSMGPMsgIdUtil.java).
"""
from __future__ import annotations

import hashlib
import struct
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms.smgp import codec as smgp

DEST = "8613312345678"
SERVICE = "1065901232901"

# SMSGate TestSMGPMsgIdUtil: a report as an SMGW sent it: no space before "sub:",
# "submit_date", "txt:", a non-BCD MsgID and GBK text ("中国0a8ae5").
SMSGATE_REPORT = bytes.fromhex(
    "69643a6495c36ac4ea6b00000b7375623a30303120646c7672643a303031207375626d69745f6461"
    "74653a3138303730353232303720646f6e655f646174653a3138303730353232303720737461743a"
    "44454c49565244206572723a303030207478743ad6d0b9fa306138616535")


def test_login_layout_and_authenticator_by_hand():
    """Login (section 6.2.1): ClientID (8), AuthenticatorClient (16) = MD5(ClientID + 7
    zero octets + secret + "MMDDHHMMSS"), LoginMode (1), TimeStamp (u32), ClientVersion."""
    auth = hashlib.md5(b"90123456" + b"\x00" * 7 + b"s3cret" + b"1130132535").digest()
    login = smgp.make_login("90123456", "s3cret", datetime(2026, 11, 30, 13, 25, 35))
    assert login.authenticator == auth
    raw = smgp.encode(login, 7)
    assert raw == (bytes.fromhex("0000002a" "00000001" "00000007") + b"90123456" + auth
                   + bytes.fromhex("02" "435c7437" "30"))
    assert smgp.decode(raw).pdu == login
    assert smgp.check_login(login, "s3cret") and not smgp.check_login(login, "wrong")


def test_login_resp_server_authenticator_by_hand():
    """Login_Resp: Status (u32), AuthenticatorServer = MD5(Status (4 octets) +
    AuthenticatorClient + secret), ServerVersion; verified, and a wrong secret is not."""
    client_auth = smgp.authenticator_client("90123456", "s3cret", 1130132535)
    server_auth = hashlib.md5(b"\x00\x00\x00\x00" + client_auth + b"s3cret").digest()
    resp = smgp.LoginResp(0, server_auth)
    raw = smgp.encode(resp, 7)
    assert raw == bytes.fromhex("00000021" "80000001" "00000007" "00000000") + server_auth \
        + b"\x30"
    assert smgp.verify_login_resp(smgp.decode(raw).pdu, client_auth, "s3cret")
    assert not smgp.verify_login_resp(resp, client_auth, "wrong")
    refused = smgp.LoginResp(smgp.STATUS_BAD_AUTH, smgp.authenticator_server(21, client_auth,
                                                                             "s3cret"))
    assert smgp.decode(smgp.encode(refused, 8)).pdu.status == 21


def test_submit_layout_spelled_out():
    """Submit (section 6.2.3): MsgType, NeedReport, Priority, ServiceID (10), FeeType (2),
    FeeCode (6), FixedFee (6), MsgFormat, ValidTime (17), AtTime (17), SrcTermID (21),
    ChargeTermID (21), DestTermIDCount, DestTermID (21 each), MsgLength, MsgContent,
    Reserve (8), then TLVs (tag u16, length u16, value) in tag order."""
    submit = smgp.Submit((DEST,), b"hi", src_term_id=SERVICE, need_report=1,
                         service_id="HPF", msg_format=8,
                         options=smgp.Options(tp_udhi=1, link_id="L1", pk_total=2,
                                              pk_number=1))
    body = (b"\x06\x01\x00" + b"HPF" + bytes(7) + b"00" + b"000000" + b"000000" + b"\x08"
            + bytes(17) + bytes(17) + SERVICE.encode() + bytes(21 - len(SERVICE)) + bytes(21)
            + b"\x01" + DEST.encode() + bytes(21 - len(DEST)) + b"\x02hi" + bytes(8)
            + bytes.fromhex("0002" "0001" "01") + bytes.fromhex("0003" "0002") + b"L1"
            + bytes.fromhex("0009" "0001" "02") + bytes.fromhex("000a" "0001" "01"))
    raw = smgp.encode(submit, 3)
    assert raw == struct.pack(">LLL", 12 + len(body), smgp.SUBMIT, 3) + body
    assert smgp.decode(raw).pdu == submit


def test_unknown_tlvs_are_kept_in_wire_order():
    """A TLV this codec does not know survives decode/encode in Options.other."""
    submit = smgp.Submit((DEST,), b"x", options=smgp.Options(other=((0x0100, b"ab"),
                                                                      (0x0033, b""))))
    assert smgp.decode(smgp.encode(submit, 1)).pdu == submit


@pytest.mark.parametrize("tlv", [
    bytes.fromhex("0002" "0002" "0101"),  # TP_udhi of length 2
    bytes.fromhex("0002" "0001" "01" "0002" "0001" "01"),  # twice
    bytes.fromhex("0003" "0015") + bytes(21),  # LinkID over 20
    bytes.fromhex("0009" "00"),  # truncated header
    bytes.fromhex("0009" "0005" "01"),  # value past the end
])
def test_bad_tlvs_are_malformed(tlv):
    """A TLV with the wrong length, repeated, or running past the end: MalformedPdu."""
    raw = smgp.encode(smgp.Submit((DEST,), b"x"), 4) + tlv
    raw = struct.pack(">L", len(raw)) + raw[4:]
    with pytest.raises(smgp.MalformedPdu) as info:
        smgp.decode(raw)
    assert (info.value.command_id, info.value.sequence) == (smgp.SUBMIT, 4)


def test_msg_id_bcd_parts_and_canonical_string():
    """MsgID is BCD: SMGW code (6 digits), MMDDHHMM, sequence (6); its canonical string
    is its 20 hex digits (SMSGate's "12345607091206000017")."""
    msg_id = smgp.MsgId.parse("12345607091206000017")
    assert msg_id.raw == bytes.fromhex("12345607091206000017")
    assert msg_id.parts == (123456, 7, 9, 12, 6, 17)
    assert smgp.MsgId.from_parts(123456, 7, 9, 12, 6, 17) == msg_id
    assert str(msg_id) == "12345607091206000017"


def test_non_bcd_msg_id_is_kept_but_has_no_parts():
    """Some SMGWs send non-BCD ids: they decode and match by their hex, and only asking
    for their parts raises InvalidField."""
    msg_id = smgp.MsgId(bytes.fromhex("6495c36ac4ea6b00000b"))
    assert str(msg_id) == "6495c36ac4ea6b00000b"
    with pytest.raises(smgp.InvalidField):
        _ = msg_id.parts
    with pytest.raises(smgp.InvalidField):
        smgp.MsgId.from_parts(1234567, 1, 1, 1, 1, 1)
    with pytest.raises(smgp.InvalidField):
        smgp.MsgId(b"short")


def test_report_in_spec_layout_round_trips_inside_deliver():
    """A Deliver with IsReport 1 carries "id:" + 10 MsgID octets + " sub:001 dlvrd:001
    submit date:... done date:... stat:DELIVRD err:000 text:" + 20 octets (122 in all)."""
    msg_id = smgp.MsgId.from_parts(123456, 11, 30, 13, 25, 42)
    report = smgp.Report(msg_id, "DELIVRD", "2611301325", "2611301326", text=b"YE")
    content = smgp.encode_report(report)
    assert content == (b"id:" + msg_id.raw + b" sub:001 dlvrd:001 submit date:2611301325"
                       b" done date:2611301326 stat:DELIVRD err:000 text:YE" + bytes(18))
    deliver = smgp.Deliver(smgp.MsgId.from_parts(123456, 11, 30, 13, 25, 43), DEST, SERVICE,
                           report=report, recv_time="20261130132536")
    raw = smgp.encode(deliver, 9)
    assert raw[12 + 10] == 1  # IsReport
    assert smgp.decode(raw).pdu == deliver


def test_report_as_a_real_smgw_sent_it():
    """SMSGate's captured report (no space before sub:, submit_date, txt:, a non-BCD id)
    reads by label: id, stat, times, err and the GBK text all come out right."""
    report = smgp.decode_report(SMSGATE_REPORT)
    assert str(report.msg_id) == "6495c36ac4ea6b00000b"
    assert (report.sub, report.dlvrd, report.submit_time, report.done_time, report.stat,
            report.err) == ("001", "001", "1807052207", "1807052207", "DELIVRD", "000")
    assert report.text.decode("gbk") == "中国0a8ae5"


@pytest.mark.parametrize("content", [b"", b"id:123", b"xx:" + bytes(10) + b" sub:001",
                                     b"id:" + bytes(10) + b" sub:001 dlvrd:001"])
def test_deliver_with_a_broken_report_is_malformed(content):
    """IsReport 1 with content that is not a report raises MalformedPdu, not a half report."""
    raw = bytearray(smgp.encode(smgp.Deliver(smgp.MsgId(), DEST, SERVICE, content=content), 5))
    raw[12 + 10] = 1
    with pytest.raises(smgp.MalformedPdu) as info:
        smgp.decode(bytes(raw))
    assert (info.value.command_id, info.value.sequence) == (smgp.DELIVER, 5)


def test_mo_deliver_round_trips_with_tlvs():
    """An MO Deliver keeps its UCS2 content, RecvTime and TLVs (TP_udhi, LinkID)."""
    mo = smgp.Deliver(smgp.MsgId.from_parts(1, 2, 3, 4, 5, 6), DEST, SERVICE,
                      content="公积金余额".encode("utf-16-be"), msg_format=8,
                      recv_time="20261130132535",
                      options=smgp.Options(link_id="abc", tp_pid=0))
    assert smgp.decode(smgp.encode(mo, 2)).pdu == mo


@pytest.mark.parametrize("pdu", [smgp.ActiveTest(), smgp.ActiveTestResp(), smgp.Exit(),
                                 smgp.ExitResp(), smgp.SubmitResp(smgp.MsgId(), 1),
                                 smgp.DeliverResp(smgp.MsgId.parse("12345607091206000017"))])
def test_small_pdus_round_trip(pdu):
    """Active_Test, Exit (and their responses, header only) and the id responses round-trip."""
    assert smgp.decode(smgp.encode(pdu, 11)).pdu == pdu
    if isinstance(pdu, (smgp.ActiveTest, smgp.Exit)):
        assert len(smgp.encode(pdu, 11)) == 12


def test_flow_control_is_system_busy():
    """Status 1 ("system busy") is the SMGW's slow-down: a throttle, not a failure."""
    assert smgp.is_flow_control(smgp.STATUS_SYSTEM_BUSY)
    assert not smgp.is_flow_control(smgp.STATUS_OK)
    assert not smgp.is_flow_control(smgp.STATUS_BAD_DEST_TERM)


@pytest.mark.parametrize("changes, error", [
    ({"service_id": "HPF1232901X"}, smgp.FieldTooLong),
    ({"dest_term_ids": ("1" * 22,)}, smgp.FieldTooLong),
    ({"content": bytes(256)}, smgp.FieldTooLong),
    ({"options": smgp.Options(link_id="L" * 21)}, smgp.FieldTooLong),
    ({"dest_term_ids": ("133 1234 5678",)}, smgp.InvalidAddress),
    ({"src_term_id": "１０６５"}, smgp.InvalidAddress),
    ({"charge_term_id": "付费"}, smgp.InvalidAddress),
    ({"service_id": "公积金"}, smgp.InvalidField),
    ({"dest_term_ids": ()}, smgp.InvalidField),
    ({"options": smgp.Options(pk_total=256)}, smgp.InvalidField),
])
def test_refused_fields(changes, error):
    """Too long raises FieldTooLong, non-digit addresses InvalidAddress, other bad values
    InvalidField; all ValueErrors and CodecErrors, never a UnicodeEncodeError."""
    base = {"dest_term_ids": (DEST,), "content": b"x", "src_term_id": SERVICE}
    base.update(changes)
    with pytest.raises(error):
        smgp.encode(smgp.Submit(**base), 1)


@pytest.mark.parametrize("cut", range(1, 40))
def test_truncated_submit_is_malformed(cut):
    """A Submit cut short anywhere (its PacketLength saying so) raises MalformedPdu."""
    raw = smgp.encode(smgp.Submit((DEST,), b"hello", src_term_id=SERVICE), 6)[:-cut]
    raw = struct.pack(">L", len(raw)) + raw[4:]
    with pytest.raises(smgp.MalformedPdu) as info:
        smgp.decode(raw)
    assert (info.value.command_id, info.value.sequence) == (smgp.SUBMIT, 6)


@pytest.mark.parametrize("length", [0, 11, smgp.MAX_LENGTH + 1, 0xFFFFFFFF])
def test_insane_packet_length_is_a_framing_error(length):
    """A PacketLength below the 12-octet header or above the limit is a FramingError."""
    with pytest.raises(smgp.FramingError):
        smgp.frame_splitter().feed(struct.pack(">LLL", length, smgp.ACTIVE_TEST, 1))


def test_splitter_and_unknown_request_id():
    """Frames come out whole from byte-at-a-time reads; an unknown RequestID is malformed."""
    frames = [smgp.encode(smgp.ActiveTest(), 1), smgp.encode(smgp.Submit((DEST,), b"x"), 2)]
    splitter = smgp.frame_splitter()
    out = []
    for byte in b"".join(frames):
        out += splitter.feed(bytes([byte]))
    assert out == frames
    with pytest.raises(smgp.MalformedPdu) as info:
        smgp.decode(struct.pack(">LLL", 12, 0x5, 3))  # Forward: not a client command
    assert (info.value.command_id, info.value.sequence) == (5, 3)


_IDS = [smgp.LOGIN, smgp.LOGIN_RESP, smgp.SUBMIT, smgp.SUBMIT_RESP, smgp.DELIVER,
        smgp.DELIVER_RESP, smgp.ACTIVE_TEST, smgp.ACTIVE_TEST_RESP, smgp.EXIT,
        smgp.EXIT_RESP, 0x99]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(_IDS))
def test_random_bodies_never_raise_anything_but_codec_error(body, request_id):
    """Whatever the body, decode returns a Frame or raises a CodecError."""
    try:
        smgp.decode(struct.pack(">LLL", 12 + len(body), request_id, 1) + body)
    except smgp.CodecError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=13, max_size=160))
def test_random_report_content_never_raises_anything_but_codec_error(content):
    """Report parsing of arbitrary content gives a Report or InvalidField, nothing else."""
    try:
        smgp.decode_report(b"id:" + content)
    except smgp.InvalidField:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=21), min_size=1,
                max_size=5), st.binary(max_size=255), st.integers(0, 255),
       st.one_of(st.none(), st.integers(0, 255)), st.one_of(st.none(),
                                                            st.text("abc123", max_size=20)))
def test_submit_round_trip_property(dests, content, fmt, udhi, link_id):
    """Any valid Submit survives encode/decode, options included."""
    submit = smgp.Submit(tuple(dests), content, msg_format=fmt,
                         options=smgp.Options(tp_udhi=udhi, link_id=link_id))
    assert smgp.decode(smgp.encode(submit, 77)).pdu == submit


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_streams_never_raise_anything_but_codec_error(stream):
    """Random bytes through the splitter and decoder raise only CodecError subclasses."""
    try:
        for raw in smgp.frame_splitter().feed(stream):
            try:
                smgp.decode(raw)
            except smgp.MalformedPdu:
                pass
    except smgp.FramingError:
        pass
