"""The IVR room's commands: ``hotline say``, ``hotline ivr stats``, ``hotline ivr menus``."""
from __future__ import annotations

import datetime as dt
import sys

from ivr import speech


def register(subparsers, load_config) -> None:
    """Add this room's subcommands to ``hotline``'s argparse subparsers; ``load_config``
    is the composition root's (path, database=True) -> Config."""
    p = subparsers.add_parser("say", help="how the IVR reads a number (text, then prompt files)")
    p.add_argument("kind", choices=sorted(speech.KINDS))
    p.add_argument("value")
    p.add_argument("--lang", choices=speech.LANGUAGES, default="zh")
    p.set_defaults(func=cmd_say)

    ivr = subparsers.add_parser("ivr", help="IVR statistics and menus")
    ivr.set_defaults(load_config=load_config)
    sub = ivr.add_subparsers(dest="ivr_command", required=True)
    s = sub.add_parser("stats", help="calls, IVR-handled, transferred, abandoned, key presses")
    s.add_argument("--config", "-c", required=True)
    s.add_argument("--center")
    s.add_argument("--since", type=_day, help="YYYY-MM-DD (local time), inclusive")
    s.add_argument("--until", type=_day, help="YYYY-MM-DD (local time), exclusive")
    s.set_defaults(func=cmd_stats)
    m = sub.add_parser("menus", help="load and validate every center's menu file")
    m.add_argument("--config", "-c", required=True)
    m.set_defaults(func=cmd_menus)


def _day(value: str) -> float:
    return dt.datetime.combine(dt.date.fromisoformat(value), dt.time()).timestamp()


def cmd_say(args) -> int:
    try:
        reading = speech.say(args.kind, args.value, args.lang)
    except speech.SpeechError as e:
        print(f"hotline say: {e}", file=sys.stderr)
        return 2
    print(reading.text)
    for prompt in reading.prompts:
        print(prompt)
    return 0


def cmd_stats(args) -> int:
    from ivr.stats import format_stats, summary
    from storage.db import Database

    config = args.load_config(args.config)
    db = Database(config.database.url, reactor=None, threads=1)
    try:
        stats = db.run_sync(summary, args.center, args.since, args.until)
    finally:
        db.engine.dispose()
    print(format_stats(stats))
    return 0


def cmd_menus(args) -> int:
    from ivr.flows import FLOWS
    from ivr.menu import MenuError, load_for_center

    config = args.load_config(args.config, database=False)
    status = 0
    for code in config.centers:
        try:
            menu = load_for_center(config.ivr.menus_dir, code, FLOWS)
        except MenuError as e:
            print(f"{code}: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"{code}: {menu.source}: ok ({len(menu.nodes)} nodes)")
    return status
