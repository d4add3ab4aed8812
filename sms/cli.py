"""``hotline sms render|send|stats|backfill-alerts``."""
from __future__ import annotations

import json
import sys
import time
import uuid


class WallClock:
    """Epoch seconds for command-line tools, which run without a reactor."""

    def seconds(self) -> float:
        return time.time()


def _pairs(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"hotline sms: parameters are key=value, not {item!r}")
        params[key] = value
    return params


def _signatures(args) -> dict:
    if args.config:
        config = args.load_config(args.config, database=False)
        return {c: center.signature for c, center in config.centers.items()}
    return {args.center: args.signature}


def cmd_render(args) -> int:
    from sms.carrier import text
    from sms.templates import TemplateError, TemplateSet

    signatures = _signatures(args)
    try:
        rendered = TemplateSet(signatures).render(args.center, args.template, _pairs(args.params))
        encoded = text.encode(rendered.text, max_parts=rendered.max_parts)
    except (TemplateError, ValueError) as e:
        print(f"hotline sms render: {e}", file=sys.stderr)
        return 1
    print(rendered.text)
    print(f"{encoded.part_count} part(s) of at most {rendered.max_parts}, "
          f"class {rendered.klass}, data_coding {encoded.data_coding}")
    return 0


def _outbox(config):
    from sms.carrier import text
    from sms.outbox.outbox import Outbox
    from sms.templates import TemplateSet
    from storage.db import Database

    db = Database(config.database.url, None, 1)
    templates = TemplateSet({c: center.signature for c, center in config.centers.items()})
    return db, Outbox(db, WallClock(), config.sms.outbox, encode=text.encode,
                      instance=config.daemon.instance, templates=templates)


def cmd_send(args) -> int:
    """Put one message in the outbox; the running daemon sends it."""
    from common.masking import mask_mobile
    from sms.outbox.records import Draft, OutboxError
    from sms.templates import TemplateError

    config = args.load_config(args.config)
    db, outbox = _outbox(config)
    key = args.key or f"cli:{uuid.uuid4().hex}"
    try:
        message = outbox.build(args.center, Draft(args.template, _pairs(args.params), args.to,
                                                  key))
    except (TemplateError, ValueError) as e:
        print(f"hotline sms send: {e}", file=sys.stderr)
        return 1
    [result] = outbox.accept_blocking([message])
    if isinstance(result, OutboxError):
        print(f"hotline sms send: refused: {result}", file=sys.stderr)
        return 1
    print(f"message {result.message_id} to {mask_mobile(args.to)}: "
          f"{result.part_count} part(s){' (already accepted)' if result.duplicate else ''}")
    return 0


def cmd_stats(args) -> int:
    from sms.stats import collect_sync, format_table
    from storage.db import Database

    config = args.load_config(args.config)
    db = Database(config.database.url, None, 1)
    stats = collect_sync(db, time.time() - args.hours * 3600)
    if args.door:
        from sms.door import stats as door_stats

        since = time.strftime("%Y-%m-%d", time.localtime(time.time() - args.hours * 3600))
        rows = db.run_sync(door_stats.collect, since, config.sms.outbox.timezone)
        print(json.dumps(rows, ensure_ascii=False, indent=1) if args.json
              else door_stats.format_table(rows))
        return 0
    print(json.dumps(stats, ensure_ascii=False, indent=1) if args.json else format_table(stats))
    return 0


def cmd_backfill_alerts(args) -> int:
    """Move a center's alert cursor back: the running daemon then sends every event after it."""
    from sms.alerts import set_cursor
    from storage.db import Database

    config = args.load_config(args.config)
    if args.center not in config.centers:
        print(f"hotline: no center {args.center!r}", file=sys.stderr)
        return 1
    Database(config.database.url, None, 1).run_sync(set_cursor, args.center, args.after,
                                                     time.time())
    print(f"alerts for {args.center} will be sent for every event after cursor {args.after}")
    return 0


def register(subparsers, load_config) -> None:
    """``load_config`` is the composition root's (path, database=True) -> Config."""
    p = subparsers.add_parser("sms", help="SMS templates, sending and statistics")
    p.set_defaults(load_config=load_config)
    sub = p.add_subparsers(dest="sms_command", required=True)
    r = sub.add_parser("render", help="print a template's text and its part count")
    r.add_argument("template")
    r.add_argument("params", nargs="*", metavar="key=value")
    r.add_argument("--config", "-c")
    r.add_argument("--center", default="demo")
    r.add_argument("--signature", default="示例公积金", help="when no --config is given")
    r.set_defaults(func=cmd_render)
    s = sub.add_parser("send", help="accept one templated message into the outbox")
    s.add_argument("template")
    s.add_argument("params", nargs="*", metavar="key=value")
    s.add_argument("--config", "-c", required=True)
    s.add_argument("--center", default="demo")
    s.add_argument("--to", required=True, help="destination mobile")
    s.add_argument("--key", help="idempotency key (default: a new one)")
    s.set_defaults(func=cmd_send)
    t = sub.add_parser("stats", help="sent, delivered, failed per center, template and hour")
    t.add_argument("--config", "-c", required=True)
    t.add_argument("--hours", type=float, default=24)
    t.add_argument("--json", action="store_true")
    t.add_argument("--door", action="store_true",
                   help="the door's clients: pushed, filtered by reason, sent, delivered per day")
    t.set_defaults(func=cmd_stats)
    b = sub.add_parser("backfill-alerts", help="send the alerts of past core events (a fresh "
                       "database starts at the end of the core's journal)")
    b.add_argument("--config", "-c", required=True)
    b.add_argument("--center", required=True)
    b.add_argument("--after", type=int, default=0, help="journal cursor to send from (0: all)")
    b.set_defaults(func=cmd_backfill_alerts)
