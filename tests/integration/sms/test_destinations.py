"""Destinations are checked and normalised at accept, per center, at every door."""
from __future__ import annotations

import pytest

from sms.carrier.destinations import (
    SEGMENTS,
    SEGMENTS_AS_OF,
    InvalidDestination,
    carrier_of,
    normalise,
)
from sms.outbox.records import BadDestination, BadIdempotencyKey
from sms.outbox.states import QUEUED
from tests.support.outbox import (  # noqa: F401
    clock,
    db,
    make_config,
    msg,
    outbox,
    result,
    states,
)

BAD = ["", "abc", "12345", "1380013800\n0", "9" * 40, "一三八", "14012345678", "10690000123",
       "+4915112345678", "２３８００１３８０００"]


@pytest.mark.parametrize("raw", ["13800138000", "+86 138-0013-8000", "008613800138000",
                                 "8613800138000", "(138) 0013.8000"])
def test_mainland_forms_normalise_to_eleven_digits(raw):
    """+86, 0086, 86 and separators are dropped: one stored form per mobile."""
    assert normalise(raw) == "13800138000"


@pytest.mark.parametrize("raw", BAD)
def test_the_issue_destinations_are_not_mainland_mobiles(raw):
    """Empty, letters, short, with a newline, 40 digits, Chinese numerals, IoT segments,
    service and foreign numbers: none is a mainland mobile; the error masks the number."""
    with pytest.raises(InvalidDestination) as e:
        normalise(raw)
    assert "138001" not in str(e.value) and "999999999" not in str(e.value)
    assert "\n" not in str(e.value)


def test_other_formats_only_where_allowed():
    """A center may allow international and service numbers besides mainland mobiles."""
    both = ("mainland", "international", "service")
    assert normalise("+49 151 12345678", both) == "+4915112345678"
    assert normalise("004915112345678", both) == "+4915112345678"
    assert normalise("10690000123", both) == "10690000123"
    assert normalise("+86 138 0013 8000", both) == "13800138000"
    with pytest.raises(InvalidDestination):
        normalise("1380013800\n0", both)


def test_segments_are_data_with_a_date_and_a_carrier():
    """The segment table (sms/carrier/segments.toml) says when it was checked and who holds
    each segment; a four-digit block overrides its segment."""
    assert SEGMENTS_AS_OF >= "2025-01-01" and len(SEGMENTS) > 50
    assert carrier_of("13900000000") == "mobile" and carrier_of("13490000000") == "satellite"
    assert carrier_of("14000000000") is None


@pytest.mark.parametrize("raw", BAD)
def test_the_python_api_refuses_a_bad_destination(outbox, db, raw):
    """Outbox.accept fails with BadDestination and stores nothing."""
    with pytest.raises(BadDestination):
        result(outbox.accept(msg("k", dest=raw)))
    assert states(db) == {}


def test_accept_stores_the_normalised_form(outbox, db):
    """+86 138-0013-8000 is stored as 13800138000, so dedupe, opt-outs and limits see one number."""
    a = result(outbox.accept(msg("k", dest="+86 138-0013-8000")))
    with db.sessions() as s:
        from sms.outbox.sql import M
        assert s.execute(M.select().with_only_columns(M.c.destination)).scalar() == "13800138000"
    assert states(db) == {a.message_id: QUEUED}


def test_a_center_allowing_service_numbers_accepts_them(db, clock):
    """The per-center setting decides: demo takes service numbers, other centers do not."""
    from sms.outbox.outbox import Outbox
    from sms.outbox.testing import split_encode

    box = Outbox(db, clock, make_config(destinations={"demo": ("mainland", "service")}),
                 encode=split_encode)
    assert not result(box.accept(msg("a", dest="10690000123"))).duplicate
    with pytest.raises(BadDestination):
        result(box.accept(msg("b", dest="10690000123", center="other")))


def test_idempotency_keys_are_checked_against_the_column(outbox, db):
    """A 500-character key is refused on every database, not truncated or stored whole."""
    with pytest.raises(BadIdempotencyKey):
        result(outbox.accept(msg("k" * 500)))
    assert not result(outbox.accept(msg("k" * 128))).duplicate


def test_one_bad_destination_fails_only_itself_in_a_batch(outbox, db):
    """accept_blocking (the CLI's door) gives each message its own result."""
    good, bad = outbox.accept_blocking([msg("a"), msg("b", dest="abc")])
    assert not good.duplicate and isinstance(bad, BadDestination)
