"""Running core and database work without a reactor: inline pools, a Clock that takes
callFromThread, and waiting for results."""
from __future__ import annotations

import threading

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure


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
