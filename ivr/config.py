"""The [ami] and [ivr] sections: how to reach Asterisk and how calls are driven."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SECTIONS = {"ami", "ivr"}
PREFIXES: set[str] = set()


@dataclass(frozen=True)
class AmiConfig:
    enabled: bool
    endpoint: str
    username: str
    secret: str = field(repr=False)
    action_timeout: float
    ping_interval: float
    heartbeat_interval: float
    heartbeat_variable: str
    watchdog_seconds: int


@dataclass(frozen=True)
class IvrConfig:
    ami: AmiConfig
    menus_dir: Path
    agi_timeout: float
    password_attempts: int
    lock_minutes: int
    # Where a transfer to agents continues in the dialplan (the queue's entry). The queue
    # itself is named in the dialplan (dialplans/README.md, agent_queue), not here.
    agent_context: str = "hotline-queue"
    agent_exten: str = "s"


def parse(ini, daemon, centers) -> IvrConfig:
    a = ini.section("ami")
    s = ini.section("ivr")
    enabled = a.bool("enabled", True)
    if not enabled:
        a.ignore("secret")
    ami = AmiConfig(
        enabled=enabled,
        endpoint=a.endpoint("endpoint", "tcp:host=127.0.0.1:port=5038"),
        username=a.str("username", "hotline"),
        secret=a.secret("secret", "env:HOTLINE_AMI_SECRET") if enabled else "",
        action_timeout=a.float("action_timeout", 10.0, min=0.5, max=120),
        ping_interval=a.float("ping_interval", 20.0, min=1, max=600),
        heartbeat_interval=a.float("heartbeat_interval", 5.0, min=1, max=60),
        heartbeat_variable=a.str("heartbeat_variable", "HOTLINE_HEARTBEAT"),
        watchdog_seconds=a.int("watchdog_seconds", 10, min=3, max=300),
    )
    return IvrConfig(
        ami=ami,
        menus_dir=s.path_value("menus_dir", str(Path(__file__).with_name("menus"))),
        agi_timeout=s.float("agi_timeout", 60.0, min=1, max=600),
        password_attempts=s.int("password_attempts", 3, min=1, max=10),
        lock_minutes=s.int("lock_minutes", 30, min=1, max=7 * 24 * 60),
        agent_context=s.str("agent_context", "hotline-queue"),
        agent_exten=s.str("agent_exten", "s"),
    )
