"""The pure AMI codec: framing, headers, banner, command output, action encoding."""
from __future__ import annotations

import pytest

from ivr.asterisk.ami_codec import (FrameSplitter, MalformedFrame, UnsafeActionValue, encode_action,
                           parse_frame)


def test_banner_then_frames_split_on_blank_line():
    """The banner line is taken apart from the frames; frames end at CRLF CRLF."""
    s = FrameSplitter()
    frames = s.feed(b"Asterisk Call Manager/9.0.0\r\nResponse: Success\r\nActionID: 1\r\n\r\n"
                    b"Event: FullyBooted\r\n\r\nEvent: Par")
    assert s.banner == "Asterisk Call Manager/9.0.0"
    assert frames == [b"Response: Success\r\nActionID: 1", b"Event: FullyBooted"]
    assert s.feed(b"tial\r\n\r\n") == [b"Event: Partial"]


def test_banner_split_across_reads():
    """A banner arriving in pieces is still recognised and not treated as a frame."""
    s = FrameSplitter()
    assert s.feed(b"Asterisk Call") == []
    assert s.feed(b" Manager/11.0\r\nEvent: X\r\n\r\n") == [b"Event: X"]
    assert s.banner == "Asterisk Call Manager/11.0"


def test_header_names_case_insensitive_and_repeats_kept():
    """CommandId matches CommandID, and repeated headers all survive in order."""
    m = parse_frame(b"Event: AsyncAGIExec\r\nCommandId: 7\r\nChanVariable: A=1\r\n"
                    b"ChanVariable: B=2\r\nEmpty:")
    assert m.get("CommandID") == "7"
    assert m.event == "AsyncAGIExec"
    assert m.get_all("chanvariable") == ["A=1", "B=2"]
    assert m.get("Empty") == ""


def test_response_follows_command_output():
    """Old-style command output up to --END COMMAND-- is one frame with its output lines."""
    s = FrameSplitter()
    raw = (b"Response: Follows\r\nPrivilege: Command\r\nActionID: 3\r\n"
           b"line one\n\nline two\n--END COMMAND--\r\n\r\nEvent: After\r\n\r\n")
    frames = s.feed(raw)
    assert len(frames) == 2
    m = parse_frame(frames[0])
    assert m.response == "Follows" and m.action_id == "3"
    assert m.output == ["line one", "", "line two"]
    assert parse_frame(frames[1]).event == "After"


def test_new_style_output_headers():
    """Asterisk 22 answers Command with repeated Output headers, exposed as output."""
    m = parse_frame(b"Response: Success\r\nMessage: Command output follows\r\n"
                    b"Output: a\r\nOutput: b")
    assert m.output == ["a", "b"]


@pytest.mark.parametrize("frame", [b"", b"\r\n", b"no colon here", b"Foo: bar",
                                   b"Event: X\r\nbad line", b"Event: \xff\xfe"])
def test_malformed_frames_raise_typed_error(frame):
    """Frames that are not AMI messages raise MalformedFrame, never something else."""
    with pytest.raises(MalformedFrame):
        parse_frame(frame)


def test_malformed_message_is_masked():
    """The error text masks personal data found in the frame."""
    with pytest.raises(MalformedFrame) as e:
        parse_frame(b"garbage 13800138000 Event")
    assert "13800138000" not in str(e.value)


def test_encode_action_uses_asterisk_ami_layout():
    """Encoding gives Action first, headers, Variable lines and a blank line."""
    data = encode_action("Originate", {"Channel": "Local/1@x", "ActionID": "9"}, {"A": "b c"})
    assert data == (b"Action: Originate\r\nChannel: Local/1@x\r\nActionID: 9\r\n"
                    b"Variable: A=b c\r\n\r\n")


@pytest.mark.parametrize("headers,variables", [
    ({"Command": "x\r\nAction: Originate"}, None),
    ({"Command": "x\nfoo"}, None),
    ({"Bad\r\nName": "x"}, None),
    ({"Co:lon": "x"}, None),
    (None, {"V": "a\rb"}),
    (None, {"V=W": "a"}),
])
def test_encode_rejects_injection(headers, variables):
    """CR, LF or NUL anywhere, or a separator in a name, is refused with a typed error."""
    with pytest.raises(UnsafeActionValue):
        encode_action("AGI", headers, variables)


def test_overlong_partial_frame_is_flushed():
    """A never-ending frame is handed out (to be rejected) instead of growing forever."""
    s = FrameSplitter(max_frame=100)
    s.feed(b"Asterisk Call Manager/1\r\n")
    out = s.feed(b"x" * 150)
    assert out == [b"x" * 150]
    assert s.feed(b"Event: Y\r\n\r\n") == [b"Event: Y"]
