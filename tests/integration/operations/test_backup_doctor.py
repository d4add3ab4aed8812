"""hotline backup/restore and the doctor's local checks, on real files in a temporary
folder (the network checks run against the real stack in tests/e2e/test_doctor.py)."""
from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

import daemon
from operations import backup, doctor
from storage.migrate import upgrade

SAMPLE = Path(__file__).resolve().parents[3] / "hotline.sample.ini"


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """A sample installation: migrated database with one row, a small prompt library."""
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "s")
    monkeypatch.setenv("HOTLINE_SMPP_PASSWORD_LOCAL", "p")
    ini = tmp_path / "site" / "hotline.ini"
    ini.parent.mkdir()
    shutil.copyfile(SAMPLE, ini)
    var = ini.parent / "var"
    var.mkdir()
    upgrade(f"sqlite:///{var / 'hotline.db'}")
    with sqlite3.connect(var / "hotline.db") as conn:
        conn.execute("INSERT INTO prompt_staff (number, name, pin_hash, disabled, failures, "
                     "locked_until, created_at) VALUES ('8001', 'Li', 'x', 0, 0, 0, 0)")
    current = var / "prompts" / "current" / "default" / "zh" / "ivr"
    current.mkdir(parents=True)
    (current / "welcome.wav").write_bytes(b"RIFF")
    (var / "prompts" / "incoming").mkdir()
    (var / "prompts" / "incoming" / "rec-1.wav").write_bytes(b"raw")
    return ini


def _staff(db: Path) -> list:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT number, name FROM prompt_staff").fetchall()


def run(*argv: str) -> int:
    try:
        return daemon.main(list(argv))
    except SystemExit as e:
        return e.code


def test_backup_then_restore_into_a_new_folder(installed, tmp_path, capsys):
    """The backup holds the database (its rows) and the library without raw recordings;
    restore puts both where another configuration points and the schema is current."""
    target = tmp_path / "backup-1"
    assert run("backup", "-c", str(installed), str(target)) == 0
    assert _staff(target / "hotline.db") == [("8001", "Li")]
    assert (target / "prompts" / "current" / "default" / "zh" / "ivr" / "welcome.wav").exists()
    assert not (target / "prompts" / "incoming").exists()

    other = tmp_path / "other" / "hotline.ini"
    other.parent.mkdir()
    shutil.copyfile(SAMPLE, other)
    assert run("restore", "-c", str(other), str(target)) == 0
    var = other.parent / "var"
    assert _staff(var / "hotline.db") == [("8001", "Li")]
    assert (var / "prompts" / "current" / "default" / "zh" / "ivr" / "welcome.wav").exists()
    assert run("db", "current", "-c", str(other)) == 0


def test_backup_and_restore_refuse_to_overwrite(installed, tmp_path, capsys):
    """A backup goes into a new folder; a restore into an installation that has none."""
    target = tmp_path / "b"
    assert run("backup", "-c", str(installed), str(target)) == 0
    assert run("backup", "-c", str(installed), str(target)) == 1
    assert "is not empty: back up into a new folder" in capsys.readouterr().err
    assert run("restore", "-c", str(installed), str(target)) == 1
    assert "exists: restore into a new state folder" in capsys.readouterr().err
    assert run("restore", "-c", str(installed), str(tmp_path)) == 1
    assert "is not a hotline backup" in capsys.readouterr().err


def test_backup_is_consistent_while_a_writer_holds_a_transaction(installed, tmp_path):
    """The online copy sees committed rows only, while another connection is mid-write."""
    db = installed.parent / "var" / "hotline.db"
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN")
    writer.execute("INSERT INTO prompt_staff (number, name, pin_hash, disabled, failures, "
                   "locked_until, created_at) VALUES ('8002', 'Wang', 'x', 0, 0, 0, 0)")
    try:
        backup.backup(f"sqlite:///{db}", installed.parent / "var" / "prompts", tmp_path / "b")
    finally:
        writer.rollback()
        writer.close()
    assert _staff(tmp_path / "b" / "hotline.db") == [("8001", "Li")]


def test_doctor_local_checks(installed):
    """Config, database and permissions pass on a good installation; each failure is a
    FAIL line with a hint."""
    config, result = doctor.check_config(str(installed), daemon.ROOMS)
    assert result.ok
    assert doctor.check_database(config).ok
    assert doctor.check_permissions(config)[0].ok
    prompts = doctor.check_prompts(config)
    assert not prompts.ok and "hotline prompts build-defaults" in prompts.hint

    os.chmod(installed, 0o666)
    [perm] = doctor.check_permissions(config)
    assert not perm.ok and "writable by everyone" in perm.detail
    os.chmod(installed, 0o644)
    installed.write_text(installed.read_text("utf-8").replace(
        "secret = env:HOTLINE_AMI_SECRET", "secret = inline"), "utf-8")
    [perm] = doctor.check_permissions(config)
    assert "inline secret and is readable by everyone" in perm.detail
    assert perm.lines()[0].startswith("FAIL  permissions: ") and "hint: " in perm.lines()[1]

    (installed.parent / "var" / "hotline.db").unlink()
    db = doctor.check_database(config)
    assert not db.ok and db.hint.startswith("hotline db upgrade -c ")


def test_doctor_config_failure_is_one_line(tmp_path, monkeypatch):
    """A missing secret fails the config check with the loader's own line."""
    monkeypatch.delenv("HOTLINE_AMI_SECRET", raising=False)
    ini = tmp_path / "hotline.ini"
    shutil.copyfile(SAMPLE, ini)
    config, result = doctor.check_config(str(ini), daemon.ROOMS)
    assert config is None and not result.ok
    assert "HOTLINE_AMI_SECRET is not set" in result.detail
