"""``hotline prompts ...``: the prompt library from the command line.

import, list, export, rollback, check, build-defaults, and ``staff`` for the
administrators who record by phone. Every change is audited like a phone
recording, with ``--who`` (default: the login name) as the author.
"""
from __future__ import annotations

import getpass
import os
import shutil
import sys
import time
from collections.abc import Callable

from common.config import Config
from prompts import audio, catalog as catalog_mod, defaults, library, staff, transfer
from prompts.catalog import LANGUAGES
from prompts.layout import DEFAULT_CENTER
from prompts.service import settings
from storage.db import Database

EXIT_FAILED = 1


class CliError(Exception):
    """A refusal the operator sees as one line on stderr, exit 1."""


def register(subparsers, load_config, referenced: Callable[[Config], set[str]]) -> None:
    """``load_config`` is the composition root's (path) -> Config with a ready database;
    ``referenced`` (config) -> the prompt ids the other rooms may play, beyond the catalog."""
    p = subparsers.add_parser("prompts", help="the voice prompt library")
    p.set_defaults(load_config=load_config, referenced=referenced)
    sub = p.add_subparsers(dest="prompts_command", required=True, metavar="COMMAND")

    def command(name, help_text, func):
        c = sub.add_parser(name, help=help_text)
        c.add_argument("--config", "-c", required=True)
        c.set_defaults(func=_wrap(func))
        return c

    def target(c, lang_default="zh"):
        c.add_argument("--id", required=True, dest="prompt_id", help="prompt id, e.g. ivr/welcome")
        c.add_argument("--center", default=DEFAULT_CENTER,
                       help="a configured center, or 'default' (what every center falls back to)")
        c.add_argument("--lang", default=lang_default, choices=LANGUAGES)

    def who(c):
        c.add_argument("--who", default=os.environ.get("USER") or getpass.getuser(),
                       help="recorded in the audit trail")

    c = command("import", "install an audio file as a new version of a prompt", cmd_import)
    c.add_argument("file")
    target(c)
    who(c)
    c = command("list", "the catalog with numbers (for recording by phone) and versions",
                cmd_list)
    c.add_argument("--versions", action="store_true", help="every stored version too")
    c = command("export", "copy a version (default: the installed one) to a file", cmd_export)
    target(c)
    c.add_argument("--version", type=int)
    c.add_argument("--format", default="wav", choices=("wav", "ulaw", "alaw", "sln", "sln16",
                                                         "gsm"))
    c.add_argument("out")
    c = command("rollback", "reinstall the previous (or a given) version", cmd_rollback)
    target(c)
    c.add_argument("--to", type=int, dest="to_version")
    who(c)
    command("check", "exit 1 listing every referenced prompt without audio", cmd_check)
    c = command("build-defaults", "synthesise missing or changed default prompts (espeak-ng)",
                cmd_build_defaults)
    c.add_argument("--jobs", type=int, help="worker processes (default: one per CPU)")
    c.add_argument("--force", action="store_true", help="re-synthesise every default")

    st = sub.add_parser("staff", help="administrators who record by phone")
    ssub = st.add_subparsers(dest="staff_command", required=True, metavar="COMMAND")
    for name, help_text, func in (
            ("add", "add a staff number (PIN asked, or from HOTLINE_STAFF_PIN)", cmd_staff_add),
            ("list", "staff numbers and whether they are locked", cmd_staff_list),
            ("disable", "disable a staff number", cmd_staff_disable),
            ("enable", "enable a staff number again and lift a lockout", cmd_staff_enable),
            ("set-pin", "change a PIN (asked, or from HOTLINE_STAFF_PIN)", cmd_staff_set_pin)):
        c = ssub.add_parser(name, help=help_text)
        c.add_argument("--config", "-c", required=True)
        if name != "list":
            c.add_argument("number")
        if name == "add":
            c.add_argument("--name", required=True)
        c.set_defaults(func=_wrap(func))


