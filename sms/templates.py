"""SMS templates as data: per center, validated at load, rendered by a pure function.

Every text starts with the center's 【signature】; parameters are declared with
a type and checked before rendering, account and loan numbers are shown by their
last 4 digits, and sensitive values (verification codes) are masked in the
parameters the outbox stores.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from common.validated import Table, read_toml

TEMPLATES_DIR = Path(__file__).with_name("templates")
TYPES = ("last4", "amount", "date", "month", "int", "text", "code")
CLASSES = ("code", "reply", "transaction", "bulk")
SENSITIVE_TYPES = frozenset({"code"})
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}(0[1-9]|1[0-2])$")


class TemplateError(Exception):
    """A template file that does not load, or a render with bad parameters."""


@dataclass(frozen=True)
class Template:
    name: str
    klass: str
    text: str
    params: dict  # name -> type
    optional: frozenset
    max_parts: int


@dataclass(frozen=True)
class Rendered:
    template: str
    klass: str
    text: str
    max_parts: int
    sensitive: bool
    logged_params: dict  # what the outbox stores: sensitive values masked


_AMOUNT_DIGITS = 15  # beyond any account; also keeps quantize within Decimal's precision
_AMOUNT_LIMIT = Decimal(10) ** _AMOUNT_DIGITS


def _check_value(kind: str, name: str, value) -> str:
    raw = str(value).strip()
    if kind == "last4":
        digits = re.sub(r"\D", "", raw)
        if len(digits) < 4:
            raise TemplateError(f"{name}: an account number needs at least 4 digits")
        return digits[-4:]
    if kind == "amount":
        try:
            amount = Decimal(raw.replace(",", ""))
        except InvalidOperation:
            raise TemplateError(f"{name}: not an amount: {raw[:20]!r}") from None
        if not amount.is_finite() or abs(amount) >= _AMOUNT_LIMIT:
            raise TemplateError(f"{name}: not an amount (at most {_AMOUNT_DIGITS} digits "
                                "before the point)")
        return f"{amount.quantize(Decimal('0.01')):,}"
    if kind == "date":
        if not _DATE.match(raw[:10]):
            raise TemplateError(f"{name}: not a date YYYY-MM-DD: {raw[:20]!r}")
        return raw[:10]
    if kind == "month":
        if not _MONTH.match(raw):
            raise TemplateError(f"{name}: not a month YYYYMM: {raw[:20]!r}")
        return f"{raw[:4]}年{raw[4:]}月"
    if kind == "int":
        if not re.fullmatch(r"-?\d{1,9}", raw):
            raise TemplateError(f"{name}: not a whole number: {raw[:20]!r}")
        return str(int(raw))
    if kind == "code":
        if not re.fullmatch(r"\d{4,8}", raw):
            raise TemplateError(f"{name}: a code is 4 to 8 digits")
        return raw
    if len(raw) > 40 or any(c in raw for c in "{}【】"):
        raise TemplateError(f"{name}: text must be at most 40 characters, without braces")
    return raw


def _load_file(path: Path) -> dict[str, Template]:
    out = {}
    for name, raw in read_toml(path, TemplateError).items():
        t = Table(f"{path} [{name}]", raw, TemplateError,
                  {"class", "text", "params", "optional", "max_parts"})
        where = t.where
        klass, text = t.choice("class", CLASSES), t.get("text", str, "")
        params = dict(t.get("params", dict, {}))
        if not text.startswith("{signature}"):
            raise TemplateError(f"{where}: text must start with {{signature}}")
        for pname, kind in params.items():
            if kind not in TYPES:
                raise TemplateError(f"{where}: parameter {pname} has unknown type {kind!r}")
        used = {f for _, f, _, _ in string.Formatter().parse(text) if f}
        if used - {"signature"} != set(params):
            raise TemplateError(f"{where}: placeholders {sorted(used - {'signature'})} "
                                f"do not match params {sorted(params)}")
        optional = frozenset(t.strings("optional"))
        if not optional <= set(params):
            raise TemplateError(f"{where}: optional names unknown params")
        max_parts = t.number("max_parts", 1, 1, 10, kind=int)
        out[name] = Template(name, klass, text, params, optional, max_parts)
    return out


class TemplateSet:
    """The default templates, each center's overrides, and the centers' signatures."""

    def __init__(self, signatures: dict[str, str], directory: Path = TEMPLATES_DIR,
                 extra_dir: Path | None = None):
        self.signatures = signatures
        base = _load_file(directory / "default.toml")
        self.by_center: dict[str, dict[str, Template]] = {}
        for center in signatures:
            merged = dict(base)
            for folder in (directory, extra_dir):
                if folder is not None and (folder / f"{center}.toml").exists():
                    merged.update(_load_file(folder / f"{center}.toml"))
            self.by_center[center] = merged

    def names(self, center: str) -> list[str]:
        return sorted(self.by_center[center])

    def get(self, center: str, name: str) -> Template:
        if center not in self.by_center:
            raise TemplateError(f"unknown center {center!r} (known: "
                                f"{', '.join(sorted(self.by_center))})")
        try:
            return self.by_center[center][name]
        except KeyError:
            raise TemplateError(f"no template {name!r} for center {center!r}") from None

    def render(self, center: str, name: str, params: dict) -> Rendered:
        """Validate ``params`` against the template and return the text (a pure function)."""
        t = self.get(center, name)
        unknown = set(params) - set(t.params)
        if unknown:
            raise TemplateError(f"{name}: unknown parameters {sorted(unknown)}")
        values, logged = {}, {}
        for pname, kind in t.params.items():
            if params.get(pname) in (None, ""):
                if pname not in t.optional:
                    raise TemplateError(f"{name}: parameter {pname} is required")
                values[pname] = logged[pname] = ""
                continue
            values[pname] = _check_value(kind, pname, params[pname])
            logged[pname] = "******" if kind in SENSITIVE_TYPES else values[pname]
        text = t.text.format(signature=f"【{self.signatures[center]}】", **values)
        return Rendered(template=name, klass=t.klass, text=text, max_parts=t.max_parts,
                        sensitive=any(k in SENSITIVE_TYPES for k in t.params.values()),
                        logged_params=logged)
