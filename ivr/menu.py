"""IVR menus as data: one TOML file per center (or ``default.toml``), validated at load.

A menu file is a graph of named nodes. Administrators change wording, keys,
timeouts, service hours and on/off switches there, not in code; every mistake
is reported at load as ``FILE: node 'NAME': what is wrong``.

Node kinds:

* ``menu``: prompts said with barge-in, keys to other nodes;
  ``*`` repeats, the back key returns to the previous menu, the main key to the
  main menu; invalid keys and silence re-prompt with their own wording, and after
  ``max_failures`` the call goes to ``on_failures`` (an agent or goodbye node).
* ``notice``: a recorded notice, not interruptible unless ``barge_in = true``,
  then ``next``.
* ``language``: switches the channel language, then ``next``.
* ``action``: runs a flow (balance, transfer, ...), then ``next``.

Any node may carry ``enabled = false`` or ``hours``/``days``: a caller choosing
a closed item hears ``closed_prompts`` and stays in the menu.
"""
from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from common.daily_window import EVERY_DAY, DailyWindow

KINDS = ("menu", "notice", "language", "action")
LANGUAGES = ("zh", "en")
_PROMPT = re.compile(r"^[a-z0-9][a-z0-9_/-]*$")
_KEY = re.compile(r"^[0-9#*]+$")
_MENU_KEYS = {
    "start", "main", "repeat_key", "back_key", "main_key", "max_failures", "on_failures",
    "first_digit_timeout", "inter_digit_timeout", "invalid_prompts", "silence_prompts",
    "closed_prompts",
}
_NODE_KEYS = {
    "kind", "prompts", "keys", "next", "flow", "lang", "barge_in", "max_digits",
    "first_digit_timeout", "inter_digit_timeout", "invalid_prompts", "silence_prompts",
    "closed_prompts", "max_failures", "on_failures", "default", "enabled", "hours", "days",
}
_INPUT_KEYS = {"prompts", "invalid_prompts", "silence_prompts", "first_digit_timeout",
               "inter_digit_timeout", "max_digits", "max_failures"}
INPUTS = ("id", "password", "new_password", "confirm_password", "survey")


class MenuError(ValueError):
    """A menu file that cannot be used; the message names the file and node."""


@dataclass(frozen=True)
class Input:
    """How one kind of keyed input is collected (ID number, password, survey answer)."""

    prompts: tuple[str, ...]
    invalid_prompts: tuple[str, ...]
    silence_prompts: tuple[str, ...]
    first_digit_timeout: float
    inter_digit_timeout: float
    max_digits: int
    max_failures: int


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    prompts: tuple[str, ...] = ()
    keys: dict[str, str] = field(default_factory=dict)
    next: str | None = None
    flow: str | None = None
    lang: str | None = None
    barge_in: bool = False
    max_digits: int = 1
    first_digit_timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    invalid_prompts: tuple[str, ...] = ()
    silence_prompts: tuple[str, ...] = ()
    closed_prompts: tuple[str, ...] = ()
    max_failures: int = 3
    on_failures: str | None = None
    default: str | None = None
    enabled: bool = True
    hours: DailyWindow = DailyWindow()  # when the item is open

    def is_open(self, now: dt.datetime) -> bool:
        return self.enabled and self.hours.contains(now)


@dataclass(frozen=True)
class Menu:
    source: str
    start: str
    main: str
    repeat_key: str
    back_key: str
    main_key: str
    nodes: dict[str, Node]
    inputs: dict[str, Input]

    def prompts(self) -> set[str]:
        """Every prompt id this menu may play (for ``hotline prompts check``)."""
        out: set[str] = set()
        for n in self.nodes.values():
            out.update(n.prompts, n.invalid_prompts, n.silence_prompts, n.closed_prompts)
        for i in self.inputs.values():
            out.update(i.prompts, i.invalid_prompts, i.silence_prompts)
        return out


def load(path: str | Path, flows: Iterable[str]) -> Menu:
    """Read and validate one menu file; ``flows`` are the flow names actions may use."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MenuError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise MenuError(f"{path}: not valid TOML: {e}") from None
    return parse(data, str(path), set(flows))


def load_for_center(menus_dir: str | Path, center: str, flows: Iterable[str]) -> Menu:
    """The center's own file ``CENTER.toml`` if present, else ``default.toml``."""
    menus_dir = Path(menus_dir)
    own = menus_dir / f"{center}.toml"
    return load(own if own.exists() else menus_dir / "default.toml", flows)


