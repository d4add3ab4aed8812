"""Issue 14 on a fresh folder from hotline.sample.ini: tools that read the database run
without the daemon's secrets, a missing or unmigrated database is one line naming the
command to run, and ``hotline init`` prepares everything, again and again."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import daemon
from prompts import cli as prompts_cli

SAMPLE = Path(__file__).resolve().parents[3] / "hotline.sample.ini"
READERS = (["ivr", "stats"], ["sms", "stats"], ["prompts", "list"], ["prompts", "check"],
           ["db", "current"], ["prompts", "build-defaults"])


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A copy of the sample in an empty folder, with none of its secrets in the environment."""
    for var in ("HOTLINE_AMI_SECRET", "HOTLINE_SMPP_PASSWORD_LOCAL"):
        monkeypatch.delenv(var, raising=False)
    ini = tmp_path / "hotline.ini"
    shutil.copyfile(SAMPLE, ini)
    return ini


def run(*argv: str) -> int:
    try:
        return daemon.main(list(argv))
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_fresh_folder_says_what_to_run(fresh, capsys, command):
    """Before any migration every tool that opens the database prints one line naming
    hotline db upgrade -c FILE (exit 3): no traceback, no secret asked for."""
    assert run(*command, "-c", str(fresh)) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("hotline: no database at ")
    assert err.rstrip().endswith(f"run hotline db upgrade -c {fresh}")
    assert (fresh.parent / "var").is_dir()  # the state folder is made (its parent exists)


def test_unmigrated_database_says_what_to_run(fresh, capsys):
    """A database file without the schema is refused the same way."""
    (fresh.parent / "var").mkdir()
    (fresh.parent / "var" / "hotline.db").touch()
    assert run("ivr", "stats", "-c", str(fresh)) == 3
    assert "the database is not migrated: run hotline db upgrade -c" in capsys.readouterr().err


def test_readers_run_without_secrets_after_upgrade(fresh, capsys):
    """After hotline db upgrade, statistics, the prompt list and db current run with the
    database settings alone; the daemon (and its check) still refuse with the one line
    naming the missing secret."""
    assert run("db", "upgrade", "-c", str(fresh)) == 0
    assert run("ivr", "stats", "-c", str(fresh)) == 0
    assert run("sms", "stats", "-c", str(fresh)) == 0
    assert run("prompts", "list", "-c", str(fresh)) == 0
    assert run("db", "current", "-c", str(fresh)) == 0
    capsys.readouterr()
    for command in ("check-config", "run"):
        assert run(command, "-c", str(fresh)) == 2
        assert capsys.readouterr().err.strip() == (
            f"hotline: {fresh} [ami] secret: environment variable HOTLINE_AMI_SECRET is not set")


def test_init_is_idempotent(fresh, capsys, monkeypatch):
    """init makes the folders, migrates and builds the default prompts; a second run
    changes nothing and succeeds (the synthesis itself is prompts' own tested code)."""
    built = []

    def build_defaults(config, db, jobs=None, force=False):
        built.append(config.prompts.library_dir)
        return (0, 0) if len(built) > 1 else (284, 0)

    monkeypatch.setattr(prompts_cli, "build_defaults", build_defaults)
    assert run("init", "-c", str(fresh)) == 0
    assert run("init", "-c", str(fresh)) == 0
    out = capsys.readouterr().out
    assert "prompts: 284 synthesised" in out and "prompts: 0 synthesised" in out
    var = fresh.parent / "var"
    assert (var / "hotline.db").is_file() and (var / "prompts" / "incoming").is_dir()
    assert run("ivr", "stats", "-c", str(fresh)) == 0
