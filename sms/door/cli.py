"""``hotline door client add|list|show|change|disable|enable|audit`` and ``hotline door
callbacks`` (the dead-letter view). Every change is audited with the operator's name."""
from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import Callable

from sms.door.clients import Client, ClientError, add_client, audit_trail, change_client, load_all


def _db(args):
    from storage.db import Database

    return Database(args.load_config(args.config).database.url, None, 1)


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _actor(args) -> str:
    return args.actor or getpass.getuser()


def cmd_add(args) -> int:
    client = Client(
        name=args.name, center=args.center, secret_env=args.secret_env,
        system_id=args.system_id or args.name[:15], templates=_csv(args.templates) or ("*",),
        classes=_csv(args.classes) or ("transaction", "bulk"), free_text=args.free_text,
        daily_quota=args.daily_quota, rate_per_second=args.rate, source_exts=_csv(args.exts),
        keywords=tuple(w.upper() for w in _csv(args.keywords)),
        ip_allow=_csv(args.ip_allow), callback_url=args.callback_url,
        callback_parts=args.callback_parts)
    try:
        _db(args).run_sync(add_client, client, _actor(args), time.time())
    except ClientError as e:
        print(f"hotline door client add: {e}", file=sys.stderr)
        return 1
    print(f"client {client.name} added for center {client.center}; its secret is read from "
          f"${client.secret_env}")
    return 0


_CHANGES: dict[str, Callable[[str], object]] = {
    "center": str, "secret_env": str, "system_id": str, "templates": _csv, "classes": _csv,
    "daily_quota": int, "rate_per_second": int, "source_exts": _csv,
    "keywords": lambda v: tuple(w.upper() for w in _csv(v)), "ip_allow": _csv,
    "callback_url": str, "callback_parts": lambda v: v == "yes",
    "free_text": lambda v: v == "yes"}


def _change(args, changes: dict) -> int:
    try:
        _db(args).run_sync(change_client, args.name, changes, _actor(args), time.time())
    except ClientError as e:
        print(f"hotline door client: {e}", file=sys.stderr)
        return 1
    print(f"client {args.name}: {', '.join(f'{k}={v}' for k, v in changes.items())}")
    return 0


def cmd_change(args) -> int:
    changes = {}
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep or key not in _CHANGES:
            print(f"hotline door client change: use KEY=VALUE with KEY one of "
                  f"{', '.join(_CHANGES)}", file=sys.stderr)
            return 1
        try:
            changes[key] = _CHANGES[key](value)
        except ValueError:
            print(f"hotline door client change: bad value for {key}", file=sys.stderr)
            return 1
    return _change(args, changes)


def cmd_enable(args) -> int:
    return _change(args, {"enabled": args.enabled})


def cmd_list(args) -> int:
    clients = _db(args).run_sync(load_all)
    if args.json:
        print(json.dumps([{k: v for k, v in c.__dict__.items() if k != "_nets"}
                          for c in clients.values()], ensure_ascii=False, indent=1))
        return 0
    print(f"{'name':<20} {'center':<8} {'on':<3} {'quota/day':>9} {'rate/s':>7} "
          f"{'system_id':<15} secret from")
    for c in clients.values():
        print(f"{c.name:<20} {c.center:<8} {'yes' if c.enabled else 'no':<3} "
              f"{c.daily_quota:>9} {c.rate_per_second:>7} {c.system_id:<15} ${c.secret_env}")
    return 0


def cmd_audit(args) -> int:
    for row in _db(args).run_sync(audit_trail, args.name):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"]))
        print(f"{when} UTC  {row['client']:<20} {row['action']:<7} by {row['actor']}: "
              f"{row['detail']}")
    return 0


def cmd_dead(args) -> int:
    from sms.door.callbacks import dead_letters

    for row in _db(args).run_sync(dead_letters, args.client, args.limit):
        print(json.dumps(row, ensure_ascii=False))
    return 0


def register(subparsers, load_config) -> None:
    """``load_config`` is the composition root's (path, database=True) -> Config."""
    p = subparsers.add_parser("door", help="the SMS door: clients, callbacks")
    p.set_defaults(load_config=load_config)
    sub = p.add_subparsers(dest="door_command", required=True)
    c = sub.add_parser("client", help="manage the systems that send through the door")
    csub = c.add_subparsers(dest="client_command", required=True)
    a = csub.add_parser("add", help="add a client (its secret stays in the environment)")
    a.add_argument("name")
    a.add_argument("--center", required=True, help="a center code, or * for the province")
    a.add_argument("--secret-env", required=True, help="environment variable with the secret")
    a.add_argument("--system-id", help="SMPP bind name (default: the name)")
    a.add_argument("--templates", help="comma-separated; default every template")
    a.add_argument("--classes", help="comma-separated; default transaction,bulk")
    a.add_argument("--free-text", action="store_true")
    a.add_argument("--daily-quota", type=int, default=100_000)
    a.add_argument("--rate", type=int, default=100, help="messages per second")
    a.add_argument("--exts", help="source extensions it owns (MO to 12329+ext)")
    a.add_argument("--keywords", help="MO keywords it owns (their MO go to it)")
    a.add_argument("--ip-allow", help="comma-separated CIDRs; default any")
    a.add_argument("--callback-url")
    a.add_argument("--callback-parts", action="store_true", help="a callback per part too")
    a.set_defaults(func=cmd_add)
    ch = csub.add_parser("change", help="change settings: KEY=VALUE ...")
    ch.add_argument("name")
    ch.add_argument("settings", nargs="+", metavar="KEY=VALUE")
    ch.set_defaults(func=cmd_change)
    for verb, on in (("enable", True), ("disable", False)):
        e = csub.add_parser(verb, help=f"{verb} a client")
        e.add_argument("name")
        e.set_defaults(func=cmd_enable, enabled=on)
    ls = csub.add_parser("list", help="list clients")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    au = csub.add_parser("audit", help="the audit trail of client changes")
    au.add_argument("name", nargs="?")
    au.set_defaults(func=cmd_audit)
    d = sub.add_parser("dead-letters", help="callbacks given up after their retries")
    d.add_argument("--client")
    d.add_argument("--limit", type=int, default=100)
    d.set_defaults(func=cmd_dead)
    for parser in (a, ch, ls, au, d, *(csub.choices[v] for v in ("enable", "disable"))):
        parser.add_argument("--config", "-c", required=True)
        parser.add_argument("--actor", help="who makes the change (default: the login name)")
