"""``hotline ivr stats`` and ``hotline ivr menus`` against a configuration file."""
from __future__ import annotations

import argparse
from pathlib import Path

from ivr import cli
from ivr.records import CallRecord, _finish, _insert
from storage.db import Database
from storage.migrate import upgrade
from daemon import load_config

MENUS = Path(__file__).parents[3] / "ivr" / "menus"
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
[ivr]
menus_dir = {menus}
"""


def _run(argv):
    parser = argparse.ArgumentParser(prog="hotline")
    cli.register(parser.add_subparsers(dest="command", required=True), load_config)
    args = parser.parse_args(argv)
    return args.func(args)


def _config(tmp_path, menus):
    path = tmp_path / "hotline.ini"
    path.write_text(INI.format(state=tmp_path, menus=menus), "utf-8")
    return str(path)


def test_stats_prints_the_report(tmp_path, capsys):
    """Two recorded calls show up as counted outcomes and key presses."""
    config = _config(tmp_path, MENUS)
    upgrade(f"sqlite:///{tmp_path}/hotline.db")
    db = Database(f"sqlite:///{tmp_path}/hotline.db", reactor=None)
    for outcome in ("ivr_handled", "transferred"):
        record = CallRecord.start(instance="i", center="demo", uniqueid="u", caller_id="",
                                  dnid="", language="zh", now=100.0)
        record.key("main", "1")
        record.id = db.run_sync(_insert, record)
        db.run_sync(_finish, record, outcome, 1, 160.0)
    db.engine.dispose()
    assert _run(["ivr", "stats", "--config", config, "--center", "demo"]) == 0
    out = capsys.readouterr().out
    assert "calls            2" in out and "transferred    1" in out
    assert "average duration 60.0 s" in out
    assert "main                 1    2" in out


def test_menus_checks_every_center(tmp_path, capsys):
    """A broken menu file is reported with its node and exit status 1."""
    menus = tmp_path / "menus"
    menus.mkdir()
    (menus / "default.toml").write_text('[nodes.main]\nprompts = ["ivr/x"]\nkeys = {"1" = "y"}\n',
                                        "utf-8")
    assert _run(["ivr", "menus", "--config", _config(tmp_path, menus)]) == 1
    assert "node 'main': key '1' leads to unknown node 'y'" in capsys.readouterr().err


def test_menus_ok_for_the_shipped_menu(tmp_path, capsys):
    """The repository's default menu passes the check."""
    assert _run(["ivr", "menus", "--config", _config(tmp_path, MENUS)]) == 0
    assert "demo: " in capsys.readouterr().out
