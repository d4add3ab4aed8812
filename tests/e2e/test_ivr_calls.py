"""Real calls through the IVR: Asterisk 22 + sipp pressing RFC 2833 keys + the embedded core.

The IVR runs in-process on a fresh reactor (``make_service`` with a real config);
the prompt library holds short generated WAV files for every prompt, so timing
is predictable. What was played is taken from Asterisk's own ``AGIExecStart``
events (the AGI command log), the outcome from the call record in the database.
"""
from __future__ import annotations

import struct
import wave
from pathlib import Path

import pytest
from sqlalchemy import select
from twisted.internet import task
from twisted.internet.defer import Deferred

from common.config import load
from daemon import ROOMS
from core_client import demo_data
from core_client.directory import build_cores
from core_client.testing import FakeCore
from ivr import speech
from ivr.flows import FLOWS, all_prompts
from ivr.menu import load as load_menu
from ivr.service import make_service
from ivr.tables import IvrCall
from sandbox.pytest_asterisk import run_reactor
from sandbox.sipp import Keys, Pause, SippCall
from storage.db import Database
from storage.migrate import upgrade

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
MENU = load_menu(REPO / "ivr" / "menus" / "default.toml", FLOWS)
X_PERSON = demo_data.demo_identities()[0]  # ID ends in X
KEYED_ID = X_PERSON.id_number.replace("X", "*")
LONG_PROMPTS = {"ivr/policy-notice": 4000}  # long enough to hang up in the middle

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


def _write_library(library: Path) -> None:
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


@pytest.fixture
def bed(asterisk_factory, tmp_path):
    """Asterisk with a prompt library it can read, a small demo core and a config for the IVR."""
    library = tmp_path / "prompts"
    _write_library(library)
    demo_data.generate(tmp_path / "core-demo.db", persons=20)
    inst = asterisk_factory(variables={"center": "demo"}, bind_mounts=[str(library)])

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


def call(bed, presses, hangup="wait", hours="00:00-24:00", limit=60.0, tail_ms=1000):
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
        link.subscribe("AGIExecStart", lambda e: commands.append(e.get("Command") or ""))
        for name in ("QueueCallerJoin", "UserEvent", "AsyncAGIEnd"):
            link.subscribe(name, events.append)
        service.startService()
        try:
            await link.when_up()
            await task.deferLater(reactor, 1.0)  # the first heartbeat is set
            sipp = SippCall("127.0.0.1", inst.sip_port, "12329", steps=steps, hangup=hangup,
                            wait_bye_ms=int(limit * 1000), timeout_s=limit,
                            workdir=library.parent / "sipp", send_silence=True)
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


def _row(r: IvrCall) -> dict:
    return {k: getattr(r, k) for k in ("outcome", "identified", "survey", "keys", "path",
                                       "served", "ended_at", "caller", "center")}


def _files(command: str) -> list[str]:
    """The prompt ids a Read, GET DATA or Playback command plays, in order."""
    for arg in command.split('"')[1::2]:
        for part in arg.split(","):
            if "/" in part:
                return [f.split("/", 1)[1] for f in part.split("&")]
    return []


def _collects(command: str) -> bool:
    return command.startswith(("GET DATA", 'EXEC "Read"'))


def _heard(commands: list[str]) -> list[list[str]]:
    """What the caller heard up to each key collection: its prompts, after any Playbacks
    right before it (SET VARIABLEs in between play nothing)."""
    out, before = [], []
    for c in commands:
        if _collects(c):
            out.append(before + _files(c))
            before = []
        elif c.startswith('EXEC "Playback"'):
            before += _files(c)
        elif not c.startswith("SET VARIABLE"):
            before = []
    return out


def _now(coro):
    out = []
    Deferred.fromCoroutine(coro).addCallback(out.append)
    return out[0]


def _press(keys: str, after_ms: int = 1500) -> list:
    """Wait ``after_ms``, then key ``keys`` (RFC 4733) one every 660 ms."""
    return [Pause(after_ms), Keys(keys, gap_ms=660)]


