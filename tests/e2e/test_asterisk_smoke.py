"""The real Asterisk 22 with the project's dialplans, driven over AMI + AsyncAGI, called by sipp."""
from __future__ import annotations

import pytest
from twisted.internet import task

from ivr.agi import DigitsResult
from ivr.ami_link import AmiLink
from ivr.calls import CallDispatcher
from sandbox.pytest_asterisk import ami_endpoint, run_reactor
from sandbox.sipp import Keys, Pause, SippCall

pytestmark = pytest.mark.e2e


def make_link(reactor, inst):
    return AmiLink(ami_endpoint(reactor, inst), inst.ami_username, inst.ami_secret, reactor,
                   action_timeout=5, ping_interval=10, initial_delay=0.2, max_delay=2)


async def wait_sipp(reactor, sipp: SippCall, limit: float = 40.0):
    """Poll the sipp process from the reactor (never block it)."""
    for _ in range(int(limit * 10)):
        if sipp.process.poll() is not None:
            break
        await task.deferLater(reactor, 0.1)
    return sipp.finish(timeout=5)


async def wait_for(reactor, predicate, limit: float = 20.0) -> bool:
    for _ in range(int(limit * 10)):
        if predicate():
            return True
        await task.deferLater(reactor, 0.1)
    return predicate()


def test_keys_pressed_by_caller_reach_get_data(asterisk, tmp_path):
    """A sipp call to 12329 pressing 1 2 # gives the flow's get_data the digits 12."""
    instance = asterisk.variables["instance"]
    got = []

    async def flow(session):
        assert session.args[:2] == [instance, "ivr"]
        got.append(await session.get_data(["beep"], 8000, 4))

    async def main(reactor):
        link = make_link(reactor, asterisk)
        dispatcher = CallDispatcher(link, instance, flow, reactor, heartbeat_interval=2)
        dispatcher.start()
        link.start()
        await link.when_up()
        sipp = SippCall("127.0.0.1", asterisk.sip_port, "12329",
                        steps=[Pause(1500), Keys("12#")], hangup="wait", wait_bye_ms=15000,
                        workdir=tmp_path / "sipp")
        sipp.start()
        result = await wait_sipp(reactor, sipp)
        dispatcher.stop()
        await link.stop()
        return result, dict(dispatcher.stats)

    result, stats = run_reactor(main, timeout=60)
    assert got == [DigitsResult("12", False)], (result.stdout, result.errors)
    assert result.ok, result.errors
    assert stats["completed"] == 1


def test_no_heartbeat_sends_caller_to_apology_and_queue(asterisk, tmp_path):
    """With no daemon heartbeat the dialplan apologises and queues the caller (office hours)."""
    events = []

    async def main(reactor):
        link = make_link(reactor, asterisk)
        link.subscribe("UserEvent", events.append)
        link.subscribe("QueueCallerJoin", events.append)
        link.subscribe("AsyncAGIStart", events.append)
        link.start()
        await link.when_up()
        sipp = SippCall("127.0.0.1", asterisk.sip_port, "12329", steps=[Pause(6000)],
                        hangup="bye", workdir=tmp_path / "sipp")
        sipp.start()
        result = await wait_sipp(reactor, sipp)
        await link.stop()
        return result

    result = run_reactor(main, timeout=60)
    names = [e.event for e in events]
    assert "AsyncAGIStart" not in names
    fallback = [e for e in events if e.event == "UserEvent"]
    assert fallback and fallback[0].get("UserEvent") == "HotlineFallback"
    assert fallback[0].get("Reason") == "no-heartbeat"
    joins = [e for e in events if e.event == "QueueCallerJoin"]
    assert joins and joins[0].get("Queue") == "hotline-agents"
    assert result.ok, result.errors
