"""``hotline sms send``: every refusal is one line on stderr, never a traceback."""
from __future__ import annotations

import argparse

import pytest

from daemon import load_config
from sms import cli
from storage.migrate import upgrade

INI = """
[daemon]
state_dir = {state}
[database]
url = sqlite:///{state}/hotline.db
[center:demo]
name = 示例中心
signature = 示例
[ami]
enabled = no
"""


def _send(tmp_path, *argv, migrate=True):
    path = tmp_path / "hotline.ini"
    path.write_text(INI.format(state=tmp_path), "utf-8")
    if migrate and not (tmp_path / "hotline.db").exists():
        upgrade(f"sqlite:///{tmp_path}/hotline.db")
    parser = argparse.ArgumentParser(prog="hotline")
    cli.register(parser.add_subparsers(dest="command", required=True), load_config)
    args = parser.parse_args(["sms", "send", "--config", str(path), *argv])
    return args.func(args)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


DEPOSIT = ["deposit_credited", "account=1234567890", "date=2026-11-26", "amount=1608.00",
           "balance=54513.36"]


def test_a_good_send_is_accepted(tmp_path, capsys):
    """The usual case prints the message id and the masked destination."""
    assert _send(tmp_path, *DEPOSIT, "--to", "+86 138-0013-8000") == 0
    assert capsys.readouterr().out.startswith("message 1 to ")


@pytest.mark.parametrize("to", ["abc", "12345", "9" * 40])
def test_a_bad_destination_is_refused_in_one_line(tmp_path, capsys, to):
    """The destination check is the CLI's too."""
    assert _send(tmp_path, *DEPOSIT, "--to", to) == 1
    assert "not a valid mainland number" in _one_line_error(capsys)


def test_an_unmigrated_database_is_named_with_the_command_that_fixes_it(tmp_path, capsys):
    """No tables yet: say so and how to create them, no SQL traceback."""
    with pytest.raises(SystemExit):
        _send(tmp_path, *DEPOSIT, "--to", "13800138000", migrate=False)
    assert "hotline db upgrade" in _one_line_error(capsys)


def test_a_two_thousand_digit_amount_is_refused_in_one_line(tmp_path, capsys):
    """An amount no account holds is a template error, not a decimal traceback."""
    argv = [a if not a.startswith("amount=") else "amount=" + "9" * 2000 for a in DEPOSIT]
    assert _send(tmp_path, *argv, "--to", "13800138000") == 1
    assert "amount" in _one_line_error(capsys)


def test_an_unknown_center_is_reported_as_such(tmp_path, capsys):
    """Not "no template": the center itself is unknown, and the known ones are named."""
    assert _send(tmp_path, *DEPOSIT, "--to", "13800138000", "--center", "nowhere") == 1
    err = _one_line_error(capsys)
    assert "unknown center" in err and "demo" in err


def test_an_over_long_key_is_refused(tmp_path, capsys):
    """The idempotency key is checked against its column."""
    assert _send(tmp_path, *DEPOSIT, "--to", "13800138000", "--key", "k" * 500) == 1
    assert "idempotency key" in _one_line_error(capsys)
