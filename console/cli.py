"""``hotline console adduser`` (the first administrator) and ``hotline audit verify``."""
from __future__ import annotations

import getpass
import os
import sys
import time


def register(subparsers, load_config) -> None:
    """Add the console's subcommands to ``hotline``'s argparse subparsers."""
    from console.accounts import ROLES

    p = subparsers.add_parser("console", help="the administrators' web console")
    p.set_defaults(load_config=load_config)
    sub = p.add_subparsers(dest="console_command", required=True)
    a = sub.add_parser("adduser", help="create a console account (the first administrator)")
    a.add_argument("--config", "-c", required=True)
    a.add_argument("name")
    a.add_argument("--role", choices=sorted(ROLES), default="province")
    a.add_argument("--center", help="the center of a center administrator or recorder")
    a.add_argument("--password-env", metavar="NAME",
                   help="read the password from this environment variable, not the terminal")
    a.set_defaults(func=cmd_adduser)

    w = sub.add_parser("passwd", help="set an account's password (also lifts a lockout)")
    w.add_argument("--config", "-c", required=True)
    w.add_argument("name")
    w.add_argument("--password-env", metavar="NAME",
                   help="read the password from this environment variable, not the terminal")
    w.set_defaults(func=cmd_passwd)
    u = sub.add_parser("users", help="list the console's accounts")
    u.add_argument("--config", "-c", required=True)
    u.set_defaults(func=cmd_users)

    p = subparsers.add_parser("audit", help="the console's hash-chained audit log")
    p.set_defaults(load_config=load_config)
    sub = p.add_subparsers(dest="audit_command", required=True)
    v = sub.add_parser("verify", help="check that no audit row was edited or deleted")
    v.add_argument("--config", "-c", required=True)
    v.set_defaults(func=cmd_verify)


def _database(args):
    from storage.db import Database

    config = args.load_config(args.config)
    return config, Database(config.database.url, reactor=None, threads=1)


def _password(args) -> str | None:
    if args.password_env:
        return os.environ.get(args.password_env, "")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        print("hotline: the passwords differ", file=sys.stderr)
        return None
    return password


def _who() -> str:
    return "cli:" + (os.environ.get("USER") or getpass.getuser())


def cmd_adduser(args) -> int:
    from console import accounts

    password = _password(args)
    if password is None:
        return 1
    config, db = _database(args)
    who = _who()
    try:
        user = db.run_sync(accounts.add, args.name, args.role, args.center, password,
                           time.time(), who, list(config.centers))
    except accounts.AccountError as e:
        print(f"hotline: {e}", file=sys.stderr)
        return 1
    finally:
        db.engine.dispose()
    print(f"account {user.name} created: {user.role}" + (f" of {user.center}" if user.center else ""))
    return 0


def cmd_passwd(args) -> int:
    from console import accounts

    password = _password(args)
    if password is None:
        return 1
    _config, db = _database(args)
    try:
        db.run_sync(accounts.set_password, args.name, password, time.time(), _who())
    except accounts.AccountError as e:
        print(f"hotline: {e}", file=sys.stderr)
        return 1
    finally:
        db.engine.dispose()
    print(f"account {args.name}: password set")
    return 0


def cmd_users(args) -> int:
    from console import accounts

    _config, db = _database(args)
    try:
        rows = db.run_sync(lambda s: [(u.name, u.role, u.center or "-", u.locked_until)
                                      for u in accounts.listing(s)])
    finally:
        db.engine.dispose()
    now = time.time()
    for name, role, center, locked in rows:
        print(f"{name:<20} {role:<10} {center:<10}" + (" locked" if locked > now else ""))
    return 0


def cmd_verify(args) -> int:
    from console import audit

    _config, db = _database(args)
    try:
        verdict = db.run_sync(audit.verify)
    finally:
        db.engine.dispose()
    for problem in verdict.problems:
        print(f"FAIL {problem}")
    print(f"audit log: {verdict.rows} rows, " + ("chain intact" if verdict.ok else
                                                  f"{len(verdict.problems)} problems"))
    return 0 if verdict.ok else 1
