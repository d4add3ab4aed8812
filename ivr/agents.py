"""Whether a caller sent to the agents' queue reached an agent, from Asterisk's own events.

A transfer leaves AsyncAGI, so the flow cannot see what happens next; the call
record needs it: ``transferred`` only when an agent answered (``AgentConnect``),
``abandoned`` when the caller hung up first (``QueueCallerAbandon``, or a
``Hangup`` before any agent, also during the "transferring" notice).
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred

from ivr.asterisk.ami_codec import Message

ANSWERED, ABANDONED, UNKNOWN = "answered", "abandoned", "unknown"


class AgentAnswers:
    """Watches the AMI link for the fate of callers handed to the agents' queue."""

    def __init__(self, link):
        self._waiting: dict[str, Deferred] = {}
        self._unsubscribe: list[Callable[[], None]] = [
            link.subscribe("AgentConnect", lambda e: self._settle(e, ANSWERED)),
            link.subscribe("QueueCallerAbandon", lambda e: self._settle(e, ABANDONED)),
            link.subscribe("Hangup", lambda e: self._settle(e, ABANDONED)),
        ]
        # Events missed while the link is down: the caller left the IVR, fate unknown.
        link.on_down(self._link_down)

    def watch(self, uniqueid: str) -> Deferred:
        """Fires with ANSWERED, ABANDONED or UNKNOWN; call before the caller leaves the IVR,
        so that a hang-up racing the transfer is not missed."""
        d = self._waiting.get(uniqueid)
        if d is None:
            d = self._waiting[uniqueid] = Deferred()
        return d

    def _settle(self, event: Message, fate: str) -> None:
        d = self._waiting.pop(event.get("Uniqueid") or "", None)
        if d is not None:
            d.callback(fate)

    def _link_down(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for d in waiting.values():
            d.callback(UNKNOWN)
