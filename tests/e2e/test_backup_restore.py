"""``hotline backup`` of a running daemon's installation, ``hotline restore`` into a new
folder, and a daemon serving from the restored copy: the queued SMS the first daemon
never sent goes out through a real SMSC from the second, and the imported prompt is
there. Both installations are fresh folders from hotline.sample.ini."""
from __future__ import annotations

import math
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path

import pytest

from sandbox.ports import free_port, wait_for_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "hotline.sample.ini"
MOBILE = "13100009982"


def installation(folder: Path, http_port: int, smsc_port: int | None) -> Path:
    """The sample in its own folder (relative paths there), AMI off; SMS on when an SMSC
    port is given, with quiet hours off so the test runs at any hour."""
    text = SAMPLE.read_text("utf-8")
    text = text.replace("tcp:port=8329:", f"tcp:port={http_port}:")
    text = text.replace("enabled = yes\nendpoint = tcp:host=127.0.0.1:port=5038",
                        "enabled = no\nendpoint = tcp:host=127.0.0.1:port=5038")
    if smsc_port is None:
        text = text.replace("[sms]\nenabled = yes", "[sms]\nenabled = no")
    else:
        text = text.replace("port=2775", f"port={smsc_port}")
    text = text.replace("transaction = 21:00-08:00", "transaction = none")
    assert text.count(str(http_port)) == 1
    folder.mkdir(parents=True)
    path = folder / "hotline.ini"
    path.write_text(text, "utf-8")
    return path


def hotline(*args: str, env: dict) -> str:
    done = subprocess.run([sys.executable, str(REPO / "daemon.py"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def start_daemon(config: Path, http_port: int, env: dict, log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    proc = subprocess.Popen([sys.executable, str(REPO / "daemon.py"), "run", "-c", str(config)],
                            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    assert wait_for_port("127.0.0.1", http_port, 60), log.read_text()[-2000:]
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5) as r:
        assert r.status == 200
    return proc


def stop_daemon(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()


def tone(path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8000 * 2 * math.pi * 440)))
                               for i in range(8000)))
    return path


def message_states(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT state FROM sms_message")]


def test_restored_copy_serves(npm_smsc, tmp_path, log_dir):
    """Backup while the first daemon runs; the restored copy in a new folder is served by a
    second daemon: its queued alert is delivered by the SMSC, its prompt is installed."""
    env = dict(os.environ, HOTLINE_AMI_SECRET="unused", HOTLINE_SMPP_PASSWORD_LOCAL="secret")
    port_a, port_b = free_port(), free_port()
    a = installation(tmp_path / "a", port_a, None)
    hotline("db", "upgrade", "-c", str(a), env=env)
    hotline("core", "generate", "--persons", "200", "--out", str(a.parent / "var" / "core-demo.db"),
            env=env)
    hotline("prompts", "import", str(tone(tmp_path / "tone.wav")), "--id", "ivr/welcome",
            "--center", "default", "-c", str(a), env=env)
    sent = hotline("sms", "send", "deposit_credited", "account=0002", "date=2026-11-26",
                   "amount=1608.00", "balance=54513.36", "--to", MOBILE, "-c", str(a), env=env)
    assert MOBILE not in sent

    daemon_a = start_daemon(a, port_a, env, log_dir / "daemon-a.log")
    try:
        hotline("backup", "-c", str(a), str(tmp_path / "backup"), env=env)
    finally:
        assert stop_daemon(daemon_a) == 0
    assert message_states(a.parent / "var" / "hotline.db") == ["queued"]

    b = installation(tmp_path / "b", port_b, npm_smsc.port)
    out = hotline("restore", "-c", str(b), str(tmp_path / "backup"), env=env)
    assert f"into {b.parent / 'var'}" in out
    shutil.copyfile(a.parent / "var" / "core-demo.db", b.parent / "var" / "core-demo.db")
    assert "default/zh:v1" in hotline("prompts", "list", "-c", str(b), env=env)

    daemon_b = start_daemon(b, port_b, env, log_dir / "daemon-b.log")
    try:
        deadline = time.monotonic() + 30
        while message_states(b.parent / "var" / "hotline.db") != ["delivered"]:
            assert time.monotonic() < deadline, message_states(b.parent / "var" / "hotline.db")
            time.sleep(0.3)
    finally:
        assert stop_daemon(daemon_b) == 0
    assert npm_smsc.stats()["submits"] == 1
