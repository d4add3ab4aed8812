"""Real calls through the IVR: Asterisk 22 + sipp pressing RFC 2833 keys + the embedded core.

The IVR runs in-process on a fresh reactor (``make_service`` with a real config);
the prompt library holds short generated WAV files for every prompt, so timing
is predictable. What was played is taken from Asterisk's own ``AGIExecStart``
events (the AGI command log), the outcome from the call record in the database.
"""
from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred

from core_client.testing import FakeCore
from ivr import speech
from tests.support.ivr_calls import (
    KEYED_ID,
    X_PERSON,
    call,
    collects_keys,
    press,
    prompt_files,
    prompts_heard,
)

pytestmark = pytest.mark.e2e


def _now(coro):
    out = []
    Deferred.fromCoroutine(coro).addCallback(out.append)
    return out[0]


def test_identify_with_x_and_hear_the_balance(ivr_bed):
    """Language 1, deposits 1, balance 1, ID ending in X keyed with *, password: the balance
    is read with the exact amount fragments; 5 ends, survey 1; the record says so.

    The password comes 2.5 s after the ID's #: a # that comes before the flush's Read
    starts (under load) is not heard, and that Read listens 1.5 s before the prompt."""
    steps = (press("1") + press("1") + press("1") + press(KEYED_ID + "#")
             + press(X_PERSON.password + "#", 2500) + press("5", 6000) + press("1", 2500))
    commands, _events, rows, result = call(ivr_bed, steps)
    balance = _now(FakeCore(persons=20).balance(X_PERSON.account_no))
    played = [f for c in commands if collects_keys(c) or c.startswith('EXEC "Playback"')
              for f in prompt_files(c)]
    reading = played[played.index("ivr/balance-is"):]
    amount = list(speech.amount(balance.balance).prompts)
    assert reading[1:1 + len(amount)] == amount
    assert reading[1 + len(amount)] == "ivr/monthly-deposit-is"
    assert "ivr/deposit-menu" in reading
    # the whole reading and the menu after it are one Read (issue 13, defect 9)
    one = next(prompt_files(c) for c in commands if "ivr/balance-is" in c)
    assert one[one.index("ivr/balance-is"):] == reading[:reading.index("ivr/deposit-menu") + 1]
    assert len(rows) == 1, result.stdout
    row = rows[0]
    assert (row["outcome"], row["identified"], row["survey"], row["served"]) == \
        ("ivr_handled", 1, 1, 1)
    assert row["keys"] == "language:1 main:1 deposit:1 deposit:5"
    assert X_PERSON.password not in row["keys"]
    assert result.ok, result.errors


def test_three_wrong_passwords_lock(ivr_bed):
    """Three wrong passwords: the caller hears the lock notice, whole (Playback)."""
    steps = (press("1") + press("1") + press("1") + press(X_PERSON.account_no + "#")
             + press("000000#") + press("000001#", 4000) + press("000002#", 4000))
    commands, _events, rows, result = call(ivr_bed, steps, hangup="bye", tail_ms=4000)
    plays = [prompt_files(c) for c in commands if c.startswith('EXEC "Playback"')]
    assert any(p[0] == "ivr/account-locked" for p in plays), "\n".join(commands)
    assert rows[0]["identified"] == 0 and rows[0]["outcome"] == "failed"


def test_silence_reprompts_then_escalates_to_the_queue(ivr_bed):
    """Silence in the main menu re-prompts (no-input wording) and the third silence
    transfers to the agents' queue; the caller hangs up there before any agent answers,
    so the call is abandoned (issue 13, defect 8)."""
    commands, events, rows, result = call(ivr_bed, press("1"), hangup="bye", tail_ms=22000)
    menus = prompts_heard(commands)
    assert menus[1] == ["ivr/main-menu"]
    assert menus[2] == menus[3] == ["ivr/no-input", "ivr/main-menu"]
    joins = [e for e in events if e.event == "QueueCallerJoin"]
    assert joins and joins[0].get("Queue") == "hotline-agents"
    assert rows[0]["outcome"] == "abandoned"


def test_invalid_key(ivr_bed):
    """An unknown key in the main menu is answered with the invalid-key wording."""
    commands, _events, rows, _result = call(ivr_bed, press("1") + press("7"), hangup="bye",
                                            tail_ms=1500)
    assert ["ivr/invalid-key", "ivr/main-menu"] in prompts_heard(commands)
    assert rows[0]["keys"] == "language:1 main:7"


def test_hangup_in_the_middle_of_a_prompt(ivr_bed):
    """Hanging up during the 4 s policy notice: no error, the record is closed as abandoned."""
    commands, _events, rows, result = call(ivr_bed, press("1") + press("3"), hangup="bye",
                                           tail_ms=1500)
    assert any("ivr/policy-notice" in c for c in commands)
    assert rows[0]["outcome"] == "abandoned" and rows[0]["ended_at"]
    assert result.ok, result.errors


def test_transfer_reaches_the_queue(ivr_bed):
    """0 in office hours leaves AsyncAGI for the queue; hanging up there before an agent
    answers is recorded as abandoned, not transferred (issue 13, defect 8)."""
    _commands, events, rows, _result = call(ivr_bed, press("1") + press("0"), hangup="bye",
                                            tail_ms=3000)
    joins = [e for e in events if e.event == "QueueCallerJoin"]
    assert joins and joins[0].get("Queue") == "hotline-agents"
    assert rows[0]["outcome"] == "abandoned"


def test_hangup_during_transferring_is_abandoned(ivr_bed):
    """Hanging up while "transferring" plays: the record says abandoned (issue 13, defect 8)."""
    commands, _events, rows, result = call(ivr_bed, press("1") + press("0"), hangup="bye",
                                           tail_ms=1200)
    assert any("ivr/transferring" in c for c in commands)
    assert rows[0]["outcome"] == "abandoned" and rows[0]["ended_at"]
