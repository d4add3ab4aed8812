"""pytest fixtures: the npm SMSC and smsc_sim as processes on free loopback ports, and a way
to run a client test on its own reactor.

``npm_smsc`` runs ``node sandbox/smsc/server.js`` (``npm ci`` in sandbox/smsc first);
``sim_smsc`` runs ``python -m sandbox.smsc_sim``. Both give an ``SmscProcess`` with
``port``, ``stats()``, ``post(path, body)`` and their log in the test's scanned log
folder. ``run_on_fresh_reactor(fn)`` runs ``async fn(reactor)`` on a new, uninstalled
reactor, so each e2e test has real sockets without sharing a global reactor.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from sandbox.ports import free_port, wait_for_port
from sandbox.pytest_postgres import unavailable

ROOT = Path(__file__).resolve().parents[1]
NPM_DIR = ROOT / "sandbox" / "smsc"


class SmscProcess:
    """One SMSC process on 127.0.0.1 with a JSON control port."""

    def __init__(self, argv: list[str], port: int, control_port: int, log_path: Path,
                 cwd: Path = ROOT):
        self.port, self.control_port, self.log_path = port, control_port, log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)
        if not (wait_for_port("127.0.0.1", port) and wait_for_port("127.0.0.1", control_port)):
            self.stop()
            raise RuntimeError(f"SMSC did not start; see {log_path}")

    @property
    def endpoint(self) -> str:
        return f"tcp:host=127.0.0.1:port={self.port}"

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control_port}/stats",
                                    timeout=5) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def start_npm_smsc(log_dir: Path, *, system_id: str = "hotline", password: str = "secret",
                   dlr_delay_ms: int = 50) -> SmscProcess:
    port, control = free_port(), free_port()
    return SmscProcess([shutil.which("node") or "node", str(NPM_DIR / "server.js"),
                        "--port", str(port), "--control-port", str(control),
                        "--system-id", system_id, "--password", password,
                        "--dlr-delay-ms", str(dlr_delay_ms)],
                       port, control, log_dir / "npm-smsc.log", cwd=NPM_DIR)


def start_sim_smsc(log_dir: Path, **options) -> SmscProcess:
    """smsc_sim with SimConfig options given as keywords (latency=0.02, dlr=False, ...)."""
    port, control = free_port(), free_port()
    argv = [sys.executable, "-m", "sandbox.smsc_sim", "--port", str(port),
            "--control-port", str(control)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        else:
            argv += [flag, str(value)]
    return SmscProcess(argv, port, control, log_dir / "smsc-sim.log")


@pytest.fixture
def npm_smsc(log_dir):
    """The npm ``smpp`` SMSC on a free loopback port (credentials hotline / secret)."""
    if shutil.which("node") is None:
        unavailable("node is not installed")
    if not (NPM_DIR / "node_modules" / "smpp").is_dir():
        unavailable("run `npm ci` in sandbox/smsc first")
    smsc = start_npm_smsc(log_dir)
    yield smsc
    smsc.stop()


@pytest.fixture
def sim_smsc(log_dir):
    """smsc_sim on a free loopback port (credentials hotline / secret); reconfigure it
    while it runs with ``sim_smsc.post("/config", {...})``."""
    smsc = start_sim_smsc(log_dir)
    yield smsc
    smsc.stop()


def run_on_fresh_reactor(fn, timeout: float = 30.0):
    """Run ``async fn(reactor)`` on a new select reactor; return its result or raise its error."""
    reactor = SelectReactor()
    outcome: list = []

    def start():
        d = Deferred.fromCoroutine(fn(reactor))
        timer = reactor.callLater(timeout, d.cancel)

        def done(result):
            if timer.active():
                timer.cancel()
            outcome.append(result)
            reactor.callLater(0, reactor.stop)

        d.addBoth(done)

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    result = outcome[0] if outcome else RuntimeError("reactor stopped without a result")
    if isinstance(result, Failure):
        result.raiseException()
    if isinstance(result, Exception):
        raise result
    return result


def sleep(reactor, seconds: float) -> Deferred:
    """A Deferred firing after ``seconds`` on ``reactor`` (for e2e polling loops)."""
    return deferLater(reactor, seconds, lambda: None)