class _Reader:
    """Typed reads from one TOML table, with errors naming where it is."""

    def __init__(self, source: str, where: str, table: Any, allowed: set[str]):
        self.source, self.where = source, where
        if not isinstance(table, dict):
            raise self.error("must be a table")
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.error(f"unknown field {unknown[0]!r}")
        self.table = table

    def error(self, problem: str) -> MenuError:
        return MenuError(f"{self.source}: {self.where}: {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = self.table.get(key, default)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)
                                  and kind is not bool):
            raise self.error(f"{key} has the wrong type")
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self.get(key, (int, float), default)
        if not 0.5 <= value <= 60:
            raise self.error(f"{key} must be between 0.5 and 60 seconds")
        return float(value)

    def count(self, key: str, default: int, lo: int, hi: int) -> int:
        value = self.get(key, int, default)
        if not lo <= value <= hi:
            raise self.error(f"{key} must be between {lo} and {hi}")
        return value

    def prompts(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.table.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise self.error(f"{key} must be a list of prompt ids")
        for p in value:
            if not _PROMPT.match(p):
                raise self.error(f"{key}: {p!r} is not a prompt id like ivr/main-menu")
        return tuple(value)

    def key(self, name: str, default: str) -> str:
        value = self.get(name, str, default)
        if value and (len(value) != 1 or not _KEY.match(value)):
            raise self.error(f"{name} must be one of 0-9, * or #")
        return value


def parse(data: dict, source: str, flows: set[str]) -> Menu:
    """Validate a decoded menu file; see the module docstring for the format."""
    top = _Reader(source, "file", data, {"menu", "nodes", "inputs"})
    m = _Reader(source, "[menu]", top.get("menu", dict, {}), _MENU_KEYS)
    repeat_key, back_key, main_key = (m.key("repeat_key", "*"), m.key("back_key", "9"),
                                      m.key("main_key", "8"))
    if len({k for k in (repeat_key, back_key, main_key) if k}) != \
            len([k for k in (repeat_key, back_key, main_key) if k]):
        raise m.error("repeat_key, back_key and main_key must differ")
    defaults = {
        "first_digit_timeout": m.seconds("first_digit_timeout", 5.0),
        "inter_digit_timeout": m.seconds("inter_digit_timeout", 3.0),
        "max_failures": m.count("max_failures", 3, 1, 10),
        "on_failures": m.get("on_failures", str, None),
        "invalid_prompts": m.prompts("invalid_prompts", ("ivr/invalid-key",)),
        "silence_prompts": m.prompts("silence_prompts", ("ivr/no-input",)),
        "closed_prompts": m.prompts("closed_prompts", ("ivr/service-closed",)),
    }
    raw_nodes = top.get("nodes", dict, {})
    if not raw_nodes:
        raise top.error("no [nodes]")
    nodes = {name: _node(source, name, raw, defaults, flows) for name, raw in raw_nodes.items()}
    start, main = m.get("start", str, "main"), m.get("main", str, "main")
    for label, target in (("start", start), ("main", main)):
        if target not in nodes:
            raise m.error(f"{label} names unknown node {target!r}")
    if nodes[main].kind != "menu":
        raise m.error(f"main node {main!r} must be a menu")
    reserved = {k for k in (repeat_key, back_key, main_key) if k}
    for node in nodes.values():
        where = f"node {node.name!r}"
        for key, target in node.keys.items():
            if target not in nodes:
                raise MenuError(f"{source}: {where}: key {key!r} leads to unknown node {target!r}")
            if key in reserved:
                raise MenuError(f"{source}: {where}: key {key!r} is the repeat/back/main key")
        for label in ("next", "on_failures", "default"):
            target = getattr(node, label)
            if target is not None and target not in nodes:
                raise MenuError(f"{source}: {where}: {label} names unknown node {target!r}")
    _check_no_silent_cycle(source, nodes)
    raw_inputs = top.get("inputs", dict, {})
    inputs = {}
    for name in INPUTS:
        r = _Reader(source, f"input {name!r}", raw_inputs.get(name, {}), _INPUT_KEYS)
        if "prompts" in r.table and not r.table["prompts"]:
            raise r.error("prompts may not be empty")
        inputs[name] = Input(
            prompts=r.prompts("prompts", (f"ivr/enter-{name.replace('_', '-')}",)),
            invalid_prompts=r.prompts("invalid_prompts", (f"ivr/invalid-{name.replace('_', '-')}",)),
            silence_prompts=r.prompts("silence_prompts", defaults["silence_prompts"]),
            first_digit_timeout=r.seconds("first_digit_timeout", 8.0),
            inter_digit_timeout=r.seconds("inter_digit_timeout", 4.0),
            # Room for the closing #: a # left over would end the next input empty.
            max_digits=r.count("max_digits", 19 if name == "id" else 7 if "password" in name
                               else 1, 1, 32),
            max_failures=r.count("max_failures", 3, 1, 10),
        )
    unknown_inputs = sorted(set(raw_inputs) - set(INPUTS))
    if unknown_inputs:
        raise top.error(f"unknown input {unknown_inputs[0]!r}; known: {', '.join(INPUTS)}")
    return Menu(source=source, start=start, main=main, repeat_key=repeat_key,
                back_key=back_key, main_key=main_key, nodes=nodes, inputs=inputs)


def _node(source: str, name: str, raw: Any, defaults: dict, flows: set[str]) -> Node:
    r = _Reader(source, f"node {name!r}", raw, _NODE_KEYS)
    kind = r.get("kind", str, "menu")
    if kind not in KINDS:
        raise r.error(f"kind must be one of {', '.join(KINDS)}")
    keys = r.get("keys", dict, {})
    for key, target in keys.items():
        if not _KEY.match(key) or not isinstance(target, str):
            raise r.error(f"key {key!r} must be digits mapped to a node name")
    max_digits = r.count("max_digits", max((len(k) for k in keys), default=1), 1, 32)
    if any(len(k) > max_digits for k in keys):
        raise r.error("a key is longer than max_digits")
    prompts = r.prompts("prompts")
    flow, lang, nxt = r.get("flow", str, None), r.get("lang", str, None), r.get("next", str, None)
    if kind == "menu" and (not keys or not prompts):
        raise r.error("a menu needs prompts and keys")
    if kind == "notice" and not prompts:
        raise r.error("a notice needs prompts")
    if kind == "action" and flow not in flows:
        raise r.error(f"flow {flow!r} is not one of {', '.join(sorted(flows))}")
    if kind != "action" and flow is not None:
        raise r.error("only action nodes have a flow")
    if kind == "language" and lang not in LANGUAGES:
        raise r.error(f"lang must be one of {', '.join(LANGUAGES)}")
    if kind in ("notice", "language") and nxt is None:
        raise r.error(f"a {kind} node needs next")
    if kind != "menu" and keys:
        raise r.error("only menus have keys")
    if kind != "notice" and "barge_in" in r.table:
        raise r.error("barge_in applies to notices (menus always take keys over their prompts)")
    return Node(
        name=name, kind=kind, prompts=prompts, keys=dict(keys), next=nxt, flow=flow, lang=lang,
        barge_in=r.get("barge_in", bool, False),
        max_digits=max_digits,
        first_digit_timeout=r.seconds("first_digit_timeout", defaults["first_digit_timeout"]),
        inter_digit_timeout=r.seconds("inter_digit_timeout", defaults["inter_digit_timeout"]),
        invalid_prompts=r.prompts("invalid_prompts", defaults["invalid_prompts"]),
        silence_prompts=r.prompts("silence_prompts", defaults["silence_prompts"]),
        closed_prompts=r.prompts("closed_prompts", defaults["closed_prompts"]),
        max_failures=r.count("max_failures", defaults["max_failures"], 1, 10),
        on_failures=r.get("on_failures", str, defaults["on_failures"]),
        default=r.get("default", str, None),
        enabled=r.get("enabled", bool, True),
        hours=_hours(r),
    )


def _check_no_silent_cycle(source: str, nodes: dict[str, Node]) -> None:
    """A chain of ``next`` that never reaches a menu could loop without asking the caller."""
    for start in nodes.values():
        seen, node = set(), start
        while node.kind != "menu" and node.next is not None:
            if node.name in seen:
                raise MenuError(f"{source}: node {start.name!r}: next loops without a menu")
            seen.add(node.name)
            node = nodes[node.next]


def _hours(r: _Reader) -> DailyWindow:
    raw = r.get("hours", str, "00:00-24:00")
    days = r.get("days", list, list(EVERY_DAY))
    if not days or not all(isinstance(d, int) and d in EVERY_DAY for d in days):
        raise r.error("days must be ISO weekdays 1-7")
    try:
        return DailyWindow.parse(raw, tuple(days))
    except ValueError:
        raise r.error(f"hours must look like 09:00-17:00, not {raw!r}") from None
