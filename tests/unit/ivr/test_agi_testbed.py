"""The pieces of the Asterisk test bed that need no Asterisk: dialplan rendering, sipp scenarios, pcaps."""
from __future__ import annotations

import struct
import wave
import xml.etree.ElementTree as ET

import pytest

import dialplans
from sandbox.sipp import Keys, Pause, SippError, scenario_xml, wav_to_rtp_pcap


def test_render_fills_every_placeholder(tmp_path):
    """Rendering leaves no {{...}} behind; the instance, with its heartbeat variable, is the
    one daemon the dialplan may pick for the AGI call."""
    written = dialplans.render({"ami_secret": "s", "instance": "node-7", "center": "gz"}, tmp_path)
    assert {p.name for p in written} >= {"extensions.conf", "manager.conf", "modules.conf",
                                         "pjsip.conf", "asterisk.conf", "queues.conf"}
    for path in written:
        assert "{{" not in path.read_text(), path.name
    ext = (tmp_path / "extensions.conf").read_text()
    assert "Set(HOTLINE_CANDIDATES=node-7/HOTLINE_HEARTBEAT)" in ext
    assert "AGI(agi:async,${HOTLINE_OWNER},ivr,gz)" in ext
    assert "AGI(agi:async,${HOTLINE_OWNER},admin,gz)" in ext
    assert "autoload = no" in (tmp_path / "modules.conf").read_text()


@pytest.mark.parametrize("values,problem", [
    ({}, "ami_secret is required"),
    ({"ami_secret": "s", "nonsense": "1"}, "unknown template variables: nonsense"),
    ({"ami_secret": "s\n[evil]"}, "line break"),
    ({"ami_secret": "s", "instances": "a/HB_A&b"}, "instance/heartbeat_variable pairs"),
])
def test_render_refuses_bad_values(tmp_path, values, problem):
    """A missing secret, an unknown name or a line break is a TemplateError, nothing written."""
    with pytest.raises(dialplans.TemplateError, match=problem.replace("[", r"\[")):
        dialplans.render(values, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_every_placeholder_has_a_default_or_is_required():
    """Templates and DEFAULTS agree, so render never meets an unknown placeholder
    (heartbeat_variable only makes the default of instances)."""
    assert dialplans.placeholders() == (set(dialplans.DEFAULTS) | set(dialplans.REQUIRED)) \
        - {"heartbeat_variable"}


def _events(pcap):
    """(sequence, timestamp, event, end) of every RFC 4733 packet in a pcap written for sipp."""
    import struct

    data, out, at = pcap.read_bytes(), [], 24
    while at < len(data):
        length = struct.unpack_from("<I", data, at + 8)[0]
        rtp = data[at + 16 + 14 + 20 + 8: at + 16 + length]
        _, pt, seq, ts = struct.unpack_from("!BBHI", rtp)
        if pt & 0x7F == 101:
            event, flags = rtp[12], rtp[13]
            out.append((seq, ts, event, bool(flags & 0x80)))
        at += 16 + length
    return out


def test_scenario_keys_and_pauses(tmp_path):
    """Each key becomes its own RFC 4733 pcap in order, with pauses; the XML is well formed."""
    text = scenario_xml([Pause(1000), Keys("1*#", gap_ms=500)], tmp_path, hangup="bye",
                        caller="4001")
    root = ET.fromstring(text.encode())
    plays = [e.get("play_pcap_audio") for e in root.iter("exec")]
    assert plays == [str(tmp_path / f"key-00{n}.pcap") for n in (1, 2, 3)]
    assert [{e for _, _, e, _ in _events(tmp_path / p.rsplit("/", 1)[1])} for p in plays] == \
        [{1}, {10}, {11}]
    assert [p.get("milliseconds") for p in root.iter("pause")] == ["1000", "500", "500", "500"]
    assert "BYE sip:[service]" in text and "sip:4001@" in text


def test_repeated_keys_get_rising_timestamps(tmp_path):
    """A key pressed twice, or after *, is a new event: later timestamp, later sequence,
    so Asterisk does not drop it as a stale repeat (sipp's own recordings reuse theirs)."""
    scenario_xml([Keys("11*1")], tmp_path)
    presses = [_events(tmp_path / f"key-00{n}.pcap") for n in (1, 2, 3, 4)]
    starts = [(p[0][0], p[0][1]) for p in presses]
    assert starts == sorted(starts) and len(set(starts)) == 4
    assert all(p[-1][3] and p[-2][3] and p[-3][3] for p in presses)  # end sent 3 times


def test_wait_mode_pauses_accept_the_far_end_bye(tmp_path):
    """Waiting for the far end's BYE turns every pause into a BYE-or-timeout step."""
    text = scenario_xml([Pause(800), Keys("2")], tmp_path, hangup="wait", wait_bye_ms=5000)
    assert text.count('<recv request="BYE" timeout=') == 3
    assert "<pause" not in text and "[last_Via:]" in text


def test_background_audio_resumes_after_keys(tmp_path):
    """With background silence the caller's RTP restarts after each key's event pcap."""
    bg = tmp_path / "silence.pcap"
    text = scenario_xml([Keys("12", gap_ms=600)], tmp_path, background=bg)
    root = ET.fromstring(text.encode())
    plays = [e.get("play_pcap_audio").rsplit("/", 1)[1] for e in root.iter("exec")]
    assert plays == ["silence.pcap", "key-001.pcap", "silence.pcap", "key-002.pcap",
                     "silence.pcap"]
    assert [p.get("milliseconds") for p in root.iter("pause")] == ["220", "380", "220", "380"]


def test_bad_steps_are_refused(tmp_path):
    """Unknown keys and endings raise SippError."""
    with pytest.raises(SippError):
        scenario_xml([Keys("A")], tmp_path)
    with pytest.raises(SippError):
        scenario_xml([], tmp_path, hangup="never")


def test_wav_to_rtp_pcap(tmp_path):
    """A 1 s 8 kHz wav becomes 50 RTP packets of 160 u-law bytes, 20 ms apart."""
    wav = tmp_path / "a.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<8000h", *([1000, -1000] * 4000)))
    pcap = tmp_path / "a.pcap"
    assert wav_to_rtp_pcap(wav, pcap) == 1000
    data = pcap.read_bytes()
    assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4
    offset, packets, times = 24, 0, []
    while offset < len(data):
        sec, usec, incl, _ = struct.unpack("<IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + incl]
        assert len(frame) == 14 + 20 + 8 + 12 + 160
        times.append(sec + usec / 1e6)
        offset += 16 + incl
        packets += 1
    assert packets == 50 and abs(times[1] - times[0] - 0.02) < 1e-6
