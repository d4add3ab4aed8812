"""pytest fixtures: the Node carrier simulators (CMPP ISMG, SMGP SMGW, SGIP SMG) as processes
on free loopback ports.

``cmpp_ismg``, ``smgp_smgw`` and ``sgip_smg`` each give a ``CarrierSim`` (``port``,
``stats()``, ``configure(**knobs)``, ``mo(source, destination, text)``) with its log in
the test's scanned log folder. The simulators need only ``node`` (no npm install); where
it is missing the tests skip, except under CI / HOTLINE_REQUIRE_SERVICES, where they fail.
For SGIP the SMG connects back to the SP: give ``start_carrier_sim`` an ``sp_port``, or
set it later with ``configure(sp_port=...)``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from sandbox.ports import free_port, wait_for_port
from sandbox.pytest_postgres import unavailable

SIM_DIR = Path(__file__).resolve().parent / "carriers"
SCRIPTS = {"cmpp": "ismg.js", "smgp": "smgw.js", "sgip": "smg.js"}


class CarrierSim:
    """One simulator process on 127.0.0.1 with its JSON control port."""

    def __init__(self, protocol: str, log_dir: Path, **options):
        self.protocol = protocol
        self.port, self.control_port = free_port(), free_port()
        self.log_path = log_dir / f"{protocol}-sim.log"
        argv = [shutil.which("node") or "node", str(SIM_DIR / SCRIPTS[protocol]),
                "--port", str(self.port), "--control-port", str(self.control_port)]
        for key, value in options.items():
            argv += ["--" + key.replace("_", "-"), _arg(value)]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        if not (wait_for_port("127.0.0.1", self.port)
                and wait_for_port("127.0.0.1", self.control_port)):
            self.stop()
            raise RuntimeError(f"{protocol} simulator did not start; see {self.log_path}")

    def _post(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control_port}/stats",
                                    timeout=5) as r:
            return json.loads(r.read())

    def configure(self, **knobs) -> dict:
        """Change fault knobs or settings while it runs (latency_ms=20, cut_every_s=5, ...)."""
        return self._post("/config", knobs)

    def mo(self, source: str, destination: str, text: str) -> dict:
        """Have the simulator send an MO from ``source`` to the SP's ``destination``."""
        return self._post("/mo", {"source": source, "destination": destination, "text": text})

    def reset(self) -> dict:
        return self._post("/reset", {})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def _arg(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def start_carrier_sim(protocol: str, log_dir: Path, **options) -> CarrierSim:
    """Start the ``protocol`` ("cmpp", "smgp" or "sgip") simulator; skip/fail without node."""
    if shutil.which("node") is None:
        unavailable("node is not installed")
    return CarrierSim(protocol, log_dir, **options)


@pytest.fixture
def cmpp_ismg(log_dir):
    """The CMPP ISMG simulator (SP id 901234, secret "secret"; 2.0 and 3.0)."""
    sim = start_carrier_sim("cmpp", log_dir)
    yield sim
    sim.stop()


@pytest.fixture
def smgp_smgw(log_dir):
    """The SMGP SMGW simulator (ClientID 90123456, secret "secret")."""
    sim = start_carrier_sim("smgp", log_dir)
    yield sim
    sim.stop()


@pytest.fixture
def sgip_smg(log_dir):
    """The SGIP SMG simulator (login hotline/secret; it binds back to the SP as smg/secret)."""
    sim = start_carrier_sim("sgip", log_dir)
    yield sim
    sim.stop()
