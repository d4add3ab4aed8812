"""The IVR bench's latency meter: AMI events in, turnaround and key-to-prompt samples out."""
from __future__ import annotations

import pytest

from benchmarks.ivr_bench import (TurnaroundMeter, WireMeter, _counts, format_table, plays_prompt,
                       summary_ms)

READ = 'EXEC "Read" "HOTLINE_DIGITS,/var/prompts/current/default/zh/ivr/main-menu,1,,1,"'


def test_turnaround_is_result_to_next_command_on_the_same_channel():
    """A result on channel A followed by A's next command gives one sample; B's command
    in between does not close A's interval."""
    m = TurnaroundMeter()
    m.event(1.000, "AGIExecStart", "A", READ)
    m.event(2.000, "AsyncAGIExec", "A")
    m.event(2.005, "AGIExecStart", "B", READ)
    m.event(2.030, "AGIExecStart", "A", "SET VARIABLE X 1")
    assert m.turnaround == [pytest.approx(0.030)]


def test_key_to_prompt_uses_the_last_key_before_the_result_and_the_next_playing_command():
    """Of several keys (an ID), the last one counts, and the interval ends at the next
    command that plays a prompt, not at a SET VARIABLE in between."""
    m = TurnaroundMeter()
    m.event(0.0, "AGIExecStart", "A", READ)
    m.event(1.0, "DTMFEnd", "A")
    m.event(1.5, "DTMFEnd", "A")
    m.event(1.52, "AsyncAGIExec", "A")
    m.event(1.54, "AGIExecStart", "A", "SET VARIABLE X 1")
    m.event(1.56, "AsyncAGIExec", "A")
    m.event(1.58, "AGIExecStart", "A", READ)
    assert m.key_to_prompt == [pytest.approx(0.08)]
    assert len(m.turnaround) == 2


def test_no_key_no_key_sample_and_hangup_forgets_the_channel():
    """A command ended by a timeout (no key) adds no key sample; a hangup drops the channel."""
    m = TurnaroundMeter()
    m.event(0.0, "AsyncAGIExec", "A")
    m.event(0.1, "AGIExecStart", "A", READ)
    m.event(0.2, "Hangup", "A")
    assert m.key_to_prompt == [] and m.channels == {}


def test_plays_prompt_recognises_playing_commands():
    """Read, Playback, GET DATA and STREAM FILE play audio; SET VARIABLE and HANGUP do not."""
    assert plays_prompt(READ)
    assert plays_prompt('EXEC "Playback" "/p/a&/p/b"')
    assert plays_prompt("GET DATA /p/a 5000 1")
    assert plays_prompt("STREAM FILE /p/a \"\"")
    assert not plays_prompt("SET VARIABLE HOTLINE_X 1")
    assert not plays_prompt("HANGUP")


def test_summary_in_milliseconds():
    """Percentiles are nearest-rank, in ms; an empty list gives Nones."""
    s = summary_ms([0.010 * i for i in range(1, 101)])
    assert (s["count"], s["p50"], s["p99"], s["max"]) == (100, 500.0, 990.0, 1000.0)
    assert summary_ms([]) == {"count": 0, "p50": None, "p99": None, "max": None}


def test_call_counts_and_table():
    """--calls parses a comma list and refuses zero; the table has one row per round."""
    assert _counts("50,100, 200") == [50, 100, 200]
    with pytest.raises(SystemExit):
        _counts("0")
    row = {"calls": 1, "completed": 1, "sipp_ok": True, "wall_s": 60.0, "daemon_cpu_s": 1.0,
           "daemon_cpu_percent_of_one_core": 1.7, "daemon_turnaround_ms": summary_ms([0.001]),
           "agi_turnaround_ms": summary_ms([0.02]), "key_to_next_prompt_ms": summary_ms([0.03])}
    lines = format_table([row]).splitlines()
    assert lines[2].split()[:3] == ["1", "1", "ok"]


def _wire_meter(port: int = 5038) -> WireMeter:
    """A WireMeter without its capture (segments are fed by hand)."""
    return WireMeter(port)


def test_wire_meter_pairs_result_and_next_action_on_the_driving_connection():
    """A result on the daemon's connection (split over two segments) and the daemon's next
    AGI action for the channel give one sample; the listening session's copy of the same
    event (another client port, never sending AGI) is ignored."""
    m = _wire_meter()
    m.payload(0.0, 40000, 5038, b"Action: AGI\r\nChannel: PJSIP/a-1\r\nCommand: X\r\n\r\n")
    m.payload(1.000, 5038, 40000, b"Event: AsyncAGIExec\r\nChannel: PJSIP/a-1\r\nRes")
    m.payload(1.001, 5038, 40000, b"ult: 200%20result%3D1\r\n\r\n")
    m.payload(1.002, 5038, 40001, b"Event: AsyncAGIExec\r\nChannel: PJSIP/a-1\r\n\r\n")
    m.payload(1.004, 40000, 5038, b"Action: AGI\r\nActionID: 7\r\nChannel: PJSIP/a-1\r\n\r\n")
    assert m.samples == [pytest.approx(0.003)]
    assert m._pending == {}
