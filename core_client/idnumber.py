"""GB 11643 citizen ID numbers: the check digit, so a mistyped number never reaches the core."""
from __future__ import annotations

import datetime as dt

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def check_digit(first17: str) -> str:
    """The 18th character for the given first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("an ID number body is 17 digits")
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS)) % 11]


def normalize(keyed: str) -> str:
    """Upper-case X; a keypad's ``*`` stands for X (keypads have no letters)."""
    return keyed.strip().replace("*", "X").replace("x", "X")


def is_valid(id_number: str) -> bool:
    """Shape, birth date and check digit of an 18-character ID number."""
    s = normalize(id_number)
    if len(s) != 18 or not s[:17].isdigit() or s[0] == "0":
        return False
    try:
        dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    return check_digit(s[:17]) == s[17]
