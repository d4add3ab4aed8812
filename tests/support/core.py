"""Running core and database work without a reactor: inline pools, a Clock that takes
callFromThread, and waiting for results."""
from __future__ import annotations

import shutil
import threading

import pytest
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from core_client import demo_data
from core_client.embedded import EmbeddedCore


class ThreadedClock(Clock):
    """A Clock that also accepts callFromThread (runs at once), as deferToThreadPool needs."""

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)


class InlinePool:
    """A thread pool stand-in that runs work at once on the caller's thread (deterministic)."""

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):
        try:
            result = f(*args, **kwargs)
        except Exception:  # handed on to the Deferred, as a real pool does
            on_result(False, Failure())
            return
        on_result(True, result)


def resolve(awaitable):
    """The result of a coroutine or Deferred that must already have fired (raises its error)."""
    d = awaitable if isinstance(awaitable, Deferred) else ensureDeferred(awaitable)
    box = []
    d.addBoth(box.append)
    assert box, "the call is still pending"
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def wait(awaitable, timeout: float = 20.0):
    """The result of a coroutine whose work runs on real pool threads (no reactor running)."""
    d = awaitable if isinstance(awaitable, Deferred) else ensureDeferred(awaitable)
    done = threading.Event()
    box = []
    d.addBoth(lambda r: (box.append(r), done.set()))
    assert done.wait(timeout), "the call did not finish"
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


class ReactorWithPool(ThreadedClock):
    """A Clock that is also a reactor with a thread pool, for code that asks for the pool."""

    def getThreadPool(self):
        return InlinePool()


# Fixtures (imported by the core_client conftests): a small demo core, run inline.

SMALL = 300  # persons in the shared demo core: enough for every profile, fast to build


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("core") / "core-demo.db"
    demo_data.generate(path, SMALL)
    return path


@pytest.fixture
def clock():
    return ThreadedClock()


@pytest.fixture
def core(demo_path, tmp_path, clock):
    """An embedded core over a private copy of the demo database, run inline on ``clock``."""
    path = tmp_path / "core.db"
    shutil.copy(demo_path, path)
    return EmbeddedCore("demo", path, clock, InlinePool())


@pytest.fixture(scope="session")
def identities():
    return {ident.label: ident for ident in demo_data.demo_identities()}


# Two centers, one embedded and one over HTTP, for the core directory's tests.
DIRECTORY_INI = """
[daemon]
state_dir = {state}
[center:a]
name = A
signature = A
core = embedded
core_db = {state}/core-a.db
[center:b]
name = B
signature = B
core = http
core_url = http://127.0.0.1:1/hpf/v1
core_key = not-a-real-key
core_allow_insecure = yes
core_timeout = 1.5
[ami]
enabled = no
[ivr]
password_attempts = 4
lock_minutes = 10
[sms]
enabled = no
"""