def test_identify_with_x_and_hear_the_balance(bed):
    """Language 1, deposits 1, balance 1, ID ending in X keyed with *, password: the balance
    is read with the exact amount fragments; 5 ends, survey 1; the record says so."""
    steps = (_press("1") + _press("1") + _press("1") + _press(KEYED_ID + "#")
             + _press(X_PERSON.password + "#") + _press("5", 6000) + _press("1", 2500))
    commands, _events, rows, result = call(bed, steps)
    balance = _now(FakeCore(persons=20).balance(X_PERSON.account_no))
    played = [f for c in commands if _collects(c) or c.startswith('EXEC "Playback"')
              for f in _files(c)]
    reading = played[played.index("ivr/balance-is"):]
    amount = list(speech.amount(balance.balance).prompts)
    assert reading[1:1 + len(amount)] == amount
    assert reading[1 + len(amount)] == "ivr/monthly-deposit-is"
    assert "ivr/deposit-menu" in reading
    assert len(rows) == 1, result.stdout
    row = rows[0]
    assert (row["outcome"], row["identified"], row["survey"], row["served"]) == \
        ("ivr_handled", 1, 1, 1)
    assert row["keys"] == "language:1 main:1 deposit:1 deposit:5"
    assert X_PERSON.password not in row["keys"]
    assert result.ok, result.errors


def test_three_wrong_passwords_lock(bed):
    """Three wrong passwords: the caller hears the lock notice, whole (Playback)."""
    steps = (_press("1") + _press("1") + _press("1") + _press(X_PERSON.account_no + "#")
             + _press("000000#") + _press("000001#", 4000) + _press("000002#", 4000))
    commands, _events, rows, result = call(bed, steps, hangup="bye", tail_ms=4000)
    plays = [_files(c) for c in commands if c.startswith('EXEC "Playback"')]
    assert any(p[0] == "ivr/account-locked" for p in plays), "\n".join(commands)
    assert rows[0]["identified"] == 0 and rows[0]["outcome"] == "failed"


def test_silence_reprompts_then_escalates_to_the_queue(bed):
    """Silence in the main menu re-prompts (no-input wording) and the third silence
    transfers to the agents' queue."""
    commands, events, rows, result = call(bed, _press("1"), hangup="bye", tail_ms=22000)
    menus = _heard(commands)
    assert menus[1] == ["ivr/main-menu"]
    assert menus[2] == menus[3] == ["ivr/no-input", "ivr/main-menu"]
    joins = [e for e in events if e.event == "QueueCallerJoin"]
    assert joins and joins[0].get("Queue") == "hotline-agents"
    assert rows[0]["outcome"] == "transferred"


def test_invalid_key(bed):
    """An unknown key in the main menu is answered with the invalid-key wording."""
    commands, _events, rows, _result = call(bed, _press("1") + _press("7"), hangup="bye",
                                            tail_ms=1500)
    assert ["ivr/invalid-key", "ivr/main-menu"] in _heard(commands)
    assert rows[0]["keys"] == "language:1 main:7"


def test_hangup_in_the_middle_of_a_prompt(bed):
    """Hanging up during the 4 s policy notice: no error, the record is closed as abandoned."""
    commands, _events, rows, result = call(bed, _press("1") + _press("3"), hangup="bye",
                                           tail_ms=1500)
    assert any("ivr/policy-notice" in c for c in commands)
    assert rows[0]["outcome"] == "abandoned" and rows[0]["ended_at"]
    assert result.ok, result.errors


def test_transfer_reaches_the_queue(bed):
    """0 in office hours leaves AsyncAGI for the queue."""
    _commands, events, rows, _result = call(bed, _press("1") + _press("0"), hangup="bye",
                                            tail_ms=3000)
    joins = [e for e in events if e.event == "QueueCallerJoin"]
    assert joins and joins[0].get("Queue") == "hotline-agents"
    assert rows[0]["outcome"] == "transferred"
