"""The real Asterisk 22 with the project's dialplans, driven over AMI + AsyncAGI, called by sipp."""
from __future__ import annotations

import pytest
from twisted.internet import task

from ivr.asterisk.agi import DigitsResult
from ivr.asterisk.calls import CallDispatcher
from sandbox.pytest_asterisk import run_reactor
from sandbox.sipp import Keys, Pause, SippCall
from tests.support.asterisk_ami import dispatching, make_link

pytestmark = pytest.mark.e2e


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


def test_the_shipped_configuration_loads_without_a_refused_keyword(asterisk):
    """Asterisk reads every option dialplans/ sets: none is refused as an invalid keyword
    (a refused one is silently replaced by Asterisk's default, as manager.conf's
    writetimeout once was: 100 ms instead of 1000 before a slow reader is dropped)."""
    logged = (asterisk.log_dir / "messages").read_text(errors="replace")
    assert "Invalid keyword" not in logged and "Unknown keyword" not in logged, logged[-2000:]


def test_keys_pressed_by_caller_reach_get_data(asterisk, tmp_path):
    """A sipp call to 12329 pressing 1 2 # gives the flow's get_data the digits 12."""
    instance = asterisk.variables["instance"]
    got = []

    async def flow(session):
        assert session.args[:2] == [instance, "ivr"]
        got.append(await session.get_data(["beep"], 8000, 4))

    async def main(reactor):
        link, dispatcher = await dispatching(reactor, asterisk, flow)
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


class Observer:
    """A second AMI session that records the events a test asserts on, with arrival times."""

    def __init__(self, reactor, inst, names=("UserEvent", "QueueCallerJoin", "AsyncAGIStart",
                                            "AsyncAGIEnd")):
        self.reactor = reactor
        self.events = []
        self.link = make_link(reactor, inst)
        for name in names:
            self.link.subscribe(name, lambda m: self.events.append((reactor.seconds(), m)))

    def named(self, event, **headers):
        return [(t, m) for t, m in self.events if m.event == event
                and all(m.get(k) == v for k, v in headers.items())]


async def call_waiting_in_agi(reactor, inst, tmp_path, *, watchdog_s: int, pause_ms: int,
                              resume_grace: float = 5.0):
    """An observer, a dispatcher whose flow waits in get_data, and a sipp call to 12329;
    returns (observer, link, dispatcher, sipp) once the flow holds the call."""
    started = []

    async def flow(session):
        started.append(session.channel)
        await session.get_data(["beep"], 30000, 4)

    observer = Observer(reactor, inst)
    observer.link.start()
    link, dispatcher = await dispatching(reactor, inst, flow, heartbeat_interval=1,
                                         watchdog_s=watchdog_s, resume_grace=resume_grace)
    await observer.link.when_up()
    sipp = SippCall("127.0.0.1", inst.sip_port, "12329", steps=[Pause(pause_ms)],
                    hangup="bye", workdir=tmp_path / "sipp")
    sipp.start()
    assert await wait_for(reactor, lambda: started)
    return observer, link, dispatcher, sipp


def test_daemon_dying_mid_call_sends_caller_to_fallback_by_watchdog(asterisk_factory, tmp_path):
    """When the daemon vanishes mid-call, the watchdog moves the caller to the queue in time."""
    inst = asterisk_factory()

    async def main(reactor):
        observer, link, dispatcher, sipp = await call_waiting_in_agi(
            reactor, inst, tmp_path, watchdog_s=3, pause_ms=12000)
        await task.deferLater(reactor, 1.5)
        died = reactor.seconds()
        dispatcher.stop()                      # the daemon is gone: no heartbeat, no re-arming,
        link.observe(lambda _link, _old, new: link.stop() if new == "down" else None)
        link.protocol.transport.abortConnection()  # no Logoff, no AMI session, nobody ends the AGI
        result = await wait_sipp(reactor, sipp)
        await observer.link.stop()
        return died, observer, result

    died, observer, result = run_reactor(main, timeout=60)
    fallback = observer.named("UserEvent", UserEvent="HotlineFallback")
    assert fallback and fallback[0][1].get("Reason") == "watchdog"
    joins = observer.named("QueueCallerJoin")
    assert joins and joins[0][0] - died < 10
    assert result.ok, result.errors


