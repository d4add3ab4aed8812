"""``hotline doctor`` against the real local stack (Asterisk 22, the SMSC, the daemon) and a
real HTTP core (``hotline core serve``): every line passes, and stopping the SMSC, the
core or Asterisk turns its line into a FAIL with a hint and the exit code into 1."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.ports import free_port, wait_for_port
from sandbox.stack import Stack
from tests.support.privacy_scan import find_personal_data

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _doctor(config: Path, env: dict) -> tuple[int, str]:
    done = subprocess.run([sys.executable, str(REPO / "daemon.py"), "doctor", "-c", str(config)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    print(out)
    assert "Traceback" not in out and find_personal_data(out) == []
    return done.returncode, out


def _http_core_config(stack: Stack, core_port: int) -> Path:
    """The stack's own configuration with its center on the HTTP core instead of the
    embedded one (the daemon keeps the embedded core; doctor checks this file)."""
    text = stack.config_path.read_text("utf-8").replace(
        f"core = embedded\ncore_db = {stack.core_db}\n",
        f"core = http\ncore_url = http://127.0.0.1:{core_port}/hpf/v1\n"
        "core_key = env:HOTLINE_CORE_KEY\ncore_allow_insecure = yes\n")  # plain HTTP on loopback
    assert "core = http" in text
    path = stack.state_dir / "doctor.ini"
    path.write_text(text, "utf-8")
    return path


def test_doctor_passes_on_the_stack_and_names_what_stopped(asterisk_root, tmp_path, log_dir):
    """All PASS with exit 0 on the running stack; then SMSC, core and Asterisk stopped one
    after another each add their FAIL line (with a hint) and exit 1."""
    with Stack(tmp_path / "state", log_dir, persons=300) as stack:
        core_port = free_port()
        env = dict(stack.env, HOTLINE_CORE_KEY=secrets.token_hex(16))
        core = subprocess.Popen(
            [sys.executable, str(REPO / "daemon.py"), "core", "serve", "--db",
             str(stack.core_db), "--key-env", "HOTLINE_CORE_KEY", "--listen",
             f"tcp:port={core_port}:interface=127.0.0.1"],
            cwd=REPO, env=env, stdout=open(log_dir / "core.log", "wb"),
            stderr=subprocess.STDOUT)
        try:
            assert wait_for_port("127.0.0.1", core_port, 30), "the core never listened"
            config = _http_core_config(stack, core_port)
            os.chmod(config, 0o640)

            code, out = _doctor(config, env)
            assert code == 0, out
            for line in ("PASS  config:", "PASS  database:", "PASS  prompts:",
                         "PASS  permissions:", "PASS  ami: logged in at",
                         "PASS  smsc local: bound as transceiver",
                         "PASS  core demo: http://127.0.0.1", "PASS  clock demo:"):
                assert line in out
            assert "HOTLINE_HEARTBEAT set" in out and "FAIL" not in out

            stack.smsc.stop()
            code, out = _doctor(config, env)
            assert code == 1 and "FAIL  smsc local: " in out and "hint: is the SMSC up" in out
            assert "PASS  ami:" in out and "PASS  core demo:" in out

            core.send_signal(signal.SIGTERM)
            core.wait(10)
            code, out = _doctor(config, env)
            assert code == 1 and "FAIL  core demo: " in out and "hint: is the core up" in out

            stack.asterisk.stop()
            code, out = _doctor(config, env)
            assert code == 1 and "FAIL  ami: " in out and "hint: is Asterisk running" in out
            assert out.rstrip().endswith("3 check(s) failed: ami, smsc local, core demo")
        finally:
            if core.poll() is None:
                core.kill()
                core.wait(5)
