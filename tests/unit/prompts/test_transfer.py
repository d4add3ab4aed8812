"""Fetch and publish commands for an Asterisk on another host."""
import os
import shutil
import tempfile

import pytest
from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from prompts import transfer


class FakeProcessReactor(Clock):
    """A clock that records spawnProcess calls instead of running anything."""

    def __init__(self):
        super().__init__()
        self.spawned = []

    def spawnProcess(self, proto, executable, args, env=None):
        test = self

        class Transport:
            signals = []

            def signalProcess(self, sig):
                self.signals.append(sig)
                test.signalled = sig

        self.spawned.append((proto, args))
        return Transport()


def _result(d: Deferred):
    """The result of an already-fired Deferred (consumes it)."""
    out = []
    d.addBoth(out.append)
    return out[0]


def test_expand_fills_each_word_without_a_shell():
    """Fields are filled per argv word, so paths with spaces stay one argument."""
    argv = transfer.expand("scp -q ast1:{remote} {local}", {"remote": "/r/a b.wav",
                                                             "local": "/l/x.wav"})
    assert argv == ["scp", "-q", "ast1:/r/a b.wav", "/l/x.wav"]


def test_validate_rejects_unknown_fields():
    """A template naming a field that does not exist fails at config load."""
    with pytest.raises(transfer.TransferError, match="bad command template"):
        transfer.validate("publish_command", "rsync -a {library} host:/x")
    transfer.validate("fetch_command", "scp host:{remote} {local}")


def test_exit_status_becomes_typed_error_with_stderr():
    """A non-zero exit fails the Deferred with TransferError carrying stderr's last line."""
    reactor = FakeProcessReactor()
    d = transfer.run(reactor, ["scp", "a", "b"], 30)
    proto, _ = reactor.spawned[0]
    proto.errReceived(b"ssh: connect to host ast1 port 22: Connection refused\n")
    proto.processEnded(Failure(error.ProcessTerminated(exitCode=255)))
    f = _result(d)
    assert f.check(transfer.TransferError)
    assert "exited 255" in str(f.value) and "Connection refused" in str(f.value)


def test_timeout_kills_the_command():
    """A command still running after the timeout is killed and reported."""
    reactor = FakeProcessReactor()
    d = transfer.run(reactor, ["rsync", "x", "y"], 30)
    results = []
    d.addBoth(results.append)
    reactor.advance(29)
    assert results == []
    reactor.advance(2)
    f = results[0]
    assert f.check(transfer.TransferError) and "no result after 30 s" in str(f.value)
    assert reactor.signalled == "KILL"


class RealCommandTest(TestCase):
    """The real reactor runs a local copy command (stands in for scp/rsync)."""

    def test_local_copy(self):
        """run() spawns the command and fires when it exits 0."""
        from twisted.internet import reactor
        folder = tempfile.mkdtemp(prefix="hotline-transfer-")
        self.addCleanup(shutil.rmtree, folder, True)
        src, dst = os.path.join(folder, "src.wav"), os.path.join(folder, "dst.wav")
        with open(src, "wb") as f:
            f.write(b"RIFF")
        d = transfer.run(reactor, ["cp", src, dst], 10)
        d.addCallback(lambda _: self.assertTrue(os.path.exists(dst)))
        return d

    def test_missing_program(self):
        """A program that does not exist is a TransferError, not a hang."""
        from twisted.internet import reactor
        d = transfer.run(reactor, ["/nonexistent/scp", "a", "b"], 10)
        return self.assertFailure(d, transfer.TransferError)