def test_reconnect_recovers_call_left_in_agi(asterisk, tmp_path):
    """A call whose flow was cut off by a link drop (no resumption configured) is recovered
    to the fallback on reconnect."""

    async def main(reactor):
        observer, link, dispatcher, sipp = await call_waiting_in_agi(
            reactor, asterisk, tmp_path, watchdog_s=10, pause_ms=9000, resume_grace=0)
        await task.deferLater(reactor, 1.0)
        dropped = reactor.seconds()
        link.protocol.transport.abortConnection()
        assert await wait_for(reactor, lambda: observer.named("QueueCallerJoin"), 15)
        result = await wait_sipp(reactor, sipp)
        dispatcher.stop()
        await link.stop()
        await observer.link.stop()
        return dropped, observer, dict(dispatcher.stats), link.snapshot(), result

    dropped, observer, stats, state, result = run_reactor(main, timeout=60)
    assert stats["link_lost"] == 1 and stats["recovered"] == 1
    assert state.reconnects == 1
    fallback = observer.named("UserEvent", UserEvent="HotlineFallback")
    assert fallback and fallback[0][1].get("Reason") == "recovered"
    assert observer.named("QueueCallerJoin")[0][0] - dropped < 10
    assert result.ok, result.errors


def test_leave_transfers_to_agent_queue_and_timeouts_behave(asterisk, tmp_path):
    """get_data keeps * as a digit and ends on the inter-digit timeout; leave() reaches the queue."""
    got = []

    async def flow(session):
        t0 = session.clock.seconds()
        got.append((await session.get_data(["beep"], 4000, 6, inter_digit_ms=1500),
                    session.clock.seconds() - t0))
        await session.leave("hotline-queue", "s", 1)

    async def main(reactor):
        observer = Observer(reactor, asterisk)
        observer.link.start()
        link, dispatcher = await dispatching(reactor, asterisk, flow)
        await observer.link.when_up()
        sipp = SippCall("127.0.0.1", asterisk.sip_port, "12329",
                        steps=[Pause(1500), Keys("7*", gap_ms=300), Pause(6000)],
                        hangup="bye", workdir=tmp_path / "sipp")
        sipp.start()
        result = await wait_sipp(reactor, sipp)
        dispatcher.stop()
        await link.stop()
        await observer.link.stop()
        return observer, result

    observer, result = run_reactor(main, timeout=60)
    (digits, took), = got
    assert digits == DigitsResult("7*", True)
    assert took < 1.8 + 1.5 + 1.5  # last key at ~1.8 s, 1.5 s of inter-digit silence, slack
    assert observer.named("QueueCallerJoin")
    assert not observer.named("UserEvent", UserEvent="HotlineFallback")
    assert result.ok, result.errors


def test_record_file_hears_caller_audio_into_bind_mounted_folder(asterisk_factory, tmp_path):
    """Speech played by sipp is recorded by RECORD FILE into a host folder mounted at its own path."""
    import shutil
    import subprocess

    from sandbox.sipp import Audio, wav_to_rtp_pcap

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    speech = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "cmn", "-w", str(speech), "您好，欢迎致电住房公积金热线"],
                   check=True, capture_output=True)
    pcap = tmp_path / "speech.pcap"
    ms = wav_to_rtp_pcap(speech, pcap)
    recordings = tmp_path / "rec"
    recordings.mkdir()
    inst = asterisk_factory(bind_mounts=[str(recordings)])
    results = []

    async def flow(session):
        results.append(await session.record_file(str(recordings / "greeting"), "wav", "#",
                                                  ms + 8000, beep=True))

    async def main(reactor):
        link, dispatcher = await dispatching(reactor, inst, flow)
        sipp = SippCall("127.0.0.1", inst.sip_port, "12329",
                        steps=[Pause(1500), Audio(pcap, ms), Keys("#")], hangup="wait",
                        workdir=tmp_path / "sipp")
        sipp.start()
        result = await wait_sipp(reactor, sipp)
        dispatcher.stop()
        await link.stop()
        return result

    result = run_reactor(main, timeout=60)
    (rec,) = results
    assert rec.code == 200 and rec.data == "dtmf" and rec.result == str(ord("#")), rec
    recorded = recordings / "greeting.wav"
    assert recorded.exists() and recorded.stat().st_size > 8000 * 2 * (ms / 1000) * 0.5
    assert result.ok, result.errors


def test_concurrent_calls_each_get_their_own_digits(asterisk, tmp_path):
    """Ten simultaneous sipp calls sending background audio, as phones do, each get 12."""
    got = []

    async def flow(session):
        got.append((session.uniqueid, await session.get_data(["beep"], 8000, 4)))

    async def main(reactor):
        link, dispatcher = await dispatching(reactor, asterisk, flow)
        sipp = SippCall("127.0.0.1", asterisk.sip_port, "12329",
                        steps=[Pause(2000), Keys("12#")], hangup="wait", calls=10, rate=20,
                        send_silence=True, workdir=tmp_path / "sipp")
        sipp.start()
        result = await wait_sipp(reactor, sipp)
        dispatcher.stop()
        await link.stop()
        return result

    result = run_reactor(main, timeout=60)
    assert len({uid for uid, _ in got}) == 10
    assert all(d == DigitsResult("12", False) for _, d in got), got
    assert result.ok, result.errors


