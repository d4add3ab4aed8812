"""Masks for personal data: what operators may see of mobiles, ID numbers and secrets."""
from common.masking import mask_account, mask_id_number, mask_mobile, mask_text, mask_value


def test_mobile_keeps_three_and_four():
    """A mobile shows its first 3 and last 4 digits, as in 138****8000."""
    assert mask_mobile("13800138000") == "138****8000"


def test_id_number_keeps_six_and_four():
    """An ID number shows its area code and last 4 characters, check X included."""
    assert mask_id_number("11010119900307123X") == "110101********123X"


def test_account_keeps_four_and_four():
    """A personal account number shows only its first and last 4 digits."""
    assert mask_account("201100001234567") == "2011*******4567"


def test_free_text_masks_every_kind():
    """Free text loses whole mobiles, ID numbers, long digit runs and key=secret values."""
    text = ("caller 13800138000 id 11010119900307123x acct 201100001234567 "
            "password=123456 code: 654321 +8613912345678")
    masked = mask_text(text)
    assert "13800138000" not in masked and "138****8000" in masked
    assert "110101********123x" in masked
    assert "2011*******4567" in masked
    assert "123456" not in masked and "654321" not in masked
    assert "+86139****5678" in masked


def test_short_numbers_are_left_alone():
    """Amounts, times, 12329 and menu keys stay readable."""
    assert mask_text("dialled 12329 at 09:30, balance 12345.67, key 1") == \
        "dialled 12329 at 09:30, balance 12345.67, key 1"


def test_structured_secrets_by_key():
    """Structured fields named like secrets are hidden whatever their content."""
    masked = mask_value(None, {"password": "abc", "pin": 1234, "mobile": "13800138000",
                                "nested": [{"code": "999999"}]})
    assert masked == {"password": "******", "pin": "******", "mobile": "138****8000",
                      "nested": [{"code": "******"}]}


def test_fractions_are_not_account_numbers():
    """The digits after a decimal point (a retry delay, an amount) are not masked."""
    assert mask_text("retry in 2.2821234562846 seconds") == "retry in 2.2821234562846 seconds"