def _wrap(func):
    def run(args) -> int:
        config = args.load_config(args.config)
        db = Database(config.database.url, reactor=None, threads=1)
        try:
            return func(args, config, db) or 0
        except (CliError, library.LibraryError, staff.StaffError, transfer.TransferError,
                catalog_mod.CatalogError, audio.AudioRejected, defaults.SynthesisError) as e:
            print(f"hotline prompts: {e}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            db.engine.dispose()
    return run


def _languages(config: Config) -> tuple[str, ...]:
    return tuple(lang for lang in LANGUAGES
                 if any(lang in c.languages for c in config.centers.values()))


def _known(config: Config, cat: catalog_mod.Catalog,
           referenced: Callable[[Config], set[str]]) -> set[str]:
    """Catalog ids plus every prompt the other rooms say they may play."""
    try:
        return set(cat.prompts) | referenced(config)
    except ValueError as e:  # a menu file that does not validate
        raise CliError(str(e)) from None


def _check_target(args, config: Config, cat: catalog_mod.Catalog) -> None:
    if args.center != DEFAULT_CENTER and args.center not in config.centers:
        raise CliError(f"unknown center {args.center!r} (configured: "
                       f"{', '.join(sorted(config.centers))}, or default)")
    if args.prompt_id not in _known(config, cat, args.referenced):
        raise CliError(f"unknown prompt id {args.prompt_id!r}: not in the catalog "
                       "(hotline prompts list shows the ids)")


def _publish(config: Config) -> None:
    pc = config.prompts
    if pc.publish_command:
        argv = transfer.expand(pc.publish_command, {"library_dir": str(pc.library_dir)})
        transfer.run_sync(argv, pc.command_timeout)


def cmd_import(args, config: Config, db: Database) -> int:
    cat = catalog_mod.load()
    _check_target(args, config, cat)
    if not os.path.isfile(args.file):
        raise CliError(f"{args.file}: no such file")
    processed = audio.process_file(args.file, settings(config.prompts))
    change = db.run_sync(library.install, config.prompts.library_dir, args.prompt_id,
                         args.center, args.lang, processed, "import", args.who, time.time())
    _publish(config)
    print(f"{args.prompt_id} ({args.center}, {args.lang}): version {change.new_version} "
          f"installed ({processed.duration:.1f} s), was {change.old_version or 'none'}")
    return 0


def cmd_list(args, config: Config, db: Database) -> int:
    cat = catalog_mod.load()
    current = db.run_sync(library.installed)
    stored = {}
    if args.versions:
        for v in db.run_sync(library.versions):
            stored.setdefault(v.prompt_id, []).append(
                f"{v.center}/{v.lang} v{v.version} {v.source} {v.who} {v.duration:.1f}s")
    for number, prompt in cat.numbered():
        installed = [f"{center}/{lang}:v{ver}" for (pid, center, lang), ver in
                     sorted(current.items()) if pid == prompt.id]
        print(f"{number}  {prompt.id:<32} {' '.join(installed) or '-':<24} {prompt.text['zh']}")
        for line in stored.get(prompt.id, []):
            print(f"      {line}")
    return 0


def cmd_export(args, config: Config, db: Database) -> int:
    path = library.export_path(config.prompts.library_dir, args.prompt_id, args.center,
                               args.lang, args.version, args.format)
    shutil.copyfile(path, args.out)
    print(f"{args.out}: {args.prompt_id} ({args.center}, {args.lang}) "
          f"{'version ' + str(args.version) if args.version else 'installed version'}")
    return 0


def cmd_rollback(args, config: Config, db: Database) -> int:
    change = db.run_sync(library.rollback, config.prompts.library_dir, args.prompt_id,
                         args.center, args.lang, args.who, time.time(), args.to_version)
    _publish(config)
    now = f"version {change.new_version}" if change.new_version else "the default version"
    print(f"{args.prompt_id} ({args.center}, {args.lang}): {now} installed again, "
          f"was {change.old_version}")
    return 0


def check(config: Config, referenced: Callable[[Config], set[str]] = lambda config: set()
          ) -> tuple[set[str], list[str], list[str]]:
    """(prompt ids the catalog lists or ``referenced`` says the menus and flows may play,
    missing audio, ids not in the catalog): for ``prompts check`` and ``hotline doctor``."""
    cat = catalog_mod.load()
    ids = _known(config, cat, referenced)
    centers = {code: c.languages for code, c in config.centers.items()}
    gaps = library.missing(config.prompts.library_dir, ids, centers, config.prompts.all_formats)
    return ids, gaps, sorted(ids - set(cat.prompts))


def cmd_check(args, config: Config, db: Database) -> int:
    ids, gaps, uncatalogued = check(config, args.referenced)
    for pid in uncatalogued:
        print(f"not in the catalog: {pid}")
    for line in gaps:
        print(f"missing: {line}")
    if gaps or uncatalogued:
        print(f"{len(gaps)} missing, {len(uncatalogued)} not in the catalog "
              "(hotline prompts build-defaults, or import)", file=sys.stderr)
        return EXIT_FAILED
    print(f"ok: {len(ids)} prompts in {', '.join(_languages(config))} "
          f"({', '.join(config.prompts.all_formats)}) for {len(config.centers)} centers")
    return 0


def build_defaults(config: Config, db: Database, jobs: int | None = None,
                   force: bool = False) -> tuple[int, int]:
    """Synthesise missing or changed defaults and publish them: (synthesised, up to date).
    For ``prompts build-defaults`` and ``hotline init``."""
    done, fresh = defaults.build(db, config.prompts.library_dir, catalog_mod.load(),
                                 _languages(config), settings(config.prompts), time.time(),
                                 jobs=jobs, force=force)
    if done:
        _publish(config)
    return done, fresh


def cmd_build_defaults(args, config: Config, db: Database) -> int:
    started = time.monotonic()
    done, fresh = build_defaults(config, db, args.jobs, args.force)
    print(f"{done} prompts synthesised, {fresh} up to date, "
          f"{time.monotonic() - started:.1f} s")
    return 0


def _pin() -> str:
    pin = os.environ.get("HOTLINE_STAFF_PIN")
    if pin:
        return pin
    pin = getpass.getpass("PIN (4-8 digits): ")
    if getpass.getpass("PIN again: ") != pin:
        raise CliError("the two PINs differ")
    return pin


def cmd_staff_add(args, config: Config, db: Database) -> int:
    db.run_sync(staff.add, args.number, args.name, _pin(), time.time())
    print(f"staff {args.number} added")
    return 0


def cmd_staff_set_pin(args, config: Config, db: Database) -> int:
    db.run_sync(staff.set_pin, args.number, _pin())
    print(f"staff {args.number}: PIN changed")
    return 0


def cmd_staff_list(args, config: Config, db: Database) -> int:
    now = time.time()
    for line in db.run_sync(lambda s: [staff.describe(r, now) for r in staff.listing(s)]):
        print(line)
    return 0


def cmd_staff_disable(args, config: Config, db: Database) -> int:
    db.run_sync(staff.set_disabled, args.number, True)
    print(f"staff {args.number} disabled")
    return 0


def cmd_staff_enable(args, config: Config, db: Database) -> int:
    db.run_sync(staff.set_disabled, args.number, False)
    print(f"staff {args.number} enabled")
    return 0
