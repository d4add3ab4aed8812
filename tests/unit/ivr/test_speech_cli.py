"""``hotline say``: the reading's text on the first line, then one prompt file per line."""
from __future__ import annotations

import argparse

from ivr import cli
from daemon import load_config


def _run(argv):
    parser = argparse.ArgumentParser(prog="hotline")
    cli.register(parser.add_subparsers(dest="command", required=True), load_config)
    args = parser.parse_args(argv)
    return args.func(args)


def test_say_amount_zh(capsys):
    """The issue's example: 12345.67 in Mandarin."""
    assert _run(["say", "amount", "12345.67", "--lang", "zh"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "一万二千三百四十五元六角七分"
    assert lines[1:] == ["num/1", "num/10000", "num/2", "num/1000", "num/3", "num/100", "num/4",
                         "num/10", "num/5", "unit/yuan", "num/6", "unit/jiao", "num/7",
                         "unit/fen"]


def test_say_refuses_bad_values(capsys):
    """A value that cannot be read exits 2 with one line on stderr."""
    assert _run(["say", "amount", "-5"]) == 2
    assert capsys.readouterr().err.startswith("hotline say: ")
