"""The IVR over real calls (Asterisk 22 + sipp + the embedded core), for the e2e tests: the
test bed (Asterisk reading a quiet prompt library, a small demo core, the config), one call
placed and recorded, and readers of the AGI command log it leaves.

The IVR runs in-process on a fresh reactor (``make_service`` with a real config); what was
played is taken from Asterisk's own ``AGIExecStart`` events, the outcome from the call record.
"""
from __future__ import annotations

import re
import struct
import wave
from pathlib import Path

from sqlalchemy import select
from twisted.internet import task

from common.config import load
from core_client import demo_data
from core_client.directory import build_cores
from daemon import ROOMS
from ivr.asterisk.agi import PROMPTS_VARIABLE
from ivr.flows import FLOWS, all_prompts
from ivr.menu import load as load_menu
from ivr.service import make_service
from ivr.tables import IvrCall
from prompts import catalog as catalog_mod
from prompts.layout import current_base
from sandbox.pytest_asterisk import run_reactor
from sandbox.sipp import Keys, Pause, SippCall
from storage.db import Database
from storage.migrate import upgrade

REPO = Path(__file__).resolve().parents[2]
MENU = load_menu(REPO / "ivr" / "menus" / "default.toml", FLOWS)
CATALOG = catalog_mod.load()
X_PERSON = demo_data.demo_identities()[0]  # ID ends in X
KEYED_ID = X_PERSON.id_number.replace("X", "*")
# long enough to hang up in the middle
LONG_PROMPTS = {"ivr/policy-notice": 4000, "ivr/transferring": 3000}

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
office_hours = {hours}
office_days = 1, 2, 3, 4, 5, 6, 7
[ami]
endpoint = {endpoint}
secret = {secret}
heartbeat_interval = 2
[sms]
enabled = no
[prompts]
library_dir = {library}
"""


def write_library(library: Path) -> None:
    """A quiet 8 kHz WAV for every prompt a call may play (100 ms; long ones as listed)."""
    for prompt_id in all_prompts(MENU):
        path = library / "current" / "default" / "zh" / f"{prompt_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = 8 * LONG_PROMPTS.get(prompt_id, 100)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(struct.pack("<h", 16) * frames)


def short_defaults(library_dir: Path) -> None:
    """A quiet 100 ms default for every prompt, so the calls' timing is predictable."""
    for prompt_id in set(CATALOG.prompts) | all_prompts(MENU):
        for lang in ("zh", "en"):
            path = Path(current_base(library_dir, "default", lang, prompt_id) + ".wav")
            path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(8000)
                w.writeframes(struct.pack("<h", 16) * 800)


def make_ivr_bed(asterisk_factory, tmp_path):
    """Asterisk with a prompt library it can read, a small demo core and a config for the IVR
    (what the e2e ``ivr_bed`` fixture gives): (instance, config(hours), library folder)."""
    library = tmp_path / "prompts"
    write_library(library)
    demo_data.generate(tmp_path / "core-demo.db", persons=20)
    inst = asterisk_factory(variables={"center": "demo", "prompt_library": str(library)},
                            bind_mounts=[str(library)])

    def config(hours: str = "00:00-24:00"):
        ini = tmp_path / "hotline.ini"
        ini.write_text(INI.format(instance=inst.variables["instance"], tmp=tmp_path,
                                  endpoint=inst.endpoint, secret=inst.ami_secret,
                                  library=library, hours=hours), "utf-8")
        cfg = load(ini, ROOMS)
        cfg.daemon.state_dir.mkdir(parents=True, exist_ok=True)
        upgrade(cfg.database.url)
        return cfg

    return inst, config, library


