"""The [console] section: where the administrators' console listens and its login rules."""
from __future__ import annotations

from dataclasses import dataclass

SECTIONS = {"console"}
PREFIXES: set[str] = set()


@dataclass(frozen=True)
class ConsoleConfig:
    enabled: bool
    listen: str  # its own endpoint, apart from the API port the city systems call
    idle_minutes: float  # a session unused this long is over
    max_failures: int  # wrong passwords in a row before the account locks
    lockout_minutes: float
    login_per_minute: int  # login attempts one peer address may make per minute
    requests_per_minute: int  # any request, per peer address

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry Secure when the console is served over TLS."""
        return self.listen.startswith(("ssl:", "tls:"))


def parse(ini, daemon, centers) -> ConsoleConfig:
    s = ini.section("console")
    return ConsoleConfig(
        enabled=s.bool("enabled", True),
        listen=s.endpoint("listen", "tcp:port=8330:interface=127.0.0.1"),
        idle_minutes=s.float("idle_minutes", 15, min=1, max=24 * 60),
        max_failures=s.int("max_failures", 5, min=1, max=50),
        lockout_minutes=s.float("lockout_minutes", 15, min=1, max=7 * 24 * 60),
        login_per_minute=s.int("login_per_minute", 10, min=1, max=1000),
        requests_per_minute=s.int("requests_per_minute", 600, min=10, max=100000),
    )
