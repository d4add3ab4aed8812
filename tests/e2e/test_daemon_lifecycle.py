"""The daemon as operators run it: `hotline run` starts on embedded defaults, stops on
SIGTERM within 5 s with exit 0, and refuses a bad or missing config with exit 2 and one line."""
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sandbox.ports import free_port, wait_for_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "hotline.sample.ini"


def hotline(*args, **kw):
    return subprocess.run([sys.executable, str(REPO / "daemon.py"), *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120, **kw)


def sample_config(tmp_path: Path, http_port: int) -> Path:
    """The repository's sample, with free ports and a state folder of the test's own."""
    text = SAMPLE.read_text(encoding="utf-8")
    text = text.replace("tcp:port=8329:interface=127.0.0.1",
                        f"tcp:port={http_port}:interface=127.0.0.1")
    text = text.replace("port=5038", f"port={free_port()}").replace("port=2775", f"port={free_port()}")
    text = text.replace("state_dir = var", f"state_dir = {tmp_path / 'var'}")
    text = text.replace("url = sqlite:///var/hotline.db", f"url = sqlite:///{tmp_path / 'var' / 'hotline.db'}")
    text = text.replace("core_db = var/core-demo.db", f"core_db = {REPO / 'var' / 'core-demo.db'}")
    text = text.replace("library_dir = var/prompts", f"library_dir = {tmp_path / 'var' / 'prompts'}")
    path = tmp_path / "hotline.ini"
    path.write_text(text, encoding="utf-8")
    return path


def test_run_then_sigterm_exits_zero_within_5s(tmp_path, log_dir):
    """With the sample config the daemon serves HTTP, and SIGTERM stops it cleanly in < 5 s."""
    port = free_port()
    config = sample_config(tmp_path, port)
    env = dict(os.environ, HOTLINE_AMI_SECRET="demo", HOTLINE_SMPP_PASSWORD_LOCAL="demo")
    with open(log_dir / "daemon.log", "w") as out:
        proc = subprocess.Popen([sys.executable, str(REPO / "daemon.py"), "run", "--config",
                                 str(config)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            assert wait_for_port("127.0.0.1", port, timeout=90), "daemon never listened"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                assert r.status == 200
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=10)
            elapsed = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, (log_dir / "daemon.log").read_text()[-3000:]
    assert elapsed < 5.0
    assert "hotline stopped" in (log_dir / "daemon.log").read_text()


def test_bad_config_exits_2_with_one_line(tmp_path):
    """A bad value is one line on stderr naming file, section and key; exit code 2."""
    config = tmp_path / "bad.ini"
    config.write_text("[center:x]\nname = n\nsignature = s\n[codes]\nttl = soon\n[ami]\nsecret = x\n")
    result = hotline("run", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"hotline: {config} [codes] ttl: must be a whole number, not 'soon'"]


def test_missing_config_exits_2(tmp_path):
    """A missing file is refused the same way."""
    result = hotline("run", "--config", str(tmp_path / "none.ini"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"hotline: {tmp_path / 'none.ini'}: file not found"
