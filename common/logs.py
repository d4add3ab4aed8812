"""Logging set up once, by daemon.py: twisted.logger events, masked, as text or JSON lines.

Masking happens in the observer, so no room can leak a mobile, an ID number or a
secret by forgetting to mask: every formatted message and every string field is
passed through ``common.masking`` before it is written.
"""
from __future__ import annotations

import json
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
_INTERNAL = {"log_logger", "log_source", "log_io", "log_trace", "log_format", "log_namespace",
             "log_level", "log_time", "log_failure", "log_text", "log_flattened",
             "log_system", "message", "format", "isError", "time", "system", "why"}


def _failure_text(event: dict) -> str:
    failure = event.get("log_failure")
    if failure is None:
        return ""
    return "\n" + failure.getTraceback()


@implementer(ILogObserver)
class MaskedTextObserver:
    """``2026-11-26T12:00:00+0000 [namespace#level] message``, masked."""

    def __init__(self, out: IO[str]):
        self.out = out

    def __call__(self, event: dict) -> None:
        text = formatEvent(event) + _failure_text(event)
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


def make_observer(fmt: str, out: IO[str], level: str = "info") -> ILogObserver:
    base = MaskedJsonObserver(out) if fmt == "json" else MaskedTextObserver(out)
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[level])
    return FilteringLogObserver(base, [predicate])


def open_log_file(path: str) -> IO[str]:
    if path == "-":
        return sys.stdout
    return open(path, "a", encoding="utf-8", buffering=1)


def start_logging(fmt: str, path: str, level: str) -> IO[str]:
    """Route every twisted.logger event (and stdlib warnings) through the masked observer."""
    out = open_log_file(path)
    globalLogBeginner.beginLoggingTo([make_observer(fmt, out, level)],
                                     redirectStandardIO=False)
    return out
