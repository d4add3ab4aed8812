"""The SMPP codec: round trips through smpplib, framing limits, malformed bodies, field lengths."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms.smpp import codec


def test_submit_sm_round_trip_keeps_every_field():
    """A submit_sm encoded and decoded again carries the same addresses, body and flags."""
    body = "公积金".encode("utf-16-be")
    raw = codec.encode("submit_sm", 42, source_addr="12329", destination_addr="10690001",
                       short_message=body, data_coding=8, esm_class=0x40,
                       registered_delivery=1, priority_flag=2)
    pdu = codec.decode(raw)
    assert (pdu.command, pdu.sequence, pdu.status) == ("submit_sm", 42, 0)
    assert pdu.source_addr == b"12329" and pdu.destination_addr == b"10690001"
    assert pdu.short_message == body
    assert (pdu.data_coding, pdu.esm_class, pdu.registered_delivery, pdu.priority_flag) == \
        (8, 0x40, 1, 2)


def test_response_with_status_round_trips():
    """A response carries its command_status and sequence; a generic_nack is header only."""
    pdu = codec.decode(codec.encode("submit_sm_resp", 7, status=codec.ESME_RTHROTTLED,
                                    message_id=""))
    assert (pdu.command, pdu.status, pdu.sequence) == ("submit_sm_resp", 0x58, 7)
    nack = codec.generic_nack(9, codec.ESME_RINVCMDID)
    assert len(nack) == 16 and codec.header(nack) == (16, 0x80000000, 3, 9)


def test_deliver_sm_receipt_tlvs_decode():
    """receipted_message_id and message_state TLVs survive the round trip."""
    raw = codec.encode("deliver_sm", 3, esm_class=4, source_addr="1", destination_addr="2",
                       short_message=b"id:1 stat:DELIVRD", receipted_message_id="ABC",
                       message_state=2)
    pdu = codec.decode(raw)
    assert pdu.receipted_message_id == b"ABC" and pdu.message_state == 2


def test_over_long_c_string_is_refused_not_truncated():
    """smpplib would silently cut a 21+ digit address; the codec raises FieldTooLong."""
    with pytest.raises(codec.FieldTooLong):
        codec.encode("submit_sm", 1, source_addr="1", destination_addr="9" * 21,
                     short_message=b"x")
    with pytest.raises(codec.FieldTooLong):
        codec.encode("submit_sm", 1, source_addr="1", destination_addr="2",
                     short_message=b"x" * 255)


def test_splitter_reassembles_frames_from_any_chunking():
    """Frames split across reads or packed together come out whole and in order."""
    frames = [codec.encode("enquire_link", i) for i in range(1, 4)]
    stream = b"".join(frames)
    splitter = codec.FrameSplitter()
    out = []
    for i in range(0, len(stream), 5):
        out += splitter.feed(stream[i:i + 5])
    assert out == frames and splitter.buffered == 0


@pytest.mark.parametrize("length", [0, 15, 64 * 1024 + 1, 0xFFFFFFFF])
def test_insane_command_length_is_a_framing_error(length):
    """A length below 16 or above 64 KiB cannot be resynchronised: FramingError."""
    with pytest.raises(codec.FramingError):
        codec.FrameSplitter().feed(struct.pack(">LLLL", length, 0x15, 0, 1))


def test_unknown_command_is_malformed_with_invcmdid():
    """An unknown command_id with a sane length is nacked with ESME_RINVCMDID."""
    raw = struct.pack(">LLLL", 16, 0x00000777, 0, 5)
    with pytest.raises(codec.MalformedPdu) as info:
        codec.decode(raw)
    assert (info.value.status, info.value.sequence) == (codec.ESME_RINVCMDID, 5)


@pytest.mark.parametrize("body", [
    b"\x00\x01\x01123",  # source_addr without its NUL
    b"\x00\x01\x011\x00\x01\x012\x00" + bytes(8) + b"\x08\x00\x50abc",  # sm_length past the end
    b"\x00\x01\x011\x00\x01\x012\x00" + bytes(8) + b"\x08\x00\x00\x04\x27\x00\x05\x02",  # bad TLV
    b"\x00\x01\x011\x00\x01\x012\x00" + bytes(8) + b"\x08\x00\x00\x04",  # truncated TLV header
])
def test_inconsistent_body_is_malformed_with_invmsglen(body):
    """A submit_sm whose body lies about its lengths is nacked with ESME_RINVMSGLEN."""
    raw = struct.pack(">LLLL", 16 + len(body), 0x04, 0, 11) + body
    with pytest.raises(codec.MalformedPdu) as info:
        codec.decode(raw)
    assert (info.value.status, info.value.sequence) == (codec.ESME_RINVMSGLEN, 11)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=80), st.sampled_from([0x04, 0x05, 0x09, 0x80000004,
                                                           0x80000009, 0x103, 0x15]))
def test_random_bodies_never_raise_anything_but_malformed(body, command_id):
    """Whatever the body, decode returns a PDU or raises MalformedPdu, never another error."""
    raw = struct.pack(">LLLL", 16 + len(body), command_id, 0, 1) + body
    try:
        codec.decode(raw)
    except codec.MalformedPdu:
        pass


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="0123456789", min_size=1, max_size=20), st.binary(max_size=254),
       st.integers(1, 0x7FFFFFFF))
def test_submit_round_trip_property(destination, body, seq):
    """Any valid destination, body and sequence survive encode/decode."""
    pdu = codec.decode(codec.encode("submit_sm", seq, source_addr="12329",
                                    destination_addr=destination, short_message=body,
                                    data_coding=8))
    assert pdu.sequence == seq and pdu.destination_addr.decode() == destination
    assert (pdu.short_message or b"") == body


_FIELDS = st.fixed_dictionaries({
    "source_addr": st.text(alphabet="0123456789ABC", max_size=20),
    "destination_addr": st.text(alphabet="0123456789", max_size=20),
    "short_message": st.binary(max_size=254),
    "data_coding": st.sampled_from([0, 3, 8]),
    "esm_class": st.sampled_from([0, 0x40]),
    "registered_delivery": st.integers(0, 1),
    "priority_flag": st.integers(0, 3),
    "source_addr_ton": st.integers(0, 6),
    "dest_addr_ton": st.integers(0, 1),
    "dest_addr_npi": st.integers(0, 1),
}, optional={
    "validity_period": st.sampled_from(["000000001000000R", "261127120000000+"]),
    "sar_msg_ref_num": st.integers(0, 0xFFFF),
    "sar_total_segments": st.integers(1, 255),
    "sar_segment_seqnum": st.integers(1, 255),
})


@settings(max_examples=300, deadline=None)
@given(_FIELDS, st.integers(1, 0x7FFFFFFF))
def test_fast_submit_sm_is_byte_identical_to_smpplib(fields, seq):
    """The hot-path submit_sm encoder produces exactly smpplib's bytes for the same fields."""
    slow = codec.make_pdu("submit_sm", client=codec._Seq(seq), **fields).generate()
    assert codec.encode_submit_sm(seq, **fields) == slow


