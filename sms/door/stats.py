"""Door statistics per center, client, template and day: pushed, filtered by reason, sent,
delivered, failed, unknown, success rate. The tallies come from ``door_tally`` (counted
in the accepting transaction), the outcomes from the outbox rows the door accepted."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from sms.door.filters import HELD, REASONS
from sms.door.tables import DoorMessage, DoorTally
from storage.models import table_of
from sms.outbox.sql import M
from sms.outbox.states import DELIVERED, EXPIRED, FAILED, SUBMITTED, UNKNOWN

T = table_of(DoorTally)
DM = table_of(DoorMessage)


def collect(session, since_day: str, timezone: str = "Asia/Shanghai") -> list[dict]:
    """One row per (center, client, template, day) since ``since_day`` (YYYY-MM-DD)."""
    rows: dict[tuple, dict] = {}

    def row(key):
        return rows.setdefault(key, {"pushed": 0, "filtered": {}, "held": 0, "sent": 0,
                                     "delivered": 0, "failed": 0, "unknown": 0})

    for center, client, template, day, what, n in session.execute(
            select(T.c.center, T.c.client, T.c.template, T.c.day, T.c.what, T.c.n)
            .where(T.c.day >= since_day)):
        r = row((center, client, template, day))
        if what == "pushed":
            r["pushed"] += n
        elif what == HELD:
            r["held"] += n
        elif what in REASONS:
            r["filtered"][what] = r["filtered"].get(what, 0) + n
    tz = ZoneInfo(timezone)
    start = dt.datetime.fromisoformat(since_day).replace(tzinfo=tz).timestamp()
    for center, client, template, created, state, n in session.execute(
            select(DM.c.center, DM.c.client, DM.c.template, DM.c.created_at, M.c.state,
                   func.count()).join(M, M.c.id == DM.c.message_id)
            .where(DM.c.created_at >= start)
            .group_by(DM.c.center, DM.c.client, DM.c.template, DM.c.created_at, M.c.state)):
        day = dt.datetime.fromtimestamp(created, tz).date().isoformat()
        r = row((center, client, template, day))
        if state in (SUBMITTED, UNKNOWN, DELIVERED, FAILED, EXPIRED):
            r["sent"] += n
        if state == DELIVERED:
            r["delivered"] += n
        elif state in (FAILED, EXPIRED):
            r["failed"] += n
        elif state in (SUBMITTED, UNKNOWN):
            r["unknown"] += n  # sent, no final receipt (yet)
    out = []
    for (center, client, template, day), r in sorted(rows.items()):
        finished = r["delivered"] + r["failed"]
        r["success_rate"] = round(r["delivered"] / finished, 4) if finished else None
        out.append({"center": center, "client": client, "template": template, "day": day, **r})
    return out


def format_table(rows: list[dict]) -> str:
    lines = [f"{'center':<8} {'client':<16} {'template':<22} {'day':<10} {'pushed':>7} "
             f"{'filtered':>8} {'sent':>7} {'deliv':>7} {'failed':>7} {'unknown':>7} "
             f"{'success':>7}  filtered by reason"]
    for r in rows:
        rate = f"{100 * r['success_rate']:.1f}%" if r["success_rate"] is not None else "-"
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["filtered"].items()))
        lines.append(f"{r['center']:<8} {r['client']:<16} {r['template'][:22]:<22} "
                     f"{r['day']:<10} {r['pushed']:>7} {sum(r['filtered'].values()):>8} "
                     f"{r['sent']:>7} {r['delivered']:>7} {r['failed']:>7} {r['unknown']:>7} "
                     f"{rate:>7}  {reasons}")
    return "\n".join(lines)
