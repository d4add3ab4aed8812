"""The [ami] and [ivr] sections: how to reach Asterisk and how calls are driven."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SECTIONS = {"ami", "ivr"}
PREFIXES: set[str] = set()


@dataclass(frozen=True)
class AmiConfig:
    enabled: bool
    # Every Asterisk node this daemon drives calls on (several behind a SIP balancer).
    endpoints: tuple[str, ...]
    username: str
    secret: str = field(repr=False)
    action_timeout: float
    ping_interval: float
    heartbeat_interval: float
    heartbeat_variable: str
    watchdog_seconds: int
    # Reconnect backoff, seconds: doubling from reconnect_min up to reconnect_max. Asterisk
    # is a local peer (same host or LAN), so the cap is short: the link is back within
    # 2 s of the manager's return, however long it was away.
    reconnect_min: float = 0.2
    reconnect_max: float = 1.0
    # How long calls wait, suspended, for the link to come back before they are given up
    # (then recovered to the fallback); keep it below watchdog_seconds.
    resume_grace: float = 5.0


@dataclass(frozen=True)
class IvrConfig:
    ami: AmiConfig
    menus_dir: Path
    agi_timeout: float
    password_attempts: int
    lock_minutes: int
    # Wrong passwords from one caller number per hour, whatever the accounts, before its
    # password tries are refused for lock_minutes (one common password cannot be sprayed).
    caller_password_failures: int = 10
    # How long an identified caller's account kept in ivr_identity counts, for a daemon
    # adopting the call; longer than any call, short for privacy (README "Privacy").
    identity_minutes: int = 60
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
    endpoints = tuple(a.endpoint("endpoint", "tcp:host=127.0.0.1:port=5038").split())
    for extra in endpoints[1:]:
        if ":" not in extra:
            raise a.error("endpoint", f"must be endpoints like tcp:host=H:port=P, not {extra!r}")
    ami = AmiConfig(
        enabled=enabled,
        endpoints=endpoints,
        username=a.str("username", "hotline"),
        secret=a.secret("secret", "env:HOTLINE_AMI_SECRET") if enabled else "",
        action_timeout=a.float("action_timeout", 10.0, min=0.5, max=120),
        ping_interval=a.float("ping_interval", 20.0, min=1, max=600),
        heartbeat_interval=a.float("heartbeat_interval", 5.0, min=1, max=60),
        heartbeat_variable=a.str("heartbeat_variable", "HOTLINE_HEARTBEAT"),
        watchdog_seconds=a.int("watchdog_seconds", 10, min=3, max=300),
        reconnect_min=a.float("reconnect_min", 0.2, min=0.05, max=60),
        reconnect_max=a.float("reconnect_max", 1.0, min=0.1, max=300),
        resume_grace=a.float("resume_grace", 5.0, min=0, max=60),
    )
    return IvrConfig(
        ami=ami,
        menus_dir=s.path_value("menus_dir", str(Path(__file__).with_name("menus"))),
        agi_timeout=s.float("agi_timeout", 60.0, min=1, max=600),
        password_attempts=s.int("password_attempts", 3, min=1, max=10),
        lock_minutes=s.int("lock_minutes", 30, min=1, max=7 * 24 * 60),
        caller_password_failures=s.int("caller_password_failures", 10, min=1, max=1000),
        identity_minutes=s.int("identity_minutes", 60, min=10, max=24 * 60),
        agent_context=s.str("agent_context", "hotline-queue"),
        agent_exten=s.str("agent_exten", "s"),
    )
