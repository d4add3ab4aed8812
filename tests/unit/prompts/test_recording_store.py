"""The record-by-phone flow on the daemon's PromptStore: on the reactor thread it looks at
no file (what is installed comes from prompt_current, through InstalledPrompts; folders
and raw recordings are handled on the pool), and it still tells the administrator
whether the prompt has a current version."""
from __future__ import annotations

import builtins
import os
from contextlib import contextmanager

import pytest
from twisted.internet.defer import Deferred, succeed

from prompts import catalog as catalog_mod, library
from prompts.config import PromptsConfig
from prompts.installed import InstalledPrompts
from prompts.layout import DEFAULT_CENTER, current_base
from prompts.recording_flow import record_by_phone
from prompts.service import PromptStore
from prompts.staff import Login

from tests.support.core import InlinePool, ThreadedClock, resolve
from tests.support.prompt_fakes import FakeSession

CATALOG = catalog_mod.load()
PROMPT = CATALOG.prompts["ivr/welcome"] if "ivr/welcome" in CATALOG.prompts else \
    CATALOG.by_number("001")


class FileOnReactor(AssertionError):
    """The flow touched the file system on the reactor thread."""


class MarkingPool(InlinePool):
    """Runs work at once, marking it as off the reactor while it runs."""

    def __init__(self):
        self.inside = False

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):
        self.inside = True
        try:
            super().callInThreadWithCallback(on_result, f, *args, **kwargs)
        finally:
            self.inside = False


@pytest.fixture
def pool():
    return MarkingPool()


@contextmanager
def files_refused_on_reactor(pool):
    """Any file-system call outside ``pool`` (so on the reactor thread) raises FileOnReactor."""
    with pytest.MonkeyPatch.context() as patch:
        for module, name in [(os, "stat"), (os, "lstat"), (os, "mkdir"), (os, "unlink"),
                             (os, "listdir"), (os, "scandir"), (os, "replace"),
                             (builtins, "open")]:
            real = getattr(module, name)

            def guarded(*args, _real=real, _name=name, **kwargs):
                if not pool.inside:
                    raise FileOnReactor(f"{_name} on the reactor thread")
                return _real(*args, **kwargs)
            patch.setattr(module, name, guarded)
        yield


class PromptTable:
    """prompt_current as InstalledPrompts reads it: the installed keys and the last change."""

    def __init__(self, keys):
        self.keys, self.change = set(keys), 1

    def add(self, key):
        self.keys.add(key)
        self.change += 1

    def run(self, fn, since):
        assert fn is library.installed_since
        return succeed((self.change, None if since == self.change else set(self.keys)))


class Store(PromptStore):
    """The daemon's store; the PIN check (database work) answered here."""

    async def login(self, number, pin, caller):
        return Login.OK if pin == "2468" else Login.BAD


class Recorder(FakeSession):
    """RECORD FILE writes on Asterisk's side: nothing here."""

    async def record_file(self, path, fmt, escape_digits, timeout_ms, beep=True,
                          silence_s=None):
        self.log.append(("record", path, fmt, escape_digits, timeout_ms, beep, silence_s))


def _store(tmp_path, table, pool):
    config = PromptsConfig(library_dir=tmp_path / "lib", formats=("wav",), wideband=False,
                           loudness_dbfs=-20.0, max_seconds=60.0,
                           recording_dir=tmp_path / "recordings")
    installed = InstalledPrompts(config.library_dir, table)
    return Store(config, table, ThreadedClock(), threadpool=pool, installed=installed)


def _cancelled_take(store, pool):
    """Log in, choose PROMPT, record once and cancel (3), with files refused on the
    reactor: what the administrator heard."""
    session = Recorder(["8001", "2468", CATALOG.number_of(PROMPT.id), "3", "*"])
    with files_refused_on_reactor(pool):
        d = Deferred.fromCoroutine(record_by_phone(session, store, CATALOG, "sz", ("zh",)))
        assert resolve(d) == []
    return session.played()


def test_flow_looks_at_no_file_on_the_reactor(tmp_path, pool):
    """A whole call (login, choice, current version, take, cancel) runs with every
    file-system call refused outside the pool, and plays the center's own recording."""
    table = PromptTable({("sz", "zh", PROMPT.id), (DEFAULT_CENTER, "zh", "admin/welcome")})
    played = _cancelled_take(_store(tmp_path, table, pool), pool)
    lib = tmp_path / "lib"
    assert played[0] == current_base(lib, DEFAULT_CENTER, "zh", "admin/welcome")
    assert current_base(lib, "sz", "zh", PROMPT.id) in played
    assert any(p.endswith("admin/cancelled") for p in played)


@pytest.mark.parametrize("installed, heard", [
    ({("sz", "zh", PROMPT.id), (DEFAULT_CENTER, "zh", PROMPT.id)}, "sz"),
    ({(DEFAULT_CENTER, "zh", PROMPT.id), ("bj", "zh", PROMPT.id)}, DEFAULT_CENTER),
    ({("bj", "zh", PROMPT.id), ("sz", "en", PROMPT.id)}, None),
])
def test_current_version_is_reported_from_prompt_current(tmp_path, pool, installed, heard):
    """The administrator hears 'current version' and the recording callers hear (the
    center's own, else the default), or 'no current version' when neither is installed;
    other centers' and languages' recordings do not count."""
    played = _cancelled_take(_store(tmp_path, PromptTable(installed), pool), pool)
    lib = tmp_path / "lib"
    if heard is None:
        assert current_base(lib, DEFAULT_CENTER, "zh", "admin/no_current_version") in played
        assert not any(p.endswith("admin/current_version") for p in played)
    else:
        at = played.index(current_base(lib, DEFAULT_CENTER, "zh", "admin/current_version"))
        assert played[at + 1] == current_base(lib, heard, "zh", PROMPT.id)


def test_a_recording_installed_since_the_last_look_is_reported(tmp_path, pool):
    """A center recording installed after the store last read prompt_current (by another
    call, the console or another daemon) is the current version this call plays."""
    table = PromptTable({(DEFAULT_CENTER, "zh", "admin/welcome")})
    store = _store(tmp_path, table, pool)
    resolve(store.installed.fresh())
    table.add(("sz", "zh", PROMPT.id))
    played = _cancelled_take(store, pool)
    at = played.index(current_base(tmp_path / "lib", DEFAULT_CENTER, "zh",
                                   "admin/current_version"))
    assert played[at + 1] == current_base(tmp_path / "lib", "sz", "zh", PROMPT.id)
