"""The daemon's log observers mask personal data in text and JSON output."""
import io
import json

from twisted.logger import Logger, LogPublisher

from common.logs import make_observer


def emit(fmt: str, level: str = "info") -> str:
    out = io.StringIO()
    publisher = LogPublisher(make_observer(fmt, out, level))
    log = Logger(namespace="test", observer=publisher)
    log.info("call from {caller} for {id_number}", caller="13800138000",
             id_number="11010119900307123X", password="123456")
    log.debug("hidden at info level")
    return out.getvalue()


def test_text_lines_are_masked():
    """Text lines carry masked mobiles and ID numbers, and honour the level."""
    text = emit("text")
    assert "138****8000" in text and "110101********123X" in text
    assert "13800138000" not in text and "hidden" not in text


def test_json_lines_mask_message_and_fields():
    """JSON lines mask the message, string fields, and secrets by field name."""
    record = json.loads(emit("json").splitlines()[0])
    assert record["message"] == "call from 138****8000 for 110101********123X"
    assert record["caller"] == "138****8000"
    assert record["password"] == "******"
    assert record["level"] == "info"


def test_control_characters_are_escaped_and_long_fields_cut():
    """CR, NUL and ANSI escapes from a peer are written escaped; a 2,000-character
    channel name is cut (the line says how long it was)."""
    for fmt in ("text", "json"):
        out = io.StringIO()
        log = Logger(namespace="test", observer=LogPublisher(make_observer(fmt, out)))
        log.warn("channel {channel} said {what}", channel="PJSIP/" + "a" * 2000,
                 what="ok\r\x00\x1b[31mFAKE [hotline#error] line")
        line = out.getvalue()
        assert "\r" not in line and "\x00" not in line and "\x1b" not in line
        assert "a" * 300 not in line and "(2006 chars)" in line
        assert len(line.splitlines()) == 1


def test_warnings_are_rate_limited_per_source():
    """A peer sending 1,000 malformed frames costs 10 lines and one summary, and another
    peer's warnings still get through."""
    out = io.StringIO()
    publisher = LogPublisher(make_observer("text", out))
    noisy, quiet = Logger(namespace="ami", observer=publisher), Logger(namespace="ami",
                                                                         observer=publisher)
    noisy.source, quiet.source = object(), object()
    for n in range(1000):
        noisy.warn("AMI: skipped a malformed frame: {problem}", problem=f"bad {n}")
    quiet.warn("AMI: skipped a malformed frame: {problem}", problem="other peer")
    lines = out.getvalue().splitlines()
    assert len(lines) == 11 and "other peer" in lines[-1]
