"""``hotline demo`` from the command line: the whole local stack, a balance call and an alert SMS."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.privacy_scan import find_personal_data

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_demo_shows_the_call_and_the_sms(asterisk_root, tmp_path, log_dir):
    """``hotline demo`` exits 0 after showing the balance call (record and the reading heard)
    and the deposit alert sent over CMPP to a China Mobile number (text, states, report),
    with nothing personal printed whole."""
    done = subprocess.run([sys.executable, str(REPO / "daemon.py"), "demo",
                           "--state-dir", str(tmp_path / "demo"), "--log-dir", str(log_dir),
                           "--no-stay"],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    out = done.stdout + done.stderr
    print(out)
    assert done.returncode == 0, out[-3000:]
    assert "outcome    ivr_handled" in out
    assert "path       language zh main deposit balance" in out
    assert "files: ivr/balance-is num/" in out
    assert "text:  您的住房公积金账户余额为" in out
    assert "template deposit_credited" in out
    assert "message state: delivered" in out
    assert "submitted to cmcc" in out  # a China Mobile number, over CMPP
    assert "status report for message id" in out and "part delivered" in out
    assert "demo: both went through" in out
    assert re.search(r"console: http://127\.0\.0\.1:\d+/", out)
    assert re.search(r"login:   admin / \S{12} ", out)
    assert find_personal_data(out) == []


def test_door_demo_shows_the_rest_send_and_its_receipt_callback(tmp_path):
    """``hotline door-demo`` (the README's SMS door demo) exits 0 after a city system's
    signed POST is accepted (202), its receipt callback arrives with a verified signature
    and the message reads as delivered, with nothing personal printed whole."""
    done = subprocess.run([sys.executable, str(REPO / "daemon.py"), "door-demo",
                           "--state-dir", str(tmp_path / "door-demo")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    print(out)
    assert done.returncode == 0, out[-3000:]
    assert re.search(r'-> 202 \{"status": "accepted", "message_id": \d+, "parts": 1\}', out)
    assert "signature verified" in out and '"state": "delivered"' in out
    assert re.search(r"200 state delivered, 1 part\(s\), reference LOAN-2026-0042", out)
    assert "door demo: sent and called back" in out
    assert find_personal_data(out) == []
