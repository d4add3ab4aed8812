"""Reading data files that are validated at load (the INI file, menus, SMS templates, the
prompt catalog): one way to read a TOML file, to read typed values from one of its
tables, and to word a problem, so that every error names the file, the table and the
key, as ``FILE [table] key: what is wrong``.

Each kind of file keeps its own error class (ConfigError, MenuError, TemplateError,
CatalogError), which its callers catch; the helpers take it as ``error``.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any
from collections.abc import Callable

ErrorFactory = Callable[[str], Exception]


def out_of_range(value: float, lo: float | None, hi: float | None) -> str | None:
    """The problem with a number outside [lo, hi], or None."""
    if lo is not None and value < lo:
        return f"must be at least {lo}, not {value}"
    if hi is not None and value > hi:
        return f"must be at most {hi}, not {value}"
    return None


def read_toml(path: str | Path, error: ErrorFactory) -> dict:
    """A TOML file's tables, or ``error("FILE: ...")`` when it cannot be read or parsed."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise error(f"{path}: cannot be read: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid TOML: {e}") from None


class Table:
    """Typed reads from one decoded table; ``where`` says which (``FILE [name]``).
    With ``allowed``, a key outside it is refused at once: a typo must not pass."""

    def __init__(self, where: str, table: Any, error: ErrorFactory,
                 allowed: set[str] | None = None):
        self.where, self.make_error = where, error
        if not isinstance(table, dict):
            raise self.error("must be a table")
        unknown = sorted(set(table) - allowed) if allowed is not None else []
        if unknown:
            raise self.error(f"unknown key(s) {', '.join(unknown)}")
        self.table = table

    def error(self, problem: str, key: str | None = None) -> Exception:
        return self.make_error(f"{self.where}{' ' + key if key else ''}: {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        """The value, or ``default`` when absent; a value of another type is refused
        (a TOML boolean is not a number)."""
        value = self.table.get(key, default)
        if value is not None and (not isinstance(value, kind)
                                  or isinstance(value, bool) and kind is not bool):
            raise self.error("has the wrong type", key)
        return value

    def number(self, key: str, default: float, lo: float | None = None,
               hi: float | None = None, kind: type | tuple[type, ...] = (int, float)) -> Any:
        value = self.get(key, kind, default)
        problem = out_of_range(value, lo, hi)
        if problem:
            raise self.error(problem, key)
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise self.error(f"must be one of {', '.join(choices)}", key)
        return value

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.table.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error("must be a list of strings", key)
        return tuple(value)
