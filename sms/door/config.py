"""The [sms.door] section: filters, batch size, SMPP server, callbacks. Clients live in the
database (``hotline door client ...``), not here."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sms.door.filters import DEFAULT_WORDS


@dataclass(frozen=True)
class DoorConfig:
    enabled: bool = True
    duplicate_window: float = 86400.0  # seconds; 0 = no destination+text duplicate filter
    banned_words: Path = DEFAULT_WORDS
    max_free_parts: int = 5
    max_batch: int = 10_000
    max_body: int = 4 * 1024 * 1024  # the send API's own body cap (a batch of 10,000)
    smpp_listen: str = ""  # e.g. tcp:2776:interface=127.0.0.1; empty = no SMPP server
    smpp_window: int = 64
    source_base: str = "12329"  # MO to base + extension goes to the extension's owner
    callback_timeout: float = 10.0
    callback_retry_base: float = 5.0
    callback_retry_max: float = 600.0
    callback_max_attempts: int = 12  # then the event is dead-lettered


def parse(ini) -> DoorConfig:
    s = ini.section("sms.door")
    words = s.path_value("banned_words", str(DEFAULT_WORDS))
    if not words.is_file():
        raise s.error("banned_words", f"no such file: {words}")
    base = s.float("callback_retry_base", 5.0, min=0.01, max=3600)
    return DoorConfig(
        enabled=s.bool("enabled", True),
        duplicate_window=s.float("duplicate_window", 86400.0, min=0, max=30 * 86400),
        banned_words=words,
        max_free_parts=s.int("max_free_parts", 5, min=1, max=10),
        max_batch=s.int("max_batch", 10_000, min=1, max=50_000),
        max_body=s.int("max_body", 4 * 1024 * 1024, min=1024, max=64 * 1024 * 1024),
        smpp_listen=s.str("smpp_listen", ""),
        smpp_window=s.int("smpp_window", 64, min=1, max=1024),
        source_base=s.str("source_base", "12329"),
        callback_timeout=s.float("callback_timeout", 10.0, min=0.1, max=120),
        callback_retry_base=base,
        callback_retry_max=s.float("callback_retry_max", 600.0, min=base, max=86400),
        callback_max_attempts=s.int("callback_max_attempts", 12, min=1, max=1000),
    )
