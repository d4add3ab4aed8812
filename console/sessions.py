"""Console sessions (idle timeout, one CSRF token each) and per-peer rate limits, in memory.

A session is a random 32-byte token in an HttpOnly SameSite=Strict cookie; the
server keeps the user and a separate CSRF token that every form posts back. The
clock is injected, so tests move time instead of sleeping.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from console.accounts import User


@dataclass
class Session:
    token: str
    user: User
    csrf: str
    last_seen: float
    lang: str = "zh"


@dataclass
class SessionStore:
    clock: object
    idle_seconds: float
    sessions: dict[str, Session] = field(default_factory=dict)

    def open(self, user: User) -> Session:
        now = self.clock.seconds()
        self._expire(now)
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), now)
        self.sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session for a cookie, its idle time restarted; None once idle too long."""
        if not token:
            return None
        now = self.clock.seconds()
        session = self.sessions.get(token)
        if session is None:
            return None
        if now - session.last_seen > self.idle_seconds:
            del self.sessions[token]
            return None
        session.last_seen = now
        return session

    def close(self, token: str) -> None:
        self.sessions.pop(token, None)

    def close_user(self, name: str) -> None:
        for token in [t for t, s in self.sessions.items() if s.user.name == name]:
            del self.sessions[token]

    def _expire(self, now: float) -> None:
        for token in [t for t, s in self.sessions.items() if now - s.last_seen > self.idle_seconds]:
            del self.sessions[token]


def csrf_ok(session: Session | None, posted: str | None) -> bool:
    """A form is accepted only with its session's own token."""
    return session is not None and posted is not None and \
        hmac.compare_digest(session.csrf.encode(), posted.encode())


class RateLimit:
    """At most ``per_minute`` events per key in any sliding minute (fixed one-minute buckets
    of the clock, the previous one weighted by how much of it still overlaps)."""

    def __init__(self, clock, per_minute: int, max_keys: int = 10000):
        self.clock, self.per_minute, self.max_keys = clock, per_minute, max_keys
        self.buckets: dict[str, tuple[int, int, int]] = {}  # key -> (minute, this, previous)

    def allow(self, key: str) -> bool:
        now = self.clock.seconds()
        minute = int(now // 60)
        start, this, previous = self.buckets.get(key, (minute, 0, 0))
        if start != minute:
            previous = this if start == minute - 1 else 0
            this, start = 0, minute
        weight = 1 - (now / 60 - minute)
        if this + previous * weight >= self.per_minute:
            self.buckets[key] = (start, this, previous)
            return False
        if len(self.buckets) >= self.max_keys and key not in self.buckets:
            self.buckets.clear()  # a flood of addresses: forget them all rather than grow
        self.buckets[key] = (start, this + 1, previous)
        return True
