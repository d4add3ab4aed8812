"""The shipped Asterisk configuration keeps secrets out of logs and AMI (issue 12, 1, 6 and 9)."""
from __future__ import annotations

import configparser

import pytest

import dialplans


def rendered(tmp_path, **values):
    dialplans.render({"ami_secret": "s" * 32, **values}, tmp_path)
    return {p.name: p.read_text() for p in tmp_path.iterdir()}


def test_manager_user_has_only_what_the_daemon_uses(tmp_path):
    """read agi,user,agent and write agi,call,reporting: no dtmf events (every key pressed),
    no system, command or originate."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(rendered(tmp_path)["manager.conf"].replace("=>", "="))
    user = parser["hotline"]
    assert set(user["read"].split(",")) == {"agi", "user", "agent"}
    assert set(user["write"].split(",")) == {"agi", "call", "reporting"}


def test_no_log_file_gets_verbose_or_dtmf(tmp_path):
    """Read() logs the keys it collected at verbose 3: no log file takes verbose or dtmf."""
    text = rendered(tmp_path)["logger.conf"]
    channels = [line.split("=>", 1)[1] for line in text.splitlines()
                if "=>" in line and not line.lstrip().startswith(";")]
    assert channels and not any("verbose" in c or "dtmf" in c for c in channels)


def test_admin_extension_only_in_the_internal_context(tmp_path):
    """Outside callers' context includes the hotline only; the internal one adds admin;
    an allowlist of caller numbers is rendered, and a malformed one is refused."""
    text = rendered(tmp_path, admin_callers="8001&8002")["extensions.conf"]
    contexts = {}
    for block in text.split("\n["):
        name, _, body = block.partition("]")
        contexts[name.strip("[")] = [line.split("=>")[1].strip() for line in body.splitlines()
                                     if line.startswith("include")]
    assert contexts["hotline-inbound"] == ["hotline-ivr"]
    assert contexts["hotline-internal"] == ["hotline-ivr", "hotline-admin"]
    assert "Set(ADMIN_CALLERS=8001&8002)" in text
    with pytest.raises(dialplans.TemplateError):
        rendered(tmp_path, admin_callers="8001)&Hangup(")
