"""The operator's commands: ``hotline init``, ``doctor``, ``backup`` and ``restore``."""
from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from collections.abc import Callable, Mapping

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from common import startup
from operations import backup as backups, doctor
from prompts import cli as prompts_cli
from storage.db import Database

EXIT_FAILED = 1


def register(subparsers, rooms: Mapping[str, ModuleType]) -> None:
    """Add the operations commands; ``rooms`` is the composition root's list of rooms."""
    def command(name: str, help_text: str, func: Callable) -> Any:
        c = subparsers.add_parser(name, help=help_text)
        c.add_argument("--config", "-c", required=True)
        c.set_defaults(func=func, rooms=rooms)
        return c

    c = command("init", "prepare a fresh installation: state folder, database, default "
                        "prompts (safe to run again)", cmd_init)
    c.add_argument("--jobs", type=int, help="prompt synthesis processes (default: one per CPU)")
    command("doctor", "check that this installation can work: config, database, prompts, "
                      "permissions, Asterisk, SMSCs, cores", cmd_doctor)
    c = command("backup", "copy the SQLite database (online) and the prompt library to a "
                          "new folder", cmd_backup)
    c.add_argument("target", type=Path, help="a new or empty folder")
    c = command("restore", "restore a backup folder into the configured, still empty, "
                           "installation", cmd_restore)
    c.add_argument("source", type=Path, help="a folder written by hotline backup")


def cmd_init(args) -> int:
    config = startup.load_or_exit(args.config, args.rooms, secrets=False)
    pc = config.prompts
    folders = [config.daemon.state_dir, Path(pc.library_dir)]
    if not pc.fetch_command:  # a shared mount: Asterisk records into this folder
        folders.append(Path(pc.recording_dir))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    startup.database_ready_or_exit(config, migrate_to="heads")
    print(f"database: migrated ({config.database.url.split('://')[0]})")
    db = Database(config.database.url, reactor=None, threads=1)
    try:
        done, fresh = prompts_cli.build_defaults(config, db, args.jobs)
    finally:
        db.engine.dispose()
    print(f"prompts: {done} synthesised, {fresh} up to date in {pc.library_dir}")
    print(f"ready: hotline doctor -c {config.path}, then hotline run -c {config.path}")
    return 0


def cmd_doctor(args) -> int:
    config, result = doctor.check_config(args.config, args.rooms)
    results = [result]
    if config is not None:
        results += doctor.local_checks(config)
        results += _on_reactor(lambda reactor: doctor.check_network(config, reactor))
    for r in results:
        print("\n".join(r.lines()))
    failed = [r.check for r in results if not r.ok]
    if failed:
        print(f"{len(failed)} check(s) failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"all {len(results)} checks passed")
    return 0


def _on_reactor(run: Callable[[Any], Any]) -> Any:
    """Run one coroutine function on the real reactor and return its result (a
    command-line tool's whole life; the reactor cannot run twice in a process)."""
    from twisted.internet import reactor  # installs the global reactor: only when run

    box: list = []

    def start() -> None:
        d = Deferred.fromCoroutine(run(reactor))
        d.addBoth(box.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def cmd_backup(args) -> int:
    config = startup.load_or_exit(args.config, args.rooms, secrets=False)
    try:
        manifest = backups.backup(config.database.url, Path(config.prompts.library_dir),
                                  args.target)
    except backups.BackupError as e:
        print(f"hotline backup: {e}", file=sys.stderr)
        return EXIT_FAILED
    if manifest["database"] is None:
        print("database: PostgreSQL is not copied here: use pg_dump -Fc (README, Backups)")
    else:
        print(f"database: {args.target / manifest['database']}")
    print(f"prompts: {args.target / manifest['prompts'] if manifest['prompts'] else 'none'}")
    return 0


def cmd_restore(args) -> int:
    config = startup.load_or_exit(args.config, args.rooms, secrets=False)
    try:
        manifest = backups.restore(args.source, config.database.url,
                                   Path(config.prompts.library_dir))
    except backups.BackupError as e:
        print(f"hotline restore: {e}", file=sys.stderr)
        return EXIT_FAILED
    config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
    # A backup from an older release: bring its schema up to this one's.
    startup.database_ready_or_exit(config, migrate_to="heads")
    print(f"restored the backup of {manifest['created']} into {config.daemon.state_dir}")
    return 0
