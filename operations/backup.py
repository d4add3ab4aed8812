"""``hotline backup`` and ``hotline restore``: the platform database and the prompt library.

A backup is a folder: ``hotline.db`` (SQLite only), ``prompts/`` (the versions and the
installed tree, without raw recordings in flight) and ``manifest.json``. The SQLite
copy goes through sqlite's online backup API in one step: one read transaction, so
the copy is consistent while the daemon keeps writing (WAL readers never block
writers). A PostgreSQL database is backed up with ``pg_dump`` (README, "Backups");
``hotline backup`` then copies the prompt library alone.

These are blocking command-line tools; the daemon never calls them.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

from storage.migrate import sqlite_file

MANIFEST = "manifest.json"
DATABASE = "hotline.db"
PROMPTS = "prompts"
# Raw recordings waiting to be processed (top-level folders) are not part of the library.
_TRANSIENT = {"incoming", "incoming-local"}


class BackupError(Exception):
    """A backup or restore that cannot be done, as one line for the operator."""


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (its WAL included)."""
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # pages=-1: the whole database in one read transaction
        finally:
            dst.close()
    finally:
        src.close()


def backup(database_url: str, library_dir: Path, target: Path) -> dict:
    """Write a backup folder ``target`` (new or empty); returns its manifest."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: back up into a new folder")
    db_file = sqlite_file(database_url)
    if db_file is not None and not db_file.exists():
        raise BackupError(f"no database at {db_file}")
    target.mkdir(parents=True, exist_ok=True)
    manifest = {"created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "database": None, "prompts": None}
    if db_file is not None:
        _copy_sqlite(db_file, target / DATABASE)
        manifest["database"] = DATABASE
    if library_dir.is_dir():
        def transient(folder: str, names: list[str]) -> set[str]:
            return _TRANSIENT & set(names) if Path(folder) == library_dir else set()

        shutil.copytree(library_dir, target / PROMPTS, symlinks=True, ignore=transient)
        manifest["prompts"] = PROMPTS
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
    return manifest


def restore(source: Path, database_url: str, library_dir: Path) -> dict:
    """Put a backup folder's database and prompt library where the configuration says.
    Refuses to overwrite: restore into a new installation (a fresh state folder)."""
    try:
        manifest = json.loads((source / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        raise BackupError(f"{source} is not a hotline backup (no readable {MANIFEST})") from None
    db_file = sqlite_file(database_url)
    if manifest.get("database"):
        if db_file is None:
            raise BackupError("the backup holds a SQLite database but [database] url is not "
                              "SQLite: load it with sqlite3 .dump or restore PostgreSQL with "
                              "pg_restore")
        if db_file.exists():
            raise BackupError(f"{db_file} exists: restore into a new state folder")
    if manifest.get("prompts") and library_dir.exists() and any(library_dir.iterdir()):
        raise BackupError(f"{library_dir} is not empty: restore into a new state folder")
    if manifest.get("database"):
        db_file.parent.mkdir(parents=True, exist_ok=True)
        _copy_sqlite(source / manifest["database"], db_file)
    if manifest.get("prompts"):
        shutil.copytree(source / manifest["prompts"], library_dir, symlinks=True,
                        dirs_exist_ok=True)
    return manifest
