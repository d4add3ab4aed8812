"""Test doubles for the outbox's neighbours, shipped like treq's StubTreq: no sockets, no threads.

``InlineDatabase`` runs each transaction on the calling thread (so tests drive
time with ``task.Clock``); ``FakeRouter`` holds every submit until the test
answers it; ``split_encode`` cuts text into parts like UCS2 concatenation does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.defer import Deferred, maybeDeferred

from storage.db import Database


class InlineDatabase(Database):
    """A real database whose transactions run synchronously on the caller's thread."""

    def run(self, fn, *args, **kwargs):
        return maybeDeferred(self.run_sync, fn, *args, **kwargs)


@dataclass
class FakeEncoded:
    parts: list
    data_coding: int
    esm_class: int
    part_count: int


def split_encode(text: str, udh16: bool = False, max_parts: int | None = None) -> FakeEncoded:
    """UCS2-like split: one part up to 70 characters, else 67 per part with a 6-byte UDH."""
    raw = text.encode("utf-16-be")
    if len(text) <= 70:
        return FakeEncoded([raw], 8, 0, 1)
    chunks = [text[i:i + 67] for i in range(0, len(text), 67)]
    if max_parts is not None and len(chunks) > max_parts:
        raise ValueError(f"{len(chunks)} parts, at most {max_parts} allowed")
    parts = [bytes([5, 0, 3, 7, len(chunks), i + 1]) + c.encode("utf-16-be")
             for i, c in enumerate(chunks)]
    return FakeEncoded(parts, 8, 0x40, len(parts))


class FakeTemporary(Exception):
    """Stands in for the router's TemporaryError."""


class FakeThrottled(FakeTemporary):
    """Stands in for Throttled (ESME_RTHROTTLED / ESME_RMSGQFUL)."""


class FakePermanent(Exception):
    """Stands in for the router's PermanentError(status)."""

    def __init__(self, status):
        super().__init__(f"status {status}")
        self.status = status


@dataclass
class FakeSubmitted:
    message_id: str
    smsc: str
    bind: str = "fake-0"


@dataclass
class FakeRouter:
    """Holds each submit's Deferred until the test answers it; capacity is a simple window."""

    window: int = 64
    pending: list = field(default_factory=list)  # (part, Deferred)
    sent: list = field(default_factory=list)
    _waiters: list = field(default_factory=list)
    _next_id: int = 0

    def submit(self, part, ref=None) -> Deferred:
        d: Deferred = Deferred()
        self.pending.append((part, d))
        self.sent.append(part)
        return d

    full: set = field(default_factory=set)  # destination prefixes whose SMSC has no room
    up: bool = True  # False: no bind is bound

    def has_room(self, destination: str) -> bool | None:
        if not self.up:
            return None
        if any(destination.startswith(p) for p in self.full):
            return False
        return len(self.pending) < self.window

    def bound_count(self) -> int:
        return 1 if self.up else 0

    def wait_for_capacity(self) -> Deferred:
        d: Deferred = Deferred()
        self._waiters.append(d)
        return d

    def states(self) -> dict:
        return {"fake": {"binds": 1, "bound": 1, "inflight": len(self.pending)}}

    def routes(self) -> dict:
        return {"routes": {"fake": {"protocol": "smpp", "carriers": []}}, "carriers": {}}

    def _take(self, index: int):
        part, d = self.pending.pop(index)
        waiters, self._waiters = self._waiters, []
        return part, d, waiters

    def answer(self, index: int = 0, message_id: str | None = None) -> str:
        """Answer one pending submit with a message id (as a submit_sm_resp would)."""
        part, d, waiters = self._take(index)
        self._next_id += 1
        mid = message_id or f"M{self._next_id}"
        d.callback(FakeSubmitted(mid, "fake"))
        for w in waiters:
            w.callback(None)
        return mid

    def answer_all(self) -> list[str]:
        ids = []
        while self.pending:
            ids.append(self.answer(0))
        return ids

    def fail(self, index: int = 0, error: Exception | None = None) -> None:
        part, d, waiters = self._take(index)
        d.errback(error or FakeTemporary("throttled"))
        for w in waiters:
            w.callback(None)
