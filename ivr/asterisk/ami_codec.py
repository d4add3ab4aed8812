"""AMI wire format, pure: bytes to messages and actions to bytes, no I/O.

AMI frames are header blocks ended by a blank line. Header names are
case-insensitive (Asterisk 22 writes ``CommandId`` where the docs say
``CommandID``) and may repeat (``ChanVariable``, ``Output``), so a message keeps
its headers as an ordered list of pairs. The first line of a connection is a
banner without a blank line after it; old servers answer ``Command`` with
``Response: Follows`` and free text ending in ``--END COMMAND--``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from asterisk.ami.action import Action

from common.masking import mask_text, mask_value

TERMINATOR = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
END_COMMAND = b"--END COMMAND--"
MAX_FRAME = 1024 * 1024


class AmiCodecError(Exception):
    """Something on the AMI wire could not be read or written."""


class MalformedFrame(AmiCodecError):
    """A received frame is not a valid AMI message; the reader skips it.

    The message says what is wrong and shows the frame masked and shortened.
    """

    def __init__(self, problem: str, frame: bytes):
        shown = mask_text(frame[:200].decode("utf-8", "replace"))
        super().__init__(f"{problem}: {shown!r}")
        self.problem = problem


class UnsafeActionValue(AmiCodecError):
    """An action header or value holds CR, LF or NUL: it could inject headers or actions."""


@dataclass
class Message:
    """One received frame: a Response or an Event, headers in wire order."""

    headers: list[tuple[str, str]]
    output: list[str] = field(default_factory=list)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first header called ``name``, compared case-insensitively."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def masked(self) -> str:
        """The message as one log-safe line: secrets by name, personal data by content."""
        parts = [f"{k}: {mask_value(k, v)}" for k, v in self.headers]
        return "; ".join(parts)


class FrameSplitter:
    """Accumulates received bytes and hands out complete frames (without their terminator)."""

    def __init__(self, max_frame: int = MAX_FRAME):
        self._buffer = b""
        self._max = max_frame
        self.banner: str | None = None
        self._banner_pending = True

    def feed(self, data: bytes) -> list[bytes]:
        """Frames completed by ``data``; an overlong partial frame is returned as is (malformed)."""
        self._buffer += data
        frames: list[bytes] = []
        if self._banner_pending:
            if len(self._buffer) < len(BANNER_PREFIX) and BANNER_PREFIX.startswith(self._buffer):
                return frames
            self._banner_pending = False
            if self._buffer.startswith(BANNER_PREFIX):
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    self._banner_pending = True
                    return frames
                self.banner = self._buffer[:end].decode("utf-8", "replace")
                self._buffer = self._buffer[end + 2:]
        while True:
            end = self._frame_end()
            if end is None:
                break
            frame, self._buffer = self._buffer[:end], self._buffer[end + len(TERMINATOR):]
            frames.append(frame)
        if len(self._buffer) > self._max:
            frames.append(self._buffer)
            self._buffer = b""
        return frames

    def _frame_end(self) -> int | None:
        # Old servers write Follows output with bare LF line ends, so the first
        # CRLF CRLF ends even those frames (after ``--END COMMAND--``).
        end = self._buffer.find(TERMINATOR)
        return None if end < 0 else end


def parse_frame(frame: bytes) -> Message:
    """Turn one frame into a Message, or raise MalformedFrame."""
    if not frame.strip(b"\r\n"):
        raise MalformedFrame("empty frame", frame)
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedFrame("not UTF-8", frame) from None
    lines = text.lstrip("\r\n").split("\r\n")
    headers: list[tuple[str, str]] = []
    output: list[str] = []
    follows = lines[0] == "Response: Follows"
    for index, line in enumerate(lines):
        name, sep, value = line.partition(":")
        if sep and name and name == name.strip() and " " not in name and "\n" not in line:
            headers.append((name, value[1:] if value.startswith(" ") else value))
            continue
        if follows:
            output = [ln for ln in "\n".join(lines[index:]).split("\n")
                      if ln != END_COMMAND.decode()]
            break
        raise MalformedFrame("line is not a header", frame)
    message = Message(headers, output)
    if message.response is None and message.event is None:
        raise MalformedFrame("neither Response nor Event", frame)
    if not follows:
        message.output = message.get_all("Output")
    return message


def _check(value: str, what: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise UnsafeActionValue(f"{what} holds CR, LF or NUL: {mask_text(value[:80])!r}")
    return value


def encode_action(name: str, headers: dict[str, str] | None = None,
                  variables: dict[str, str] | None = None) -> bytes:
    """One action as bytes, refusing any value that could start a new header or action."""
    _check(name, "action name")
    keys: dict[str, str] = {}
    for key, value in (headers or {}).items():
        _check(key, "header name")
        if ":" in key or not key:
            raise UnsafeActionValue(f"bad header name {key!r}")
        keys[key] = _check(str(value), f"header {key}")
    pairs: dict[str, str] = {}
    for var, value in (variables or {}).items():
        _check(var, "variable name")
        if "=" in var or not var:
            raise UnsafeActionValue(f"bad variable name {var!r}")
        pairs[var] = _check(str(value), f"variable {var}")
    return (str(Action(name, keys=keys, variables=pairs)) + "\r\n").encode("utf-8")
