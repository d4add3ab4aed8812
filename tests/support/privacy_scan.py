"""Finds whole mobiles and ID numbers in text, and keys echoed by Asterisk; hits are masked.

Asterisk's ``Read()`` logs ``User entered '...'`` at verbose 3: whatever was keyed
(a query password, a PIN, an ID number) in clear. No log may hold such a line.
"""
from __future__ import annotations

import re

from common.masking import mask_id_number, mask_mobile

_ID = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])"
                 r"(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])1[3-9]\d{9}(?![0-9])")
_KEYS_ECHOED = re.compile(r"User entered '([^']+)'")


def find_personal_data(text: str) -> list[str]:
    hits = [f"ID number {mask_id_number(m.group())}" for m in _ID.finditer(text)]
    hits += [f"mobile {mask_mobile(m.group())}" for m in _MOBILE.finditer(text)]
    hits += [f"keys echoed by Asterisk ({len(m.group(1))} characters)"
             for m in _KEYS_ECHOED.finditer(text)]
    return hits
