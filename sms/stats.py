"""SMS statistics: sent, delivered and failed per center, template and hour; latency; binds."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, cast, func, select

from sms.outbox.sql import C, M
from sms.outbox.states import DELIVERED, EXPIRED, FAILED, SUBMITTED, UNKNOWN

SENT = (SUBMITTED, DELIVERED, FAILED, EXPIRED, UNKNOWN)
SETTLED = (DELIVERED, FAILED, EXPIRED, UNKNOWN)  # each counted in its own column


def _collect(session, since: float) -> dict:
    hour = (cast(M.c.created_at, Integer) / 3600).label("hour")
    rows = session.execute(
        select(M.c.center, M.c.template, hour, M.c.state, func.count(),
               func.sum(M.c.part_count))
        .where(M.c.created_at >= since)
        .group_by(M.c.center, M.c.template, hour, M.c.state)).all()
    table: dict[tuple, dict] = {}
    for center, template, h, state, n, parts in rows:
        key = (center, template, int(h))
        entry = table.setdefault(key, {"sent": 0, "delivered": 0, "failed": 0, "expired": 0,
                                       "unknown": 0, "queued": 0, "parts": 0})
        if state in SENT:
            entry["sent"] += n  # reached the SMSC or a final state
        if state in SETTLED:
            entry[state] += n
        elif state != SUBMITTED:
            entry["queued"] += n  # queued or being submitted
        entry["parts"] += int(parts or 0)
    latencies = sorted(r[0] for r in session.execute(
        select(M.c.final_at - M.c.created_at).where(
            M.c.state == DELIVERED, M.c.created_at >= since, M.c.final_at.is_not(None))))
    counters = dict(session.execute(select(C.c.name, C.c.value)).all())
    return {"rows": table, "latencies": latencies, "counters": counters}


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def summarize(raw: dict, binds: dict) -> dict:
    """Plain JSON-able statistics from ``_collect``'s rows."""
    rows = [{"center": c, "template": t,
             "hour": dt.datetime.fromtimestamp(h * 3600, dt.UTC).isoformat(), **v}
            for (c, t, h), v in sorted(raw["rows"].items())]
    lat = raw["latencies"]
    return {
        "rows": rows,
        "delivery_latency_s": {"count": len(lat), "p50": _quantile(lat, 0.5),
                               "p95": _quantile(lat, 0.95), "max": _quantile(lat, 1.0)},
        "counters": raw["counters"],
        "binds": binds,
    }


def collect_sync(db, since: float = 0.0) -> dict:
    """For the command line (no reactor, no router)."""
    return summarize(db.run_sync(_collect, since), {})


async def collect(db, router=None, since: float = 0.0) -> dict:
    """Everything the stats page and ``hotline sms stats`` show."""
    raw = await db.run(_collect, since)
    return summarize(raw, router.states() if router is not None else {})


def format_table(stats: dict) -> str:
    """A plain-text table for the command line."""
    lines = [f"{'center':<10} {'template':<28} {'hour (UTC)':<20} {'sent':>7} {'deliv':>7} "
             f"{'failed':>7} {'expired':>7} {'unknown':>7} {'queued':>7}"]
    for r in stats["rows"]:
        lines.append(f"{r['center']:<10} {r['template']:<28} {r['hour'][:16]:<20} "
                     f"{r['sent']:>7} {r['delivered']:>7} {r['failed']:>7} {r['expired']:>7} "
                     f"{r['unknown']:>7} {r['queued']:>7}")
    lat = stats["delivery_latency_s"]
    lines.append(f"delivery latency: n={lat['count']} p50={lat['p50']} s p95={lat['p95']} s "
                 f"max={lat['max']} s")
    lines.append(f"counters: {stats['counters']}")
    if stats["binds"]:
        lines.append(f"binds: {stats['binds']}")
    return "\n".join(lines)
