"""The [prompts] section: where the prompt library lives, which formats it keeps,
how recordings travel between Asterisk's host and the daemon, and staff login rules."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prompts import transfer

SECTIONS = {"prompts"}
PREFIXES: set[str] = set()
FORMATS = ("wav", "ulaw", "alaw", "sln", "sln16", "gsm")


@dataclass(frozen=True)
class PromptsConfig:
    library_dir: Path  # versions and the installed tree Asterisk reads
    formats: tuple[str, ...]
    wideband: bool
    loudness_dbfs: float
    max_seconds: float
    # Where RECORD FILE writes, as a path on Asterisk's host (the same path here
    # when the folder is a shared mount).
    recording_dir: Path = Path("/var/tmp/hotline-recordings")
    # Empty: shared mount. Else argv templates with {remote} {local} / {library_dir}.
    fetch_command: str = ""
    publish_command: str = ""
    command_timeout: float = 60.0
    silence_seconds: float = 4.0  # a recording by phone stops after this much silence
    pin_max_failures: int = 5
    pin_lockout_minutes: float = 30.0
    pin_caller_failures: int = 5  # wrong PINs per caller number per hour, all staff numbers

    @property
    def all_formats(self) -> tuple[str, ...]:
        """The configured formats, plus ``sln16`` when wideband is on."""
        if self.wideband and "sln16" not in self.formats:
            return self.formats + ("sln16",)
        return self.formats


def parse(ini, daemon, centers) -> PromptsConfig:
    s = ini.section("prompts")
    formats = s.list("formats", ("wav", "ulaw", "alaw"))
    for f in formats:
        if f not in FORMATS:
            raise s.error("formats", f"unknown format {f!r}")
    library_dir = s.path_value("library_dir", str(daemon.state_dir / "prompts"))
    commands = {key: s.str(key, "") for key in ("fetch_command", "publish_command")}
    for key, template in commands.items():
        try:
            transfer.validate(key, template)
        except transfer.TransferError as e:
            raise s.error(key, str(e)) from None
    return PromptsConfig(
        library_dir=library_dir,
        formats=formats,
        wideband=s.bool("wideband", False),
        loudness_dbfs=s.float("loudness_dbfs", -20.0, min=-40, max=-3),
        max_seconds=s.float("max_seconds", 120.0, min=1, max=600),
        recording_dir=s.path_value("recording_dir", str(library_dir / "incoming")),
        fetch_command=commands["fetch_command"],
        publish_command=commands["publish_command"],
        command_timeout=s.float("command_timeout", 60.0, min=1, max=3600),
        silence_seconds=s.float("silence_seconds", 4.0, min=1, max=30),
        pin_max_failures=s.int("pin_max_failures", 5, min=1, max=20),
        pin_lockout_minutes=s.float("pin_lockout_minutes", 30.0, min=1, max=24 * 60),
        pin_caller_failures=s.int("pin_caller_failures", 5, min=1, max=100),
    )
