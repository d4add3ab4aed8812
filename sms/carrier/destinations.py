"""Destination numbers: what a center may send to, in the one form the outbox stores.

Formats a center's ``[sms.destinations]`` may allow:

* ``mainland`` (the default): a mainland China mobile, 11 digits in a known segment
  (``segments.toml``, with its date and the carrier of each segment); ``+86``,
  ``0086`` and ``86`` prefixes and separators (spaces, ``-``, ``.``, brackets) are
  dropped, so ``+86 138-0013-8000`` is stored as ``13800138000``;
* ``international``: ``+`` or ``00``, a country code other than 86, 7 to 15 digits in
  all (E.164), stored as ``+`` and the digits;
* ``service``: a carrier service number of 5 to 20 digits (``106...``, ``12329``), for
  test networks and aggregators that route by them.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from common.masking import mask_mobile

FORMATS = ("mainland", "international", "service")
_SEPARATORS = re.compile(r"[ \-.()]")  # not tabs or newlines: those are damage, not style
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit also takes full-width and others


def _load(path: Path) -> tuple[str, dict[str, str]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return data["as_of"], {str(k): v for k, v in data["segments"].items()}


SEGMENTS_AS_OF, SEGMENTS = _load(Path(__file__).with_name("segments.toml"))


class InvalidDestination(ValueError):
    """A destination none of the center's allowed formats takes; the text is safe to log."""


def carrier_of(mobile: str) -> str | None:
    """The carrier key of a normalised mainland mobile's segment (four digits win), or None."""
    return SEGMENTS.get(mobile[:4]) or SEGMENTS.get(mobile[:3])


def _mainland(digits: str) -> str | None:
    for prefix in ("0086", "86"):
        if len(digits) == 11 + len(prefix) and digits.startswith(prefix):
            digits = digits[len(prefix):]
            break
    if len(digits) == 11 and carrier_of(digits) is not None:
        return digits
    return None


def normalise(raw: str, allowed: tuple[str, ...] = ("mainland",)) -> str:
    """The stored form of ``raw`` under the first allowed format that takes it.

    Raises InvalidDestination (with the number masked) when none does.
    """
    if len(raw) == 11 and raw[:3] in SEGMENTS and _DIGITS.fullmatch(raw) and \
            "mainland" in allowed and carrier_of(raw) is not None:
        return raw  # the usual case, already in its stored form
    s = _SEPARATORS.sub("", raw or "")
    plus = s.startswith("+")
    digits = s[1:] if plus else s
    if digits and _DIGITS.fullmatch(digits):
        if "mainland" in allowed and (not plus or digits.startswith("86")):
            found = _mainland(digits)
            if found is not None:
                return found
        if "international" in allowed:
            e164 = digits if plus else digits[2:] if digits.startswith("00") else None
            if e164 is not None and 7 <= len(e164) <= 15 and not e164.startswith(("0", "86")):
                return "+" + e164
        if "service" in allowed and not plus and 5 <= len(digits) <= 20:
            return digits
    raise InvalidDestination(f"destination {_masked(s)} is not a valid "
                             f"{' or '.join(allowed)} number")


def _masked(s: str) -> str:
    """Masked, short and on one line: the number may be garbage, or a whole mobile in
    another form."""
    s = "".join(c if c.isprintable() else "?" for c in s[:24])
    return mask_mobile(s) if s else "(empty)"
