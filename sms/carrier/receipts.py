"""Delivery receipts and MO messages out of deliver_sm/data_sm, and message-id normalisation.

A receipt is read from the TLVs first (``receipted_message_id``,
``message_state``, ``network_error_code``), as Kannel does, and from the DLR text
(``id:X sub:... dlvrd:... submit date:... done date:... stat:DELIVRD err:000``)
only for what the TLVs lack.

Message ids: the id in a submit_sm_resp and the one in its DLR may differ in
form (hex vs decimal, leading zeros, case). ``normalise_message_id`` maps both to
one canonical string, the only form stored and compared:

* ``dec``: the id is a decimal number -> the number in decimal, no leading zeros.
* ``hex``: the id is a hexadecimal number (``0x`` prefix allowed) -> that number
  in decimal.
* ``str``: the id is opaque -> itself, stripped of spaces and NULs, case kept.
* ``auto`` (the default): all digits -> ``dec``; otherwise hex digits with at least
  one letter a-f, or ``0x`` and hex digits -> ``hex``; otherwise ``str``.

``auto`` cannot tell a hex id made only of digits (``1234`` = 4660) from a decimal
one; an SMSC known to send hex on one side sets ``message_id_resp`` /
``message_id_dlr`` in its ``[smsc:NAME]`` section (like Kannel's msg-id-type).
False matches are confined to one SMSC (receipts are matched on (id, smsc)), and
within it two opaque ids only collide if they denote the same number, e.g. ``0A``
and ``10``, which an SMSC issuing ids in one form never produces for two
different messages.

``auto`` stays the default because it cannot silently corrupt: an SMSC that
writes hex ids shows all-digit and lettered ids side by side, and ``IdFormWatch``
then warns naming the setting; a receipt whose address is not its part's
destination is never applied (sms.outbox.receipts), and receipts left unmatched
are reported by the outbox's sweep. A fixed form is still the right setting for
an SMSC known to use one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, UTC

from sms.carrier import text as _text
from sms.outbox.states import dlr_stat
from sms.smpp.codec import MESSAGE_STATES
from common.records import frozen_record

ID_FORMATS = ("auto", "dec", "hex", "str")
_HEX = re.compile(r"[0-9a-fA-F]+")
_DLR_FIELD = re.compile(
    r"(?i)\b(id|sub|dlvrd|submit date|done date|stat|err)\s*:\s*(\S*)")
# What the text adds when the TLVs carry the id and the state (the usual receipt).
_DLR_REST = re.compile(r"(?i)\b(done date|err)\s*:\s*(\S*)")
ESM_RECEIPT_MASK = 0x3C
ESM_SMSC_RECEIPT = 0x04


class ReceiptError(ValueError):
    """A deliver_sm claims to be a receipt but carries no message id."""


@frozen_record
class Receipt:
    message_id: str  # normalised
    state: str  # one of sms.outbox.states.DLR_STATES
    error: str | None
    done_at: datetime | None
    smsc: str
    source: str = ""  # the deliver_sm's source_addr: the part's destination, when given
    raw_id: str = ""  # the id as the SMSC wrote it


class IdFormWatch:
    """Notices, under ``auto``, that an SMSC writes hexadecimal ids: some all digits, some
    with letters a-f. ``auto`` reads the all-digit ones as decimal, so they would match the
    wrong part or none; ``note`` returns a warning, once, naming the setting to change."""

    def __init__(self, smsc: str, setting: str):
        self.smsc, self.setting = smsc, setting
        self._digits = self._letters = self.warned = False

    def note(self, raw: str) -> str | None:
        if self.warned or not raw:
            return None
        if raw.isdigit():
            self._digits = True
        elif _HEX.fullmatch(raw):
            self._letters = True
        if not (self._digits and self._letters):
            return None
        self.warned = True
        return (f"SMSC {self.smsc} writes message ids that look hexadecimal, some all digits "
                f"(read as decimal under auto, so they match the wrong part or none): set "
                f"{self.setting} = hex in [smsc:{self.smsc}]")


@dataclass(frozen=True)
class MoMessage:
    source: str
    destination: str
    text: str
    smsc: str
    received_at: datetime


def normalise_message_id(raw: str | bytes, form: str = "auto") -> str:
    """The canonical form of an SMSC message id (see the module docstring for the rule)."""
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    s = raw.strip().strip("\0").strip()
    if not s:
        raise ValueError("empty message id")
    if form in ("auto", "hex") and s[:2] in ("0x", "0X") and _HEX.fullmatch(s[2:]):
        s, form = s[2:], "hex"
    if form == "auto":
        if s.isdigit() and s.isascii():
            form = "dec"
        elif _HEX.fullmatch(s):
            form = "hex"
        else:
            form = "str"
    if form == "dec":
        if not (s.isdigit() and s.isascii()):
            raise ValueError("message id is not decimal")
        return str(int(s))
    if form == "hex":
        if not _HEX.fullmatch(s):
            raise ValueError("message id is not hexadecimal")
        return str(int(s, 16))
    if form == "str":
        return s
    raise ValueError(f"unknown message id form {form!r} (one of {', '.join(ID_FORMATS)})")


def is_receipt(pdu) -> bool:
    """A deliver_sm/data_sm is a receipt when esm_class says so or it carries receipt TLVs."""
    esm = pdu.esm_class or 0
    return (esm & ESM_RECEIPT_MASK) in (ESM_SMSC_RECEIPT, 0x08, 0x10, 0x20) or bool(
        getattr(pdu, "receipted_message_id", None))


def _s(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def parse_dlr_text(body: str, pattern: re.Pattern = _DLR_FIELD) -> dict[str, str]:
    """The ``key:value`` fields of a DLR text, keys lower-case (``submit date`` kept spaced);
    the first of a repeated key wins."""
    fields: dict[str, str] = {}
    for key, value in pattern.findall(body):
        fields.setdefault(key.lower(), value)
    return fields


def _usual_rest(body: str) -> dict[str, str] | None:
    """``done date`` and ``err`` written the usual way (lower case, no spaces around the
    colon), found by plain search: a regex over the text costs more than the rest of the
    receipt. None when either is written otherwise; the regex then reads them."""
    fields = {}
    for key in ("done date:", "err:"):
        i = body.find(key)
        if i < 0 or (i and (body[i - 1].isalnum() or body[i - 1] == "_")):
            return None
        start = i + len(key)
        end = body.find(" ", start)
        value = body[start:end] if end >= 0 else body[start:]
        fields[key[:-1]] = value.split(None, 1)[0] if value and not value.isalnum() else value
    return fields


def _done_at(raw: str | None) -> datetime | None:
    """DLR ``done date`` YYMMDDhhmm[ss], read as UTC (the SMSC's zone is not on the wire)."""
    if not raw or not raw.isdigit() or len(raw) not in (10, 12):
        return None
    try:  # by hand: strptime costs more than the rest of the receipt
        return datetime(2000 + int(raw[0:2]), int(raw[2:4]), int(raw[4:6]), int(raw[6:8]),
                        int(raw[8:10]), int(raw[10:12] or 0), tzinfo=UTC)
    except ValueError:
        return None


def parse_receipt(pdu, smsc: str, form: str = "auto") -> Receipt:
    """A receipt from a deliver_sm/data_sm: TLVs first, the DLR text for the rest."""
    body = _s(getattr(pdu, "short_message", None) or getattr(pdu, "message_payload", None))
    tlv_id = _s(getattr(pdu, "receipted_message_id", None))
    message_state = getattr(pdu, "message_state", None)
    if not body:
        fields = {}
    elif tlv_id and message_state:  # read only what the TLVs lack
        fields = _usual_rest(body) or parse_dlr_text(body, _DLR_REST)
    else:
        fields = parse_dlr_text(body)
    raw_id = tlv_id or fields.get("id", "")
    if not raw_id.strip("\0 "):
        raise ReceiptError("receipt without a message id")
    if message_state:
        state = MESSAGE_STATES.get(int(message_state), "UNKNOWN")
    else:
        state = dlr_stat(fields.get("stat", "")) or "UNKNOWN"
    error = None
    network_error = getattr(pdu, "network_error_code", None)
    if network_error and len(network_error) == 3:
        code = int.from_bytes(network_error[1:], "big")
        if code:
            error = f"{network_error[0]}:{code:03d}"
    if error is None:
        err = fields.get("err", "")
        if err and err.strip("0"):
            error = err[:16]
    return Receipt(normalise_message_id(raw_id, form), state, error,
                   _done_at(fields.get("done date")), smsc, _s(pdu.source_addr), raw_id)


def parse_mo(pdu, smsc: str, received_at: datetime) -> MoMessage:
    """An MO message: addresses and the text decoded by data_coding (UDH dropped)."""
    body = getattr(pdu, "short_message", None) or getattr(pdu, "message_payload", None) or b""
    _udh, payload = _text.split_udh(body, pdu.esm_class or 0)
    return MoMessage(source=_s(pdu.source_addr), destination=_s(pdu.destination_addr),
                     text=_text.decode(payload, pdu.data_coding or 0), smsc=smsc,
                     received_at=received_at)
