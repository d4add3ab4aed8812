"""Recording a prompt by phone on the real Asterisk 22, then hearing it on the hotline.

An administrator (sipp) calls the administrators' extension, keys staff number
and PIN by RFC 2833, picks ivr/welcome by its catalog number, speaks after the
beep (an espeak-ng pcap), ends with #, and accepts with 1. The library is a bind
mount shared with Asterisk (the default production layout), so Asterisk's
recording and the installed prompt are the same files the daemon sees.
"""
from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import pytest
from pydub import AudioSegment
from twisted.internet import task

from common.config import load
from daemon import ROOMS
from core_client import demo_data
from core_client.directory import build_cores
from ivr.service import make_service
from prompts import catalog as catalog_mod, library, staff
from prompts.layout import current_base, version_dir
from sandbox.pytest_asterisk import run_reactor
from sandbox.sipp import Audio, Keys, Pause, SippCall, wav_to_rtp_pcap
from storage.db import Database
from storage.migrate import upgrade
from tests.support.ivr_calls import short_defaults

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CATALOG = catalog_mod.load()
ADMIN_NUMBER = "12329000"
INTERNAL = "127.0.0.2"  # dialplans' default internal_match

INI = """
[daemon]
instance = {instance}
state_dir = {tmp}/var
[database]
url = sqlite:///{tmp}/var/hotline.db
[center:demo]
name = 示例市住房公积金管理中心
signature = 示例公积金
core_db = {tmp}/core-demo.db
office_hours = 00:00-24:00
office_days = 1, 2, 3, 4, 5, 6, 7
[ami]
endpoint = {endpoint}
secret = {secret}
heartbeat_interval = 2
[sms]
enabled = no
[prompts]
library_dir = {library}
formats = wav, ulaw, alaw
"""


def _press(keys: str, after_ms: int, gap_ms: int = 500) -> list:
    return [Pause(after_ms), Keys(keys, gap_ms=gap_ms)]


@pytest.fixture
def bed(asterisk_factory, tmp_path):
    library_dir = tmp_path / "prompts"
    short_defaults(library_dir)
    demo_data.generate(tmp_path / "core-demo.db", persons=20)
    inst = asterisk_factory(variables={"center": "demo", "admin_number": ADMIN_NUMBER},
                            bind_mounts=[str(library_dir)])
    ini = tmp_path / "hotline.ini"
    ini.write_text(INI.format(instance=inst.variables["instance"], tmp=tmp_path,
                              endpoint=inst.endpoint, secret=inst.ami_secret,
                              library=library_dir), "utf-8")
    config = load(ini, ROOMS)
    config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
    upgrade(config.database.url)
    speech = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "cmn", "-w", str(speech),
                    "您好，欢迎致电住房公积金服务热线，这是示例中心的新录音。"], check=True)
    return inst, config, library_dir, speech


def test_record_by_phone_then_callers_hear_it_and_rollback(bed):
    """Admin records ivr/welcome for center demo and accepts; the version is 8 kHz mono,
    normalised and trimmed, audited; the next 12329 call plays it; after a rollback the
    next call plays the default again."""
    inst, config, library_dir, speech = bed
    number = CATALOG.number_of("ivr/welcome")
    admin_steps = _press("8001#", 1500) + _press("2468#", 1000) \
        + _press(number, 1500) + _press("1", 1000)  # language: Mandarin
    pcap = library_dir.parent / "speech.pcap"
    pcap_ms = wav_to_rtp_pcap(speech, pcap)
    admin_steps += ([Pause(2000), Audio(pcap, pcap_ms)] + _press("#", 500)
                    + _press("1", pcap_ms + 4000)  # after hearing it back: accept
                    + _press("*", 2500))  # no more prompts: goodbye
    commands: list[str] = []
    debug: list = []

    async def place(reactor, extension, steps, hangup, limit):
        # the administrators' extension answers the center's internal phones only
        local = INTERNAL if extension == ADMIN_NUMBER else "127.0.0.1"
        sipp = SippCall("127.0.0.1", inst.sip_port, extension, steps=steps, hangup=hangup,
                        wait_bye_ms=int(limit * 1000), timeout_s=limit, local_address=local,
                        workdir=library_dir.parent / f"sipp-{extension}-{len(commands)}")
        sipp.start()
        while sipp.process.poll() is None:
            await task.deferLater(reactor, 0.2)
        return sipp.finish(timeout=5)

    async def main(reactor):
        db = Database(config.database.url, reactor, threads=2)
        db.run_sync(staff.add, "8001", "Li", "2468", 0.0)
        service = make_service(config, reactor, db, build_cores(config, db, reactor))
        service.link.subscribe("AGIExecStart", lambda e: commands.append(e.get("Command") or ""))
        service.link.subscribe("AGIExecEnd", lambda e: debug.append((e.get("Command"), e.get("Result"))))
        service.startService()
        try:
            await service.link.when_up()
            await task.deferLater(reactor, 1.0)  # the first heartbeat is set
            admin = await place(reactor, ADMIN_NUMBER, admin_steps, "wait", 90)
            n_admin = len(commands)
            installed = await db.run(library.installed)
            if ("ivr/welcome", "demo", "zh") not in installed:
                return admin, (n_admin, n_admin), None, None, []
            first = await place(reactor, "12329", [Pause(3000)], "bye", 20)
            n_first = len(commands)
            await db.run(library.rollback, library_dir, "ivr/welcome", "demo", "zh", "ops",
                         reactor.seconds())
            second = await place(reactor, "12329", [Pause(3000)], "bye", 20)
            audit = await db.run(lambda s: [(a.who, a.action, a.center, a.lang, a.old_version,
                                             a.new_version) for a in library.audit(s)])
            return admin, (n_admin, n_first), first, second, audit
        finally:
            await service.stopService()
            db.stopService()

    admin, (n_admin, n_first), first, second, audit = run_reactor(main, timeout=200)
    admin_commands = commands[:n_admin]
    assert audit, ("nothing installed", debug)
    assert audit == [("8001", "phone", "demo", "zh", None, 1),
                     ("ops", "rollback", "demo", "zh", 1, None)], (admin.stdout, admin_commands)

    recorded = Path(version_dir(library_dir, "demo", "zh", "ivr/welcome")) / "1.wav"
    with wave.open(str(recorded)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
    seg = AudioSegment.from_wav(recorded)
    assert abs(seg.dBFS - config.prompts.loudness_dbfs) < 1.5
    # ~1.2 s of silence before the speech and the tail before # are trimmed away
    assert pcap_ms / 1000 - 0.6 < len(seg) / 1000 < pcap_ms / 1000 + 0.6
    for ext in ("ulaw", "alaw"):
        assert (recorded.parent / f"1.{ext}").exists()
    assert not list((library_dir / "incoming").glob("*.wav"))  # raw recording removed

    demo_welcome = current_base(library_dir, "demo", "zh", "ivr/welcome")
    default_welcome = current_base(library_dir, "default", "zh", "ivr/welcome")
    first_call = " ".join(commands[n_admin:n_first])
    second_call = " ".join(commands[n_first:])
    assert demo_welcome in first_call, first_call
    assert default_welcome in second_call and demo_welcome not in second_call, second_call
