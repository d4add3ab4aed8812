"""The project's Asterisk configuration as templates, and the pure function that fills them.

Files here are Asterisk config files with ``{{name}}`` placeholders (Asterisk
itself uses ``${...}``, so the two never clash). ``render`` fills every file
from ``DEFAULTS`` plus the caller's values and refuses unknown or missing names,
so a typo fails at render time rather than as a silent dialplan bug.
"""
from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")

DEFAULTS: dict[str, str] = {
    "etcdir": "/etc/asterisk",
    "moddir": "/usr/lib/x86_64-linux-gnu/asterisk/modules",
    "dbdir": "/var/lib/asterisk",
    "spooldir": "/var/spool/asterisk",
    "rundir": "/var/run/asterisk",
    "logdir": "/var/log/asterisk",
    "cachedir": "/var/cache/asterisk",
    "system_name": "hotline",
    "ami_address": "127.0.0.1",
    "ami_port": "5038",
    "ami_username": "hotline",
    "ami_permit": "127.0.0.1/255.255.255.255",
    "sip_address": "127.0.0.1",
    "sip_port": "5060",
    "caller_match": "127.0.0.1",
    "internal_match": "127.0.0.2",
    "admin_callers": "",
    "rtp_start": "10000",
    "rtp_end": "20000",
    "instance": "hotline",
    "center": "default",
    "hotline_number": "12329",
    "admin_number": "12329000",
    "heartbeat_variable": "HOTLINE_HEARTBEAT",
    "heartbeat_max_age": "15",
    # The daemons a node's calls may go to, in order: instance/heartbeat_variable pairs
    # joined by "&"; empty means the one daemon named by instance and heartbeat_variable.
    "instances": "",
    "answer_watchdog": "2",
    "digit_timeout": "3",
    "response_timeout": "6",
    "prompt_library": "/var/lib/hotline/prompts",
    "language": "zh",
    "office_hours": "08:30-17:30,mon-fri,*,*",
    "agent_queue": "hotline-agents",
    "queue_timeout": "600",
}
# ami_secret has no default: it must be given.
REQUIRED = ("ami_secret",)


class TemplateError(ValueError):
    """A placeholder with no value, or a value for no placeholder, or a value with a newline."""


def template_files() -> list[Path]:
    return sorted(HERE.glob("*.conf"))


def placeholders() -> set[str]:
    names: set[str] = set()
    for path in template_files():
        names.update(_PLACEHOLDER.findall(path.read_text()))
    return names


def fill(text: str, values: dict[str, str], where: str = "") -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise TemplateError(f"{where}: no value for {{{{{name}}}}}")
        return values[name]

    return _PLACEHOLDER.sub(one, text)


def render(values: dict[str, str], out_dir: Path) -> list[Path]:
    """Write every template into ``out_dir`` with DEFAULTS overridden by ``values``."""
    merged = {**DEFAULTS, **{k: str(v) for k, v in values.items()}}
    if not merged["instances"]:
        merged["instances"] = f"{merged['instance']}/{merged['heartbeat_variable']}"
    unknown = set(values) - set(DEFAULTS) - set(REQUIRED)
    if unknown:
        raise TemplateError(f"unknown template variables: {', '.join(sorted(unknown))}")
    for name in REQUIRED:
        if not merged.get(name):
            raise TemplateError(f"{name} is required")
    for name, value in merged.items():
        if "\n" in value or "\r" in value:
            raise TemplateError(f"{name} holds a line break")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_]+(&[A-Za-z0-9_.-]+/[A-Za-z0-9_]+)*",
                        merged["instances"]):
        raise TemplateError("instances must be instance/heartbeat_variable pairs joined by &")
    if not re.fullmatch(r"[0-9+]*(&[0-9+]+)*", merged["admin_callers"]):
        raise TemplateError("admin_callers must be caller numbers joined by & (e.g. 8001&8002)")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in template_files():
        target = out_dir / path.name
        target.write_text(fill(path.read_text(), merged, path.name))
        written.append(target)
    return written
