"""The prompt catalog: every prompt id callers may hear, its Mandarin and English
text (what the default audio is synthesised from) and where it is used.

Loaded from every ``prompts/catalog/*.toml`` and validated at load, so a
duplicate id or a missing translation is an error naming the file, never a
silent gap on a call::

    [prompt."menu/main"]
    zh = "您好，欢迎致电12329住房公积金服务热线……"
    en = "Welcome to the 12329 housing provident fund hotline ..."
    used_by = ["ivr.menu.main"]

A prompt may also be a top-level table (``["menu/main"]``) and say where it is
used in one string (``used = "menu main"``); ivr.toml and numbers.toml do.

Numbering: administrators choose a prompt on the phone by its catalog number,
the 1-based position of its id in sorted order, keyed as ``number_width``
digits (``007``). ``hotline prompts list`` prints the numbers; they shift
when ids are added or removed, so print the list again after a catalog change.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from common.validated import Table, read_toml

LANGUAGES = ("zh", "en")
CATALOG_DIR = Path(__file__).with_name("catalog")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$")
_KEYS = {"zh", "en", "used_by", "used"}


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names the file and prompt."""


@dataclass(frozen=True)
class Prompt:
    id: str
    text: dict[str, str]  # lang -> text
    used_by: tuple[str, ...]
    source: str  # the file it came from

    def text_sha256(self, lang: str) -> str:
        """Changes when the text does: build-defaults re-synthesises only then."""
        return hashlib.sha256(f"{lang}\0{self.text[lang]}".encode()).hexdigest()


@dataclass(frozen=True)
class Catalog:
    prompts: dict[str, Prompt]

    def ids(self) -> list[str]:
        return sorted(self.prompts)

    @property
    def number_width(self) -> int:
        return max(3, len(str(len(self.prompts))))

    def numbered(self) -> list[tuple[str, Prompt]]:
        """(number, prompt) in number order, numbers zero-padded to ``number_width``."""
        w = self.number_width
        return [(f"{i:0{w}d}", self.prompts[pid]) for i, pid in enumerate(self.ids(), 1)]

    def by_number(self, digits: str) -> Prompt | None:
        if not digits.isdigit():
            return None
        i = int(digits)
        ids = self.ids()
        return self.prompts[ids[i - 1]] if 1 <= i <= len(ids) else None

    def number_of(self, prompt_id: str) -> str:
        return f"{self.ids().index(prompt_id) + 1:0{self.number_width}d}"


def parse(data: dict, source: str, into: dict[str, Prompt]) -> None:
    """Add one file's prompts to ``into``, refusing duplicates and incomplete entries."""
    table = {k: v for k, v in data.items() if k != "prompt"}
    nested = data.get("prompt", {})
    if not isinstance(nested, dict):
        raise CatalogError(f"{source}: 'prompt' must be a table")
    for pid, raw in nested.items():
        if pid in table:
            raise CatalogError(f"{source}: prompt {pid!r} defined twice")
        table[pid] = raw
    for pid, raw in table.items():
        where = f"{source}: prompt {pid!r}"
        if not _ID.match(pid):
            raise CatalogError(f"{where}: id must be lower-case words joined by '/'")
        if pid in into:
            raise CatalogError(f"{where}: already defined in {into[pid].source}")
        raw = Table(where, raw, CatalogError, _KEYS).table
        text = {}
        for lang in LANGUAGES:
            value = raw.get(lang)
            if not isinstance(value, str) or not value.strip():
                raise CatalogError(f"{where}: needs a non-empty {lang!r} text")
            text[lang] = value.strip()
        if "used" in raw and "used_by" in raw:
            raise CatalogError(f"{where}: give either used or used_by, not both")
        used_by = raw.get("used_by", [raw["used"]] if "used" in raw else [])
        if not isinstance(used_by, list) or not all(isinstance(u, str) for u in used_by):
            raise CatalogError(f"{where}: used_by must be a list of strings (used: one string)")
        into[pid] = Prompt(pid, text, tuple(used_by), source)


def load(directory: str | Path = CATALOG_DIR) -> Catalog:
    """Every ``*.toml`` in the folder, validated together."""
    prompts: dict[str, Prompt] = {}
    files = sorted(Path(directory).glob("*.toml"))
    if not files:
        raise CatalogError(f"{directory}: no catalog files")
    for path in files:
        parse(read_toml(path, CatalogError), str(path), prompts)
    return Catalog(prompts)
