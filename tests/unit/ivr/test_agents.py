"""AgentAnswers: the fate of a caller handed to the agents' queue, from AMI events."""
from __future__ import annotations

from twisted.internet.task import Clock

from ivr.agents import (ABANDONED, ANSWERED, CONNECT_AFTER_LEAVE_S, LONGEST_WAIT_S, UNKNOWN,
                        AgentAnswers)
from ivr.asterisk.ami_codec import Message


class FakeLink:
    """The subscribe / on_down part of ivr.asterisk.ami_link.AmiLink."""

    def __init__(self):
        self.subscribers, self.down = {}, []

    def subscribe(self, name, callback):
        self.subscribers.setdefault(name, []).append(callback)
        return lambda: None

    def on_down(self, callback):
        self.down.append(callback)

    def emit(self, name, **headers):
        message = Message([("Event", name), *headers.items()])
        for callback in self.subscribers.get(name, []):
            callback(message)


def _fate(agents, uniqueid):
    out = []
    agents.watch(uniqueid).addCallback(out.append)
    return out


def test_agent_connect_is_answered_and_a_later_hangup_changes_nothing():
    """AgentConnect first: answered; the caller's Hangup after the talk is not abandonment."""
    link = FakeLink()
    agents = AgentAnswers(link, Clock())
    fate = _fate(agents, "1.1")
    link.emit("AgentConnect", Uniqueid="1.1")
    link.emit("Hangup", Uniqueid="1.1")
    assert fate == [ANSWERED]


def test_abandon_or_hangup_before_an_agent():
    """QueueCallerAbandon, or a Hangup before any agent (e.g. in the "transferring"
    notice), is abandoned; events of other channels are ignored."""
    link = FakeLink()
    agents = AgentAnswers(link, Clock())
    first, second = _fate(agents, "1.1"), _fate(agents, "1.2")
    link.emit("Hangup", Uniqueid="9.9")
    link.emit("QueueCallerAbandon", Uniqueid="1.1")
    link.emit("Hangup", Uniqueid="1.2")
    assert (first, second) == ([ABANDONED], [ABANDONED])


def test_link_lost_leaves_the_fate_unknown():
    """Events missed while the link is down cannot be waited for."""
    link = FakeLink()
    agents = AgentAnswers(link, Clock())
    fate = _fate(agents, "1.1")
    for callback in link.down:
        callback()
    assert fate == [UNKNOWN]


def test_leaving_the_queue_without_an_agent_is_abandoned():
    """QueueCallerLeave (the AMI user reads no Hangup) settles as abandoned unless an
    AgentConnect follows at once; a watch never settled gives up after LONGEST_WAIT_S."""
    link, clock = FakeLink(), Clock()
    agents = AgentAnswers(link, clock)
    answered, left, lost = _fate(agents, "1.1"), _fate(agents, "1.2"), _fate(agents, "1.3")
    link.emit("QueueCallerLeave", Uniqueid="1.1")
    link.emit("AgentConnect", Uniqueid="1.1")
    link.emit("QueueCallerLeave", Uniqueid="1.2")
    clock.advance(CONNECT_AFTER_LEAVE_S)
    assert (answered, left, lost) == ([ANSWERED], [ABANDONED], [])
    clock.advance(LONGEST_WAIT_S)
    assert lost == [UNKNOWN] and not clock.getDelayedCalls()
