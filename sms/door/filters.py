"""The door's filters before sending: pure checks of one item, each refusal a named reason.

The reasons are the ones a provincial report counts per center and client. The checks that
need the database (duplicates, opt-outs, quota) run in ``sms.door.accept`` inside the
accepting transaction; the ones here need only the item, the client and the templates.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from sms.carrier.destinations import InvalidDestination, normalise
from sms.templates import TemplateError

# Every reason an item can be refused for (the OpenAPI file lists the same).
REASONS = (
    "bad_request",  # not an object, a field of the wrong type
    "center_not_allowed",  # the client does not serve this center
    "invalid_number",  # not a mainland mobile number / no carrier segment
    "template_not_enabled",  # unknown template or not enabled for the client
    "class_not_allowed",  # the message class is not enabled for the client
    "free_text_not_allowed",
    "bad_params",  # parameters missing or invalid for the template
    "illegal_keyword",  # the text holds a word of the configured list
    "extension_not_allowed",  # a source extension the client does not own
    "duplicate",  # same destination and text, or same idempotency key, within the window
    "opted_out",
    "destination_limited",  # the destination's hourly limit for alerts and bulk
    "quota_exceeded",  # the client's daily quota
    "rate_limited",  # the client's messages per second (retry later)
)
HELD = "held_quiet_hours"  # not a refusal: accepted and held until quiet hours end

DEFAULT_WORDS = Path(__file__).with_name("banned_words.txt")


class Refused(Exception):
    """One item refused: ``reason`` is one of REASONS, the message says exactly why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def normalise_mobile(raw, formats: tuple[str, ...] = ("mainland",)) -> str:
    """The destination in the outbox's stored form (sms.carrier.destinations: mainland
    segments by default, the center's [sms.destinations] formats), or Refused."""
    if not isinstance(raw, str):
        raise Refused("invalid_number", "to must be a string")
    try:
        return normalise(raw, formats)
    except InvalidDestination as e:
        raise Refused("invalid_number", str(e)) from None


class WordList:
    """Illegal keywords, matched on the text with spaces and width folded away."""

    def __init__(self, words):
        self.words = tuple(sorted({self._fold(w) for w in words if self._fold(w)}, key=len))

    @classmethod
    def load(cls, path: Path) -> WordList:
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls(line.strip() for line in lines if line.strip() and not line.startswith("#"))

    @staticmethod
    def _fold(text: str) -> str:
        return "".join(unicodedata.normalize("NFKC", text).lower().split())

    def find(self, text: str) -> str | None:
        folded = self._fold(text)
        for word in self.words:
            if word in folded:
                return word
        return None


@dataclass(frozen=True)
class Item:
    """One message as a client asked for it, checked by ``check_item``."""

    center: str
    destination: str
    template: str | None
    params: dict
    text: str | None
    klass: str | None
    key: str | None
    reference: str | None
    ext: str


_FIELDS = {"to", "center", "template", "params", "text", "class", "key", "reference", "ext"}


def parse_item(raw, client, formats_for=lambda _center: ("mainland",)) -> Item:
    """The item's fields checked for shape and the client's rights, or Refused."""
    if not isinstance(raw, dict):
        raise Refused("bad_request", "each message must be a JSON object")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise Refused("bad_request", f"unknown fields: {', '.join(sorted(unknown))}")
    for name in ("center", "template", "text", "class", "key", "reference", "ext"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise Refused("bad_request", f"{name} must be a string")
    params = raw.get("params", {})
    if not isinstance(params, dict) or not all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in params.values()):
        raise Refused("bad_params", "params must be an object of strings or numbers")
    center = raw.get("center") or (client.center if client.center != "*" else None)
    if not center:
        raise Refused("bad_request", "center is required for a provincial client")
    if not client.serves(center):
        raise Refused("center_not_allowed", f"client may not send for center {center[:32]!r}")
    key, reference = raw.get("key"), raw.get("reference")
    if key is not None and not 1 <= len(key) <= 64:
        raise Refused("bad_request", "key must be 1 to 64 characters")
    if reference is not None and len(reference) > 64:
        raise Refused("bad_request", "reference must be at most 64 characters")
    ext = raw.get("ext") or ""
    if ext and ext not in client.source_exts:
        raise Refused("extension_not_allowed", f"source extension {ext[:8]!r} is not the client's")
    destination = normalise_mobile(raw.get("to"), formats_for(center))
    template, text = raw.get("template"), raw.get("text")
    if (template is None) == (text is None):
        raise Refused("bad_request", "give either template (with params) or text")
    if text is not None and not client.free_text:
        raise Refused("free_text_not_allowed", "client may send templates only")
    if template is not None and not client.may_use_template(template):
        raise Refused("template_not_enabled", f"template {template[:64]!r} is not enabled "
                                              "for this client")
    return Item(center, destination, template, {k: str(v) for k, v in params.items()}, text,
                raw.get("class"), key, reference, ext)


def render(item: Item, client, templates, max_free_parts: int = 5):
    """(klass, template name, text, logged params, sensitive, max_parts), or Refused."""
    if item.text is not None:
        klass = item.klass or "transaction"
        if klass not in client.classes or klass == "code":
            raise Refused("class_not_allowed", f"class {klass[:16]!r} is not enabled for free "
                                               "text of this client")
        signature = f"【{templates.signatures.get(item.center, '')}】"
        text = item.text if item.text.startswith(signature) else signature + item.text
        if not item.text.strip() or len(text) > 67 * max_free_parts:
            raise Refused("bad_params", f"text must be 1 to {67 * max_free_parts} characters")
        return klass, "free_text", text, {}, False, max_free_parts
    try:
        rendered = templates.render(item.center, item.template, item.params)
    except TemplateError as e:
        reason = "template_not_enabled" if str(e).startswith("no template") else "bad_params"
        raise Refused(reason, str(e)) from None
    if rendered.klass not in client.classes:
        raise Refused("class_not_allowed", f"template class {rendered.klass} is not enabled "
                                           "for this client")
    return (rendered.klass, rendered.template, rendered.text, rendered.logged_params,
            rendered.sensitive, rendered.max_parts)