@settings(max_examples=300, deadline=None)
@given(_FIELDS, st.integers(1, 0x7FFFFFFF), st.sampled_from(["submit_sm", "deliver_sm"]))
def test_fast_decode_agrees_with_smpplib(fields, seq, command):
    """Decoding through the fast path gives the same field values as smpplib's parser."""
    raw = codec.make_pdu(command, client=codec._Seq(seq), **fields).generate()
    fast = codec.decode(raw)
    slow = codec.make_pdu(command, client=codec._Seq(seq), allow_unknown_opt_params=True)
    slow.parse(raw)
    for name in ("sequence", "command", "source_addr", "destination_addr", "esm_class",
                 "data_coding", "registered_delivery", "priority_flag", "short_message",
                 "source_addr_ton", "source_addr_npi", "dest_addr_ton", "dest_addr_npi",
                 "protocol_id", "sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum"):
        assert getattr(fast, name) == getattr(slow, name), name


def test_fast_response_decode():
    """submit_sm_resp with and without a body, and bodyless PDUs, decode on the fast path."""
    pdu = codec.decode(codec.encode("submit_sm_resp", 5, message_id="0A1B"))
    assert isinstance(pdu, codec.Pdu) and pdu.message_id == b"0A1B" and pdu.sequence == 5
    empty = codec.decode(struct.pack(">LLLL", 16, 0x80000004, 0x58, 6))
    assert empty.message_id is None and empty.status == 0x58
    assert codec.decode(codec.encode("enquire_link", 9)).command == "enquire_link"
    assert codec.decode(codec.generic_nack(3, 1)).command == "generic_nack"


def test_fast_path_refuses_long_fields():
    """The hot-path encoder refuses over-long addresses and bodies too."""
    with pytest.raises(codec.FieldTooLong):
        codec.encode_submit_sm(1, destination_addr="1" * 21)
    with pytest.raises(codec.FieldTooLong):
        codec.encode_submit_sm(1, short_message=b"x" * 255)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789abcdef", min_size=1, max_size=64), st.integers(0, 8),
       st.booleans(), st.integers(1, 0x7FFFFFFF))
def test_fast_receipt_decode_agrees_with_smpplib(message_id, state, with_error, seq):
    """A receipt deliver_sm with its TLVs decodes on the fast path to smpplib's values."""
    fields = dict(source_addr="13900000001", destination_addr="12329", esm_class=4,
                  short_message=b"id:1 stat:DELIVRD err:000", receipted_message_id=message_id,
                  message_state=state)
    if with_error:
        fields["network_error_code"] = b"\x01\x00\x05"
    raw = codec.make_pdu("deliver_sm", client=codec._Seq(seq), **fields).generate()
    fast = codec.decode(raw)
    slow = codec.make_pdu("deliver_sm", client=codec._Seq(seq), allow_unknown_opt_params=True)
    slow.parse(raw)
    assert isinstance(fast, codec.Pdu)
    for name in ("sequence", "source_addr", "esm_class", "short_message",
                 "receipted_message_id", "message_state", "network_error_code"):
        assert getattr(fast, name) == getattr(slow, name), name


def test_fast_response_encode_is_byte_identical_to_smpplib():
    """deliver_sm_resp and the keepalive PDUs built by hand match smpplib's bytes."""
    for name in ("deliver_sm_resp", "data_sm_resp", "enquire_link_resp", "unbind_resp",
                 "enquire_link", "unbind"):
        for status in (0, 0x64):
            slow = codec.make_pdu(name, client=codec._Seq(7), status=status).generate()
            assert codec.encode(name, 7, status=status) == slow, name


def test_fast_submit_sm_resp_matches_smpplib():
    """The fast submit_sm_resp (the door's SMPP server sends one per submit) is byte for byte
    smpplib's, with and without a message id, and refuses an over-long id."""
    import pytest as _pytest
    from smpplib.smpp import make_pdu

    from sms.smpp import codec as c

    for mid in ("", "1", "4294967295", "A" * 64):
        slow = make_pdu("submit_sm_resp", client=c._Seq(7), message_id=mid).generate()
        assert c.encode("submit_sm_resp", 7, message_id=mid) == slow
    with _pytest.raises(c.FieldTooLong):
        c.encode("submit_sm_resp", 7, message_id="A" * 65)
