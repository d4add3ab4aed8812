"""Receipts from TLVs and DLR text, MO decoding, and message-id normalisation."""
from __future__ import annotations

from datetime import datetime, UTC

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.smpp import codec
from sms.carrier.receipts import (is_receipt, normalise_message_id, parse_dlr_text, parse_mo,
                          parse_receipt)

DLR = ("id:0000A1B2 sub:001 dlvrd:001 submit date:2611261805 done date:2611261806 "
       "stat:DELIVRD err:000 text:")


def _deliver(**fields):
    base = dict(source_addr="1", destination_addr="12329", esm_class=4, data_coding=0)
    base.update(fields)
    return codec.decode(codec.encode("deliver_sm", 1, **base))


def test_dlr_text_fields():
    """The key:value fields of a DLR text, including the spaced date keys."""
    fields = parse_dlr_text(DLR)
    assert fields["id"] == "0000A1B2" and fields["stat"] == "DELIVRD"
    assert fields["done date"] == "2611261806" and fields["err"] == "000"


def test_receipt_from_text():
    """Without TLVs the receipt comes from the text: id (hex here), state, done date."""
    r = parse_receipt(_deliver(short_message=DLR.encode()), "cm")
    assert r.message_id == str(0xA1B2) and r.state == "DELIVRD" and r.error is None
    assert r.done_at == datetime(2026, 11, 26, 18, 6, tzinfo=UTC) and r.smsc == "cm"


def test_tlvs_win_over_text():
    """receipted_message_id, message_state and network_error_code override the text."""
    pdu = _deliver(short_message=b"id:999 stat:DELIVRD err:000", receipted_message_id="0042",
                   message_state=5, network_error_code=b"\x03\x00\x0b")
    r = parse_receipt(pdu, "cm")
    assert (r.message_id, r.state, r.error) == ("42", "UNDELIV", "3:011")


def test_text_error_and_unknown_state():
    """A non-zero err is kept; an unknown stat becomes UNKNOWN."""
    r = parse_receipt(_deliver(short_message=b"id:7 stat:WEIRD err:162"), "cm")
    assert (r.state, r.error) == ("UNKNOWN", "162")


def test_is_receipt_by_esm_class_or_tlv():
    """esm_class 0x04 or a receipted_message_id make a receipt; a plain MO is not one."""
    assert is_receipt(_deliver(short_message=b"id:1"))
    assert not is_receipt(_deliver(esm_class=0, short_message=b"YE"))
    assert is_receipt(_deliver(esm_class=0, receipted_message_id="5"))


def test_mo_ucs2_with_udh():
    """An MO part's UDH is dropped and its UCS2 text decoded."""
    body = bytes([5, 0, 3, 1, 1, 1]) + "余额".encode("utf-16-be")
    pdu = _deliver(esm_class=0x40, data_coding=8, short_message=body)
    mo = parse_mo(pdu, "cm", datetime(2026, 1, 1, tzinfo=UTC))
    assert (mo.text, mo.source, mo.destination, mo.smsc) == ("余额", "1", "12329", "cm")


@pytest.mark.parametrize("resp, dlr, resp_form, dlr_form", [
    ("12345", "0000012345", "auto", "auto"),     # leading zeros
    ("A1B2", "a1b2", "auto", "auto"),            # case
    ("41394", "A1B2", "auto", "auto"),           # decimal response, hex DLR with letters
    ("4660", "1234", "dec", "hex"),              # hex made of digits needs the SMSC's setting
    ("31", "0x1F", "auto", "auto"),               # 0x-prefixed hex
    ("Msg-7", "Msg-7", "str", "str"),
])
def test_both_sides_normalise_to_one_form(resp, dlr, resp_form, dlr_form):
    """The submit_sm_resp id and the DLR id of one message normalise to the same string."""
    assert normalise_message_id(resp, resp_form) == normalise_message_id(dlr, dlr_form)


def test_distinct_opaque_ids_stay_distinct():
    """Opaque ids (uuids, letters beyond f) keep their identity and case."""
    a = normalise_message_id("msg-0001")
    assert a == "msg-0001" and a != normalise_message_id("msg-1")
    assert normalise_message_id("Zz9") != normalise_message_id("zz9")


def test_bad_ids():
    """Empty ids and ids not in the declared form are refused."""
    for raw, form in [("", "auto"), ("\0", "auto"), ("12G", "hex"), ("A1", "dec"), ("1", "x")]:
        with pytest.raises(ValueError):
            normalise_message_id(raw, form)


@given(st.integers(0, 2**64))
def test_decimal_and_hex_forms_of_a_number_meet(n):
    """For any id, its decimal form and its hex form (declared) normalise identically."""
    assert normalise_message_id(f"{n:020d}") == normalise_message_id(f"{n:x}", "hex") == str(n)