def test_stale_instance_of_a_dead_owner_is_cleaned_up(asterisk_root, tmp_path):
    """An Asterisk is left alone while its owning process lives (as any other run's start
    or stop cleans up the shared root), and once the owner died the next cleanup stops it
    and releases its mounts. The owner dies only after the instance is up: an owner dead
    from the start made the instance stale at once, for every run sharing the root."""
    import os
    import socket
    import subprocess

    from sandbox.asterisk import AsteriskInstance, _alive, _mount_points, cleanup_stale
    from sandbox.ports import free_port
    from sandbox.ports import free_udp_range

    owner = subprocess.Popen(["sleep", "120"])
    inst = AsteriskInstance(asterisk_root, tmp_path / "crashed", free_port(),
                            free_port(kind=socket.SOCK_DGRAM), free_udp_range(20), owner=owner.pid)
    try:
        inst.start()
        pid = inst.process.pid
        target = str(asterisk_root.resolve()) + str(inst.workdir)
        cleanup_stale(asterisk_root)
        assert _alive(pid, "asterisk") and target in _mount_points()
        owner.kill()
        owner.wait()
        cleanup_stale(asterisk_root)
        inst.process.wait(10)
        assert not _alive(pid, "asterisk")
        assert target not in _mount_points()
        assert os.path.isdir(inst.workdir)  # the host folder itself is untouched
    finally:
        owner.kill()
        owner.wait()
        inst.stop()


def test_two_daemons_on_one_asterisk_only_the_owner_drives_the_call(asterisk, tmp_path):
    """Both daemons see the AsyncAGIStart; only the one named in the dialplan runs its flow."""
    instance = asterisk.variables["instance"]
    ran = {"owner": 0, "other": 0}

    def flow_for(name):
        async def flow(session):
            ran[name] += 1
            await session.stream_file("beep")
        return flow

    async def main(reactor):
        links, dispatchers = [], []
        for name, inst_name in (("owner", instance), ("other", "someone-else")):
            link = make_link(reactor, asterisk)
            dispatcher = CallDispatcher(link, inst_name, flow_for(name), reactor,
                                        heartbeat_interval=2)
            dispatcher.start()
            link.start()
            links.append(link)
            dispatchers.append(dispatcher)
        for link in links:
            await link.when_up()
        sipp = SippCall("127.0.0.1", asterisk.sip_port, "12329", steps=[Pause(3000)],
                        hangup="wait", wait_bye_ms=10000, workdir=tmp_path / "sipp")
        sipp.start()
        result = await wait_sipp(reactor, sipp)
        for dispatcher, link in zip(dispatchers, links):
            dispatcher.stop()
            await link.stop()
        return result, [dict(d.stats) for d in dispatchers]

    result, (owner, other) = run_reactor(main, timeout=60)
    assert ran == {"owner": 1, "other": 0}
    assert owner["completed"] == 1 and other["foreign"] == 1 and not other.get("started")
    assert result.ok, result.errors


def test_get_data_barge_in_over_several_prompts_and_separate_timeouts(asterisk, tmp_path):
    """A key during the first of two prompts ends both; the first-digit and inter-digit
    timeouts are separate (silence waits timeout_ms, a pause after a key inter_digit_ms).

    The caller keys at fixed times while the flow's commands start a little later under
    load, so each bound leaves a second for that: the second prompt lasts 5.7 s, and the
    8 comes 1.6 s into the third Read (it came 0.6 s after the second, and fell into it)."""
    got = []

    async def timed(session, *args, **kw):
        t0 = session.clock.seconds()
        result = await session.get_data(*args, **kw)
        got.append((result, session.clock.seconds() - t0))

    async def flow(session):
        await timed(session, ["all-circuits-busy-now", "vm-intro"], 3000, 1)  # 1.8 s + 5.7 s
        await timed(session, ["beep"], 2500, 4, inter_digit_ms=1000)      # 0.4 s + silence
        await timed(session, ["beep"], 6000, 4, inter_digit_ms=1000)      # one key, then pause

    async def main(reactor):
        link, dispatcher = await dispatching(reactor, asterisk, flow)
        sipp = SippCall("127.0.0.1", asterisk.sip_port, "12329",
                        steps=[Pause(1500), Keys("5"), Pause(4200), Keys("8"), Pause(6000)],
                        hangup="wait", send_silence=True, workdir=tmp_path / "sipp")
        sipp.start()
        result = await wait_sipp(reactor, sipp)
        dispatcher.stop()
        await link.stop()
        return result

    result = run_reactor(main, timeout=60)
    (first, t1), (second, t2), (third, t3) = got
    assert first == DigitsResult("5", False) and t1 < 3.0      # the key at ~1.6 s ended both
    assert second == DigitsResult("", True) and 2.4 < t2 < 3.6
    assert third == DigitsResult("8", True) and t3 < 4.0       # 1 s after the key, not 6 s
    assert result.ok, result.errors
