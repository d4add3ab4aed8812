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


import pytest  # noqa: E402


@pytest.mark.parametrize("text,must_not_show,shown", [
    ("call 13800138000", "00138000", "138****8000"),
    ("call 138 0013 8000", "0013 8000", "138****8000"),
    ("call 138-0013-8000", "0013-8000", "138****8000"),
    ("call +86 138 0013 8000", "0013 8000", "138****8000"),
    ("call １３８００１３８０００", "00138000", "138****8000"),
    ("office 02587654321", "87654321", "****4321"),
    ("office 025-87654321", "87654321", "025****4321"),
    ("office 0755-2345678", "2345678", "0755****5678"),
    ("您的验证码104676，5分钟内有效", "104676", "验证码******"),
    ("验证码：104676", "104676", "验证码：******"),
    ("查询密码123456", "123456", "密码******"),
    ("密码 为 654321", "654321", "******"),
    ("id １１０１０１１９９００３０７１２３Ｘ", "19900307", "110101********"),
])
def test_masking_covers_every_listed_form(text, must_not_show, shown):
    """Mobiles with spaces, dashes, +86 or full-width digits, landlines with area codes,
    and codes or passwords after their Chinese names are all masked."""
    masked = mask_text(text)
    assert must_not_show not in masked and shown in masked, masked


def test_amounts_dates_and_times_survive_the_landline_rule():
    """Dates, times, amounts and short numbers are not taken for landlines."""
    text = "2026-11-30 09:30:00 balance 12345.67 menu 0 dialled 12329 port 0.0254321"
    assert mask_text(text) == text
