"""Whether a caller sent to the agents' queue reached an agent, from Asterisk's own events.

A transfer leaves AsyncAGI, so the flow cannot see what happens next; the call
record needs it: ``transferred`` only when an agent answered (``AgentConnect``),
``abandoned`` when the caller hung up first (``QueueCallerAbandon``; a hang-up
during the "transferring" notice is seen by the flow itself) or left the queue
with no agent (``QueueCallerLeave`` not followed by ``AgentConnect``). These are
``agent`` events, the class the daemon's AMI user reads; a ``Hangup`` (class
``call``) also settles it where that class is read.
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ivr.asterisk.ami_codec import Message

ANSWERED, ABANDONED, UNKNOWN = "answered", "abandoned", "unknown"
# After QueueCallerLeave, how long an AgentConnect for the same caller may take to follow.
CONNECT_AFTER_LEAVE_S = 2.0
# Past this the fate is unknown (an event lost): the flow and its record are not held longer.
LONGEST_WAIT_S = 4 * 3600.0


class AgentAnswers:
    """Watches the AMI link for the fate of callers handed to the agents' queue."""

    def __init__(self, link, clock: IReactorTime):
        self.clock = clock
        self._waiting: dict[str, tuple[Deferred, list[IDelayedCall]]] = {}
        self._unsubscribe: list[Callable[[], None]] = [
            link.subscribe("AgentConnect", lambda e: self._settle(e, ANSWERED)),
            link.subscribe("QueueCallerAbandon", lambda e: self._settle(e, ABANDONED)),
            link.subscribe("QueueCallerLeave", self._left),
            link.subscribe("Hangup", lambda e: self._settle(e, ABANDONED)),
        ]
        # Events missed while the link is down: the caller left the IVR, fate unknown.
        link.on_down(self._link_down)

    def watch(self, uniqueid: str) -> Deferred:
        """Fires with ANSWERED, ABANDONED or UNKNOWN; call before the caller leaves the IVR,
        so that an event racing the transfer is not missed."""
        if uniqueid not in self._waiting:
            timer = self.clock.callLater(LONGEST_WAIT_S, self._resolve, uniqueid, UNKNOWN)
            self._waiting[uniqueid] = (Deferred(), [timer])
        return self._waiting[uniqueid][0]

    def _left(self, event: Message) -> None:
        uniqueid = event.get("Uniqueid") or ""
        if uniqueid in self._waiting:
            self._waiting[uniqueid][1].append(self.clock.callLater(
                CONNECT_AFTER_LEAVE_S, self._resolve, uniqueid, ABANDONED))

    def _settle(self, event: Message, fate: str) -> None:
        self._resolve(event.get("Uniqueid") or "", fate)

    def _resolve(self, uniqueid: str, fate: str) -> None:
        waiting = self._waiting.pop(uniqueid, None)
        if waiting is None:
            return
        d, timers = waiting
        for timer in timers:
            if timer.active():
                timer.cancel()
        d.callback(fate)

    def _link_down(self) -> None:
        for uniqueid in list(self._waiting):
            self._resolve(uniqueid, UNKNOWN)
