"""Issue 13 as callers hear it, over real calls (Asterisk 22 + sipp RFC 2833 keys).

Each test names the numbered defects it covers; helpers and the test bed are
those of ``test_ivr_calls``.
"""
from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from ivr import speech
from tests.e2e.test_ivr_calls import (  # noqa: F401 (bed is a fixture)
    KEYED_ID,
    _collects,
    _files,
    _heard,
    _press,
    bed,
    call,
)

pytestmark = pytest.mark.e2e

BEIJING = ZoneInfo("Asia/Shanghai")


def _played(commands: list[str]) -> list[list[str]]:
    """The files of every Playback, in order."""
    return [_files(c) for c in commands if c.startswith('EXEC "Playback"')]


def _notice(commands: list[str], first: str) -> list[str]:
    """The files of the Playbacks in a row that start with ``first`` (a long notice may
    take more than one Playback)."""
    out: list[str] = []
    for c in commands:
        files = _files(c) if c.startswith('EXEC "Playback"') else []
        if out and not files and not c.startswith("SET VARIABLE"):
            return out
        if out or files[:1] == [first]:
            out += files
    return out


def test_typed_ahead_keys_twos_and_the_lock_time(bed):
    """One call through identification (defects 10, 7 and 1):

    - 22 keys at the ID prompt: collection stops at 18, the rest is flushed, "invalid ID"
      is heard once and never "account not found";
    - 7 digits and # at the password prompt: "invalid password" once, never "you entered
      nothing";
    - a wrong password: "您还可以输入两次" (num/liang), then 一次;
    - the third wrong password locks: the lock expiry is read in Beijing time.
    """
    steps = (_press("1") + _press("1") + _press("1") + _press("1" * 22)
             + _press(KEYED_ID + "#", 2500) + _press("1234567#", 2500)
             + _press("000000#", 2500) + _press("000001#", 4000) + _press("000002#", 4000))
    commands, _events, rows, result = call(bed, steps, hangup="bye", tail_ms=5000, limit=120)
    asked = [h for h in _heard(commands) if h]
    assert asked[3:6] == [["ivr/enter-id"], ["ivr/invalid-id", "ivr/enter-id"],
                          ["ivr/enter-password"]], "\n".join(commands)
    assert asked[6] == ["ivr/invalid-password", "ivr/enter-password"]
    assert asked[7] == ["ivr/password-wrong", "ivr/attempts-left", "num/liang", "ivr/times",
                        "ivr/enter-password"]
    heard = [f for c in commands if _collects(c) or c.startswith('EXEC "Playback"')
             for f in _files(c)]
    assert "ivr/account-not-found" not in heard and "ivr/no-input" not in heard
    lock = _notice(commands, "ivr/account-locked")
    now = dt.datetime.now(BEIJING)
    readings = [speech.time_of_day((now + dt.timedelta(minutes=30 + d)).time()).prompts
                for d in (-2, -1, 0)]
    assert any(tuple(lock[-1 - len(r):-1]) == r for r in readings), lock
    assert rows[0]["outcome"] == "failed"


def _hours_not_now() -> str:
    """An office-hours window (Beijing time) that is closed right now."""
    hour = dt.datetime.now(BEIJING).hour
    start = 1 if hour >= 21 else hour + 2
    return f"{start:02d}:00-{start + 1:02d}:00"


def test_silent_caller_out_of_hours_is_told_goodbye(bed):
    """Out of office hours a silent caller hears the main menu three times, then the agents'
    hours and goodbye, and Asterisk hangs up: no loop (defect 2)."""
    started = time.monotonic()
    commands, _events, rows, result = call(bed, _press("1"), hangup="wait",
                                           hours=_hours_not_now(), limit=45)
    assert result.ok, result.stdout
    assert time.monotonic() - started < 45
    assert [h for h in _heard(commands)][1:] == [["ivr/main-menu"]] + \
        [["ivr/no-input", "ivr/main-menu"]] * 2
    last = _notice(commands, "ivr/agent-hours")
    assert last[-1] == "ivr/goodbye"
    assert rows[0]["outcome"] == "failed"
