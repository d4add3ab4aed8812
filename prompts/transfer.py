"""Moving files between the daemon's host and Asterisk's when they do not share a folder.

``[prompts] fetch_command`` copies a finished recording from Asterisk's host
(``{remote}``) to the daemon (``{local}``); ``publish_command`` copies the
library (``{library_dir}``) to Asterisk's host after every change. Both are
argv templates split like a shell line (no shell runs, so paths need no
quoting), for example::

    fetch_command = scp -q -o BatchMode=yes asterisk1:{remote} {local}
    publish_command = rsync -a --delete-after {library_dir}/current/ asterisk1:{library_dir}/current/

Empty commands mean a shared mount: the paths are the same on both hosts.
"""
from __future__ import annotations

import os
import shlex
import subprocess
from typing import Any

from twisted.internet import defer, error, protocol
from twisted.python.failure import Failure

FIELDS = {"fetch_command": ("remote", "local"), "publish_command": ("library_dir",)}


class TransferError(Exception):
    """A fetch or publish command that failed, timed out or is malformed."""


def expand(template: str, values: dict[str, str]) -> list[str]:
    """The argv for ``template`` with ``{name}`` fields filled in each word."""
    try:
        return [word.format_map(values) for word in shlex.split(template)]
    except (KeyError, ValueError, IndexError) as e:
        raise TransferError(f"bad command template {template!r}: {e}") from None


def validate(key: str, template: str) -> None:
    """Fail at config load, not on the first recording, when a template is wrong."""
    if template:
        expand(template, {name: "x" for name in FIELDS[key]})


def run_sync(argv: list[str], timeout: float) -> None:
    """For the CLI: run the command, raising TransferError on failure."""
    try:
        result = subprocess.run(argv, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise TransferError(f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise TransferError(f"{argv[0]}: no result after {timeout:.0f} s") from None
    if result.returncode != 0:
        raise TransferError(f"{argv[0]} exited {result.returncode}: "
                            f"{_tail(result.stderr)}")


class _Collect(protocol.ProcessProtocol):
    def __init__(self, done: defer.Deferred, name: str):
        self.done, self.name, self.stderr = done, name, b""

    def errReceived(self, data: bytes) -> None:
        self.stderr = (self.stderr + data)[-4000:]

    def processEnded(self, reason: Failure) -> None:
        if self.done.called:
            return
        if reason.check(error.ProcessDone):
            self.done.callback(None)
        else:
            code = getattr(reason.value, "exitCode", None)
            self.done.errback(TransferError(
                f"{self.name} exited {code}: {_tail(self.stderr)}"))


def run(reactor: Any, argv: list[str], timeout: float) -> defer.Deferred:
    """Run the command without blocking the reactor; killed after ``timeout`` seconds."""
    done: defer.Deferred = defer.Deferred()
    proto = _Collect(done, argv[0])
    try:
        transport = reactor.spawnProcess(proto, argv[0], argv, env=dict(os.environ))
    except OSError as e:
        return defer.fail(TransferError(f"{argv[0]}: {e}"))

    def on_timeout(result, _timeout):
        try:
            transport.signalProcess("KILL")
        except error.ProcessExitedAlready:
            pass
        return Failure(TransferError(f"{argv[0]}: no result after {timeout:.0f} s"))

    done.addTimeout(timeout, reactor, onTimeoutCancel=on_timeout)
    return done


def _tail(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:200] if lines else "(no message)"
