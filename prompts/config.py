"""The [prompts] section: where the prompt library lives and which formats it keeps."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SECTIONS = {"prompts"}
PREFIXES: set[str] = set()


@dataclass(frozen=True)
class PromptsConfig:
    library_dir: Path  # versions and the installed tree Asterisk reads
    formats: tuple[str, ...]
    wideband: bool
    loudness_dbfs: float
    max_seconds: float


def parse(ini, daemon, centers) -> PromptsConfig:
    s = ini.section("prompts")
    formats = s.list("formats", ("wav", "ulaw", "alaw"))
    for f in formats:
        if f not in ("wav", "ulaw", "alaw", "sln", "sln16", "gsm"):
            raise s.error("formats", f"unknown format {f!r}")
    return PromptsConfig(
        library_dir=s.path_value("library_dir", str(daemon.state_dir / "prompts")),
        formats=formats,
        wideband=s.bool("wideband", False),
        loudness_dbfs=s.float("loudness_dbfs", -20.0, min=-40, max=-3),
        max_seconds=s.float("max_seconds", 120.0, min=1, max=600),
    )
