"""Privacy masks for personal data in logs, errors and screens (PIPL).

Mobiles keep 3+4 digits (138****8000, also when written 138 0013 8000 or
138-0013-8000), landlines with their area code 3+4 (025****5678), ID numbers
the first 6 and last 4 (110101********1234), other long account-like digit runs
the first 4 and last 4. Full-width digits count as digits. Secrets (passwords,
PINs, verification codes: ``password=…``, ``验证码104676``, ``密码：123456``) are
never shown at all.
"""
from __future__ import annotations

import re
from typing import Any

_FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789Xx")
_ID = re.compile(r"(?<![0-9A-Za-z])([1-9]\d{5})(\d{8})(\d{3}[0-9Xx*])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)((?:\+?86[ -]?)?1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<![\d.])(0\d{2,3})[ -]?(\d{3,4})[ -]?(\d{4})(?!\d)")
_SECRET_WORD = re.compile(r"(验证码|校验码|动态码|动态密码|查询密码|密码|口令|PIN码)"
                          r"(\s*(?:是|为|:|：)?\s*)([0-9A-Za-z*#]{4,12})")
_LONG_DIGITS = re.compile(r"(?<![\d.])(\d{4})(\d{4,11})(\d{4})(?!\d)")  # not a fraction
_SECRET_KV = re.compile(
    r"(?i)\b(password|passwd|pwd|pin|secret|code|otp|new_password|old_password)"
    r"(\s*[=:]\s*|\"\s*:\s*\"?)([^\s&,;\"']+)"
)
SECRET_KEYS = frozenset(
    {"password", "passwd", "pwd", "pin", "secret", "code", "otp", "new_password",
     "old_password", "verification_code", "digits_secret", "signing_key"}
)


def mask_mobile(mobile: str) -> str:
    digits = mobile.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id_number(id_number: str) -> str:
    s = id_number.strip()
    if len(s) < 10:
        return "*" * len(s)
    return s[:6] + "*" * (len(s) - 10) + s[-4:]


def mask_account(account_no: str) -> str:
    s = account_no.strip()
    if len(s) <= 8:
        return "*" * max(0, len(s) - 4) + s[-4:]
    return s[:4] + "*" * (len(s) - 8) + s[-4:]


def mask_text(text: str) -> str:
    """Mask every ID number, mobile, long digit run and key=secret pair in free text."""
    text = text.translate(_FULL_WIDTH)
    text = _SECRET_KV.sub(lambda m: f"{m.group(1)}{m.group(2)}******", text)
    text = _SECRET_WORD.sub(lambda m: f"{m.group(1)}{m.group(2)}******", text)
    text = _ID.sub(lambda m: m.group(1) + "********" + m.group(3), text)
    text = _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(3), text)
    text = _LANDLINE.sub(lambda m: m.group(1) + "****" + m.group(3), text)
    text = _LONG_DIGITS.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
    return text


def mask_value(key: str | None, value: Any) -> Any:
    """Mask a structured value: secrets by key, strings by content, containers recursively."""
    if key is not None and key.lower() in SECRET_KEYS and value is not None:
        return "******"
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(k if isinstance(k, str) else None, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_value(None, v) for v in value)
    return value
