"""Test doubles for the IVR engine and flow tests: a scripted AGI session and a call harness.

The session follows ``ivr.asterisk.agi.AgiSession``'s coroutines. A script lists what the
caller does, one item per GET DATA: keyed digits (``#`` ends them), ``SILENCE`` (the first-digit
timeout passed) or ``HANGUP``. ``HANGUP`` also ends a STREAM FILE or a
no-barge-in playback when it comes next, as a caller hanging up mid-prompt. An
exhausted script is a hang-up too, so every scripted call ends.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from common.config import CenterConfig
from common.daily_window import DailyWindow
from core_client.demo_data import demo_identities
from core_client.testing import FakeCore
from ivr.asterisk.agi import CallHungUp
from ivr.engine import Engine, run_call
from ivr.flows import FLOWS
from ivr.flows.context import CallContext
from ivr.menu import load
from ivr.records import CallRecord

SILENCE = None
HANGUP = "HANGUP"
HANGUP_IN_PROMPT = "HANGUP-IN-PROMPT"
MENU = load(Path(__file__).parents[2] / "ivr" / "menus" / "default.toml", FLOWS)
DEMO = demo_identities()
X_PERSON = DEMO[0]  # ID number ends in X, repaying loan
LOCKED_PERSON = DEMO[3]
# Thursday 2026-11-26 10:00 in the center's zone: inside 09:00-17:00 office hours
CENTER_TZ = ZoneInfo("Asia/Shanghai")
OFFICE_TIME = dt.datetime(2026, 11, 26, 10, 0, tzinfo=CENTER_TZ).timestamp()
NIGHT_TIME = dt.datetime(2026, 11, 26, 23, 30, tzinfo=CENTER_TZ).timestamp()


@dataclass
class Digits:
    digits: str
    timed_out: bool


class FakeSession:
    """Plays the caller from a script; ``log`` holds every command the flows sent."""

    def __init__(self, script, *, caller_id="13800138000", dnid="12329"):
        self.script = list(script)
        self.log: list[tuple] = []
        self.channel, self.uniqueid = "PJSIP/anon-00000001", "1764150000.1"
        self.caller_id, self.dnid, self.language = caller_id, dnid, "zh"
        self.args = ["hotline-1", "ivr", "demo"]
        self.variables: dict[str, str] = {}
        self.hung_up = False
        self.typeahead = ""  # keys typed beyond what a Read took: the next Read gets them

    def _hangup_next(self, marker: str = HANGUP) -> None:
        if not self.script or self.script[0] == marker:
            if self.script:
                self.script.pop(0)
            self.hung_up = True
            raise CallHungUp("caller hung up")

    async def get_data(self, prompts, timeout_ms, max_digits, inter_digit_ms=None):
        """Like Read: stops at '#' (not returned) or ``max_digits``; keys typed beyond stay
        for the next Read. A Read with no prompts (a flush) never takes a script item."""
        self.log.append(("get_data", tuple(prompts), timeout_ms, max_digits, inter_digit_ms))
        if self.typeahead:
            keys, self.typeahead = self.typeahead, ""
        elif not prompts:
            return Digits("", True)
        else:
            self._hangup_next()
            keys = self.script.pop(0)
            if keys is SILENCE:
                return Digits("", True)
        digits = keys.split("#", 1)[0]
        if len(digits) >= max_digits:  # full: the rest, a closing '#' too, is not read
            digits, self.typeahead = digits[:max_digits], keys[max_digits:]
        else:  # ended by '#' (taken) or by the caller stopping
            self.typeahead = keys[len(digits) + 1:]
        return Digits(digits, False)

    async def stream_file(self, prompt, escape_digits=""):
        self.log.append(("stream_file", prompt))
        if self.script and self.script[0] == HANGUP_IN_PROMPT:
            self._hangup_next(HANGUP_IN_PROMPT)
        return None

    async def play(self, prompts):
        self.log.append(("play", tuple(prompts)))
        if self.script and self.script[0] == HANGUP_IN_PROMPT:
            self._hangup_next(HANGUP_IN_PROMPT)

    async def set_variable(self, name, value):
        self.log.append(("set_variable", name, value))
        self.variables[name] = value

    async def hangup(self):
        self.log.append(("hangup",))
        self.hung_up = True

    async def leave(self, context, exten, priority):
        self.log.append(("leave", context, exten, priority))

    def heard(self) -> list[str]:
        """Every prompt sent, in order, whatever the command."""
        out: list[str] = []
        for entry in self.log:
            if entry[0] in ("get_data", "play"):
                out.extend(entry[1])
            elif entry[0] == "stream_file":
                out.append(entry[1])
        return out

    def keyed_prompts(self) -> list[tuple[str, ...]]:
        """What the caller heard up to each key collection: a GET DATA's prompt, with the
        Playback sent right before it (CallContext.get_data splits prompt lists so)."""
        out = []
        for i, entry in enumerate(self.log):
            if entry[0] == "get_data" and entry[1]:
                before = self.log[i - 1] if i else None
                heard = before[1] if before and before[0] == "play" else ()
                out.append(heard + entry[1])
        return out


class MemoryRecords:
    """CallRecords kept in memory: what was opened and how each call was closed."""

    def __init__(self, clock):
        self.clock = clock
        self.opened: list[CallRecord] = []
        self.closed: list[tuple[CallRecord, str, int]] = []

    async def open(self, record):
        record.id = len(self.opened) + 1
        self.opened.append(record)

    async def close(self, record, outcome, served):
        self.closed.append((record, outcome, served))


def center(**overrides) -> CenterConfig:
    values = dict(code="demo", name="示例中心", signature="示例公积金", core="embedded",
                  core_db=None, core_url="", core_key="", core_timeout=3.0,
                  languages=("zh", "en"), dnid=("12329",),
                  office_hours=DailyWindow(9 * 60, 17 * 60, (1, 2, 3, 4, 5)))
    values.update(overrides)
    return CenterConfig(**values)


@dataclass
class Call:
    session: FakeSession
    ctx: CallContext
    records: MemoryRecords
    core: FakeCore
    outcome: str | None = None

    @property
    def record(self) -> CallRecord:
        return self.ctx.record


class FakeAgents:
    """ivr.agents.AgentAnswers with a fixed fate for every caller handed to the queue."""

    def __init__(self, fate: str):
        self.fate, self.watched = fate, []

    def watch(self, uniqueid):
        self.watched.append(uniqueid)
        return succeed(self.fate)


def place_call(script, *, now=OFFICE_TIME, core=None, notifier=None, menu=MENU,
               center_config=None, agents=None) -> Call:
    """Run one whole call to its end on an in-memory session; returns what happened."""
    clock = Clock()
    clock.advance(now)
    session = FakeSession(script)
    core = core or FakeCore(core_attempts=3)
    records = MemoryRecords(clock)
    record = CallRecord.start(instance="hotline-1", center="demo", uniqueid=session.uniqueid,
                              caller_id=session.caller_id, dnid=session.dnid, language="zh",
                              now=clock.seconds())
    ctx = CallContext(session=session, center=center_config or center(), core=core, menu=menu,
                      clock=clock, record=record, notifier=notifier, agents=agents)
    call = Call(session, ctx, records, core)
    d = Deferred.fromCoroutine(run_call(ctx, Engine(menu), records))
    d.addCallback(lambda outcome: setattr(call, "outcome", outcome))
    assert call.outcome is not None, "the call did not end synchronously"
    return call


def keyed_id(person) -> str:
    """An ID number as keyed on a phone: X becomes *."""
    return person.id_number.replace("X", "*")


# An INI with two centers (one English first) and AMI off, for call-handler tests.
TWO_CENTERS_INI = """
[daemon]
state_dir = {state}
[database]
url = sqlite:///{state}/hotline.db
[center:demo]
name = 示例中心
signature = 示例
dnid = 12329
[center:north]
name = 北区中心
signature = 北区
dnid = 12329001
languages = en, zh
[ami]
enabled = no
[prompts]
library_dir = {state}/prompts
"""
