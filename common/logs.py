"""Logging set up once, by daemon.py: twisted.logger events, masked, as text or JSON lines.

Masking happens in the observer, so no room can leak a mobile, an ID number or a
secret by forgetting to mask: every formatted message and every string field is
passed through ``common.masking`` before it is written. Text from peers cannot
forge or garble lines either: string fields are cut to ``MAX_FIELD`` characters
and control characters (CR, NUL, ANSI escapes) are written escaped. Warnings are
rate-limited per source (one AMI or SMPP connection, one HTTP peer): at most
``WARN_BURST`` alike per ``WARN_PERIOD`` seconds, then one line counting the rest.
"""
from __future__ import annotations

import json
import os
import re
import sys
from typing import IO

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    formatTime,
    globalLogBeginner,
)
from zope.interface import implementer

from common.masking import mask_text, mask_value

LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn,
          "error": LogLevel.error}
MAX_FIELD = 256
WARN_BURST, WARN_PERIOD = 10, 60.0
MAX_WARN_SOURCES = 10_000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_INTERNAL = {"log_logger", "log_source", "log_io", "log_trace", "log_format", "log_namespace",
             "log_level", "log_time", "log_failure", "log_text", "log_flattened",
             "log_system", "message", "format", "isError", "time", "system", "why"}


def _failure_text(event: dict) -> str:
    failure = event.get("log_failure")
    if failure is None:
        return ""
    return "\n" + failure.getTraceback()


def escape(text: str) -> str:
    """Control characters as visible escapes (a newline stays: lines are indented)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def capped(event: dict) -> dict:
    """The event with every string field cut to MAX_FIELD characters (the format is ours)."""
    out = dict(event)
    for key, value in event.items():
        if not key.startswith("log_") and isinstance(value, str) and len(value) > MAX_FIELD:
            out[key] = f"{value[:MAX_FIELD]}…({len(value)} chars)"
    return out


@implementer(ILogObserver)
class MaskedTextObserver:
    """``2026-11-26T12:00:00+0000 [namespace#level] message``, masked."""

    def __init__(self, out: IO[str]):
        self.out = out

    def __call__(self, event: dict) -> None:
        event = capped(event)
        text = escape(formatEvent(event)) + _failure_text(event)
        level = event.get("log_level", LogLevel.info).name
        ns = event.get("log_namespace", "-")
        line = f"{formatTime(event.get('log_time'))} [{ns}#{level}] {mask_text(text)}"
        self.out.write(line.replace("\n", "\n\t") + "\n")
        self.out.flush()


@implementer(ILogObserver)
class MaskedJsonObserver:
    """One JSON object per line: time, level, namespace, message and the event's own fields."""

    def __init__(self, out: IO[str]):
        self.out = out

    def __call__(self, event: dict) -> None:
        event = capped(event)
        record = {
            "time": event.get("log_time"),
            "level": event.get("log_level", LogLevel.info).name,
            "namespace": event.get("log_namespace"),
            "message": mask_text(formatEvent(event) + _failure_text(event)),
        }
        for key, value in event.items():
            if key in _INTERNAL or key.startswith("log_"):
                continue
            masked = mask_value(key, value)
            try:
                json.dumps(masked)
            except (TypeError, ValueError):
                masked = mask_text(repr(value))
            record[key] = masked
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.out.flush()


@implementer(ILogObserver)
class WarningRateLimit:
    """Passes at most WARN_BURST warnings alike (same source and format) per WARN_PERIOD,
    then one line saying how many were suppressed; other levels pass untouched."""

    def __init__(self, observer: ILogObserver):
        self.observer = observer
        self._seen: dict[tuple, list] = {}  # key -> [window start, count]

    def __call__(self, event: dict) -> None:
        if event.get("log_level") is not LogLevel.warn:
            self.observer(event)
            return
        source = event.get("peer") or id(event.get("log_source"))
        key = (event.get("log_namespace"), source, event.get("log_format"))
        now = event.get("log_time") or 0.0
        window = self._seen.get(key)
        if window is None or now - window[0] >= WARN_PERIOD:
            if window is not None and window[1] > WARN_BURST:
                self._suppressed(event, window[1] - WARN_BURST)
            if len(self._seen) >= MAX_WARN_SOURCES:
                self._seen.pop(next(iter(self._seen)))
            window = self._seen[key] = [now, 0]
        window[1] += 1
        if window[1] <= WARN_BURST:
            self.observer(event)

    def _suppressed(self, event: dict, count: int) -> None:
        self.observer({"log_level": LogLevel.warn, "log_namespace": event.get("log_namespace"),
                       "log_time": event.get("log_time"), "count": count,
                       "log_format": "{count} more warnings like this one were suppressed: "
                                     + (event.get("log_format") or "")[:80].replace("{", "(")
                                     .replace("}", ")")})


def make_observer(fmt: str, out: IO[str], level: str = "info") -> ILogObserver:
    base = MaskedJsonObserver(out) if fmt == "json" else MaskedTextObserver(out)
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[level])
    return FilteringLogObserver(WarningRateLimit(base), [predicate])


def open_log_file(path: str) -> IO[str]:
    """Standard output, or the file opened for appending, created owner-only (0600)."""
    if path == "-":
        return sys.stdout
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return open(fd, "a", encoding="utf-8", buffering=1)


def start_logging(fmt: str, path: str, level: str) -> IO[str]:
    """Route every twisted.logger event (and stdlib warnings) through the masked observer."""
    out = open_log_file(path)
    globalLogBeginner.beginLoggingTo([make_observer(fmt, out, level)],
                                     redirectStandardIO=False)
    return out
