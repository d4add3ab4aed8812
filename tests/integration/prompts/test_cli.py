"""``hotline prompts ...`` against a throwaway config, database and library."""
import argparse
import wave

import pytest

from ivr.prompt_ids import referenced_prompts
from prompts import cli
from prompts.layout import current_base
from daemon import load_config
from storage.migrate import upgrade

INI = """\
[daemon]
state_dir = var
[center:sz]
name = 深圳
signature = 深圳公积金
languages = zh
[prompts]
formats = wav, ulaw
{extra}
"""


@pytest.fixture
def hotline(tmp_path, monkeypatch):
    """Runs ``hotline prompts ARGS...``; returns (exit code, stdout, stderr)."""
    def setup(extra=""):
        ini = tmp_path / "hotline.ini"
        ini.write_text(INI.format(extra=extra), encoding="utf-8")
        (tmp_path / "var").mkdir(exist_ok=True)
        upgrade(f"sqlite:///{tmp_path / 'var' / 'hotline.db'}")
        return ini

    ini = setup()
    parser = argparse.ArgumentParser(prog="hotline")
    cli.register(parser.add_subparsers(dest="command"), load_config, referenced_prompts)

    def run(*argv, capsys=None):
        args = parser.parse_args(["prompts", *argv[:1], "-c", str(ini), *argv[1:]]
                                 if argv[0] != "staff" else
                                 ["prompts", "staff", argv[1], "-c", str(ini), *argv[2:]])
        return args.func(args)

    run.setup = setup
    run.lib = tmp_path / "var" / "prompts"
    return run


def test_import_list_rollback_export(hotline, audio_dir, tmp_path, capsys):
    """Two imports make versions 1 and 2; rollback reinstalls 1; export copies a version."""
    assert hotline("import", str(audio_dir / "speech.mp3"), "--id", "ivr/welcome",
                   "--center", "sz") == 0
    assert hotline("import", str(audio_dir / "stereo44k.wav"), "--id", "ivr/welcome",
                   "--center", "sz") == 0
    base = current_base(hotline.lib, "sz", "zh", "ivr/welcome")
    v2 = open(f"{base}.wav", "rb").read()
    assert hotline("rollback", "--id", "ivr/welcome", "--center", "sz") == 0
    v1 = open(f"{base}.wav", "rb").read()
    assert v1 != v2
    out = tmp_path / "v2.wav"
    assert hotline("export", "--id", "ivr/welcome", "--center", "sz", "--version", "2",
                   str(out)) == 0
    assert out.read_bytes() == v2
    with wave.open(str(out)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 8000, 2)
    capsys.readouterr()
    assert hotline("list", "--versions") == 0
    listing = capsys.readouterr().out
    assert "sz/zh:v1" in listing and "sz/zh v2 import" in listing


def test_bad_file_is_refused_and_nothing_installed(hotline, audio_dir, capsys):
    """A clipped file exits 1 with the reason, and no file or version appears."""
    assert hotline("import", str(audio_dir / "clipped.wav"), "--id", "ivr/welcome") == 1
    assert "clipped" in capsys.readouterr().err
    assert not (hotline.lib / "current").exists()
    assert not (hotline.lib / "versions").exists()


def test_import_refuses_unknown_prompt_and_center(hotline, audio_dir, capsys):
    """Typos in --id or --center are refused before any processing."""
    assert hotline("import", str(audio_dir / "padded.wav"), "--id", "ivr/welcom") == 1
    assert "unknown prompt id" in capsys.readouterr().err
    assert hotline("import", str(audio_dir / "padded.wav"), "--id", "ivr/welcome",
                   "--center", "gz") == 1
    assert "unknown center" in capsys.readouterr().err


def test_check_after_build_defaults_then_a_removed_prompt(hotline, capsys):
    """check fails before build-defaults, passes after, and lists a removed file."""
    assert hotline("check") == 1
    assert hotline("build-defaults", "--jobs", "2") == 0
    assert "synthesised" in capsys.readouterr().out
    assert hotline("check") == 0
    assert capsys.readouterr().out.startswith("ok:")
    (hotline.lib / "current" / "default" / "zh" / "ivr" / "welcome.ulaw").unlink()
    assert hotline("check") == 1
    assert "missing: default zh ivr/welcome (ulaw)" in capsys.readouterr().out
    assert hotline("build-defaults") == 0
    assert "1 prompts synthesised" in capsys.readouterr().out


def test_staff_commands(hotline, monkeypatch, capsys):
    """staff add/list/disable/enable; the PIN never appears in the output."""
    monkeypatch.setenv("HOTLINE_STAFF_PIN", "97531")
    assert hotline("staff", "add", "8001", "--name", "Li") == 0
    assert hotline("staff", "add", "8001", "--name", "Li") == 1
    assert hotline("staff", "disable", "8001") == 0
    assert hotline("staff", "list") == 0
    out = capsys.readouterr()
    assert "8001  Li  disabled" in out.out
    assert "97531" not in out.out + out.err
    assert hotline("staff", "enable", "8001") == 0


def test_publish_command_runs_after_import(hotline, audio_dir, tmp_path):
    """With publish_command set (a separate Asterisk host), the library is copied after a change."""
    mirror = tmp_path / "asterisk-host"
    hotline.setup(f"publish_command = cp -r {{library_dir}}/current {mirror}")
    assert hotline("import", str(audio_dir / "padded.wav"), "--id", "ivr/welcome") == 0
    assert (mirror / "default" / "zh" / "ivr" / "welcome.wav").exists()
