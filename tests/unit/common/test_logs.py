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
