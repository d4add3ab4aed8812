"""The run-wide privacy scan recognises whole mobiles and ID numbers, and only those."""
from tests.support.privacy_scan import find_personal_data


def test_finds_mobiles_and_ids_and_reports_them_masked():
    """Hits are found and described without repeating the data."""
    hits = find_personal_data("x 13800138000 y 11010119900307123X")
    assert hits == ["ID number 110101********123X", "mobile 138****8000"]


def test_masked_and_unrelated_numbers_pass():
    """Masked values, timestamps and message ids are not hits."""
    assert find_personal_data("138****8000 110101********123X 1764172800.123 12329") == []


def test_keys_echoed_by_asterisk_are_hits():
    """Read()'s verbose line gives away what was keyed; it is reported without the keys."""
    hits = find_personal_data("-- User entered '975310'\n-- User entered nothing")
    assert hits == ["keys echoed by Asterisk (6 characters)"]
