"""A scripted AGI session and a synchronous prompt store for the recording flow's tests."""
from __future__ import annotations

import shutil
from dataclasses import dataclass

from prompts import audio, library, staff
from prompts.installed import InstalledPrompts

from tests.support.databases import SyncDatabase


class HungUp(Exception):
    """Stands in for ivr.asterisk.agi.CallHungUp."""


@dataclass
class Digits:
    digits: str
    timed_out: bool


class FakeSession:
    """Plays nothing; answers GET DATA from a script and RECORD FILE with a given file.

    ``keys`` is a list of replies to successive GET DATA commands ("" = timeout);
    ``recordings`` a list of source files copied where RECORD FILE writes, or
    HungUp to hang up during that recording.
    """

    def __init__(self, keys, recordings=(), center="sz", language="zh"):
        self.args = ["hotline-1", "admin", center]
        self.caller_id = "8001"
        self.language = language
        self.keys = list(keys)
        self.recordings = list(recordings)
        self.log: list[tuple] = []
        self.hung_up = False

    async def play(self, prompts):
        self.log.append(("play", list(prompts)))

    async def stream_file(self, prompt, escape_digits=""):
        self.log.append(("play", [prompt]))
        return None

    async def get_data(self, prompts, timeout_ms, max_digits):
        self.log.append(("get_data", list(prompts), max_digits))
        if not self.keys:
            raise HungUp("script ran out of keys")
        digits = self.keys.pop(0)
        if digits is HungUp:
            raise HungUp("caller hung up")
        return Digits(digits, digits == "")

    async def record_file(self, path, fmt, escape_digits, timeout_ms, beep=True, silence_s=None):
        self.log.append(("record", path, fmt, escape_digits, timeout_ms, beep, silence_s))
        source = self.recordings.pop(0)
        if source is HungUp:
            shutil.copyfile(self.last_source, f"{path}.{fmt}")  # Asterisk keeps a partial file
            raise HungUp("caller hung up while recording")
        self.last_source = source
        shutil.copyfile(source, f"{path}.{fmt}")

    async def hangup(self):
        self.hung_up = True

    def played(self):
        return [p for entry in self.log if entry[0] in ("play", "get_data") for p in entry[1]]


def login_now(db, number, pin, caller, now, rules):
    """PromptStore.login's three steps, synchronously."""
    stored = db.run_sync(staff.begin_login, number, caller, now, rules)
    if stored is None:
        return staff.Login.LOCKED
    return db.run_sync(staff.end_login, number, caller, staff.check_pin(pin, stored), now, rules)


class SyncStore:
    """PromptStore's interface over the real library and DB, run synchronously; what is
    installed comes from prompt_current through InstalledPrompts, as in the daemon."""

    def __init__(self, db, library_dir, recording_dir, settings, now=1000.0):
        self.db, self.library_dir, self.recording_dir = db, library_dir, recording_dir
        self.settings, self.now, self.counter = settings, now, 0
        self.discarded: list[str] = []
        self.installed = InstalledPrompts(library_dir, SyncDatabase(db))

    async def fresh(self):
        await self.installed.fresh()

    def path(self, center, lang, prompt_id):
        return self.installed.path(center, lang, prompt_id)

    def exists(self, center, lang, prompt_id):
        return self.installed.heard(center, lang, prompt_id)

    async def new_recording(self):
        self.counter += 1
        return str(self.recording_dir / f"rec-{self.counter}")

    async def login(self, number, pin, caller):
        return login_now(self.db, number, pin, caller, self.now, staff.PinRules(3, 1800, 10))

    async def fetch(self, remote):
        return f"{remote}.wav"

    async def install(self, path, prompt_id, center, lang, source, who):
        processed = audio.process_file(path, self.settings)
        change = self.db.run_sync(library.install, self.library_dir, prompt_id, center, lang,
                                  processed, source, who, self.now)
        await self.installed.fresh()
        return change

    async def discard(self, remote):
        self.discarded.append(remote)
        (self.recording_dir / f"{remote.rsplit('/', 1)[-1]}.wav").unlink(missing_ok=True)