def call(bed, presses, hangup="wait", hours="00:00-24:00", limit=60.0, tail_ms=1000,
         caller="sipp"):
    """Place one sipp call keying ``presses`` through the IVR; returns (AGI commands,
    events, call rows, sipp result)."""
    inst, make_config, library = bed
    config = make_config(hours)
    steps = presses + [Pause(tail_ms)]
    commands: list[str] = []
    events: list = []

    async def main(reactor):
        db = Database(config.database.url, reactor, threads=2)
        service = make_service(config, reactor, db, build_cores(config, db, reactor))
        link = service.link
        parked = _watch_parked_prompts(link)
        link.subscribe("AGIExecStart",
                       lambda e: commands.append(_unpark(e.get("Command") or "", parked)))
        for name in ("QueueCallerJoin", "UserEvent", "AsyncAGIEnd"):
            link.subscribe(name, events.append)
        service.startService()
        try:
            await link.when_up()
            await task.deferLater(reactor, 1.0)  # the first heartbeat is set
            sipp = SippCall("127.0.0.1", inst.sip_port, "12329", steps=steps, hangup=hangup,
                            wait_bye_ms=int(limit * 1000), timeout_s=limit,
                            workdir=library.parent / "sipp", send_silence=True, caller=caller)
            sipp.start()
            while sipp.process.poll() is None:
                await task.deferLater(reactor, 0.2)
            result = sipp.finish(timeout=5)
            for _ in range(50):  # the record is closed right after the call ends
                rows = await db.run(lambda s: [_row(r) for r in s.scalars(select(IvrCall))])
                if rows and all(r["ended_at"] for r in rows):
                    break
                await task.deferLater(reactor, 0.2)
            return result, rows
        finally:
            await service.stopService()
            db.stopService()

    result, rows = run_reactor(main, timeout=limit + 30)
    prefix = str(library / "current" / "default") + "/"
    return [c.replace(prefix, "") for c in commands], events, rows, result


def _watch_parked_prompts(link) -> dict[str, str]:
    """The file lists the daemon parks in channel variables (AgiSession._exec_files), as
    the test sees its AMI actions: variable name -> value, the latest."""
    parked: dict[str, str] = {}
    send = link.action

    def action(name, headers=None, *args, **kwargs):
        variable = (headers or {}).get("Variable", "")
        if name == "Setvar" and variable.startswith(PROMPTS_VARIABLE):
            parked[variable] = headers["Value"]
        return send(name, headers, *args, **kwargs)

    link.action = action
    return parked


def _unpark(command: str, parked: dict[str, str]) -> str:
    """``EXEC "Exec" "Read(V,${HOTLINE_PROMPTS1}&...,1,,1,)"`` as the direct command it
    stands for, files spelled out, so a reading reads the same either way."""
    match = re.fullmatch(r'EXEC "Exec" "(\w+)\((.*)\)"', command)
    if match is None:
        return command
    args = re.sub(r"\$\{(\w+)\}", lambda m: parked.get(m.group(1), ""), match.group(2))
    return f'EXEC "{match.group(1)}" "{args}"'


def _row(r: IvrCall) -> dict:
    return {k: getattr(r, k) for k in ("outcome", "identified", "survey", "keys", "path",
                                       "served", "ended_at", "caller", "center")}


def prompt_files(command: str) -> list[str]:
    """The prompt ids a Read, GET DATA or Playback command plays, in order."""
    for arg in command.split('"')[1::2]:
        for part in arg.split(","):
            if "/" in part:
                return [f.split("/", 1)[1] for f in part.split("&")]
    return []


def collects_keys(command: str) -> bool:
    return command.startswith(("GET DATA", 'EXEC "Read"'))


def prompts_heard(commands: list[str]) -> list[list[str]]:
    """What the caller heard up to each key collection: its prompts, after any Playbacks
    right before it (SET VARIABLEs in between play nothing)."""
    out, before = [], []
    for c in commands:
        if collects_keys(c):
            out.append(before + prompt_files(c))
            before = []
        elif c.startswith('EXEC "Playback"'):
            before += prompt_files(c)
        elif not c.startswith("SET VARIABLE"):
            before = []
    return out


def press(keys: str, after_ms: int = 1500) -> list:
    """Wait ``after_ms``, then key ``keys`` (RFC 4733) one every 660 ms."""
    return [Pause(after_ms), Keys(keys, gap_ms=660)]
