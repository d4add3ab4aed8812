"""The dashboard's figures for one day, per center: the IVR's and the outbox's own statistics.

Functions here run inside ``Database.run`` (a pool thread). Today's figures read
the day's rows only (indexed by time); long periods belong to the reports.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, cast, func, select

from ivr.stats import summary as ivr_summary
from ivr.tables import IvrCall
from sms.door.filters import REASONS
from sms.door.tables import DoorTally
from sms.outbox.sql import M
from sms.outbox.states import DELIVERED, EXPIRED, FAILED, QUEUED, SUBMITTED, SUBMITTING

SMS_STATES = ("queued", "sent", "delivered", "failed", "unknown")


def day_start(now: float, zone: str) -> float:
    """Local midnight of ``now`` in the platform's zone."""
    local = dt.datetime.fromtimestamp(now, ZoneInfo(zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def today(session, centers: list[str], since: float, day: str) -> dict:
    """Per center: calls in progress, IVR-handled, transferred, abandoned, satisfaction and
    SMS by state since ``since``, and the SMS the door filtered on ``day`` by reason; plus
    calls and messages by hour for the charts."""
    result = {}
    for center in centers:
        stats = ivr_summary(session, center, since)
        result[center] = {
            "calls": stats.calls, "in_progress": stats.calls - stats.ended,
            "ivr_handled": stats.ivr_handled, "transferred": stats.transferred,
            "abandoned": stats.abandoned, "satisfaction": stats.satisfaction,
            "sms": dict.fromkeys(SMS_STATES, 0), "filtered": {},
        }
    t = DoorTally.__table__.c
    for center, what, n in session.execute(
            select(t.center, t.what, func.sum(t.n))
            .where(t.day == day, t.center.in_(centers), t.what.in_(REASONS))
            .group_by(t.center, t.what).order_by(t.center, t.what)):
        result[center]["filtered"][what] = int(n)
    rows = session.execute(
        select(M.c.center, M.c.state, func.count()).where(M.c.created_at >= since,
                                                           M.c.center.in_(centers))
        .group_by(M.c.center, M.c.state)).all()
    for center, state, n in rows:
        sms = result[center]["sms"]
        if state in (QUEUED, SUBMITTING):
            sms["queued"] += n
        else:
            sms["sent"] += n
            if state == SUBMITTED:
                sms["unknown"] += n  # at the carrier, no final receipt yet
            elif state == DELIVERED:
                sms["delivered"] += n
            elif state in (FAILED, EXPIRED):
                sms["failed"] += n
    return {"centers": result, "hours": _by_hour(session, centers, since)}


def _by_hour(session, centers: list[str], since: float) -> dict[str, list[int]]:
    """Calls and messages in each of the 24 hours after ``since``."""
    out = {"calls": [0] * 24, "sms": [0] * 24}
    for key, column, center_col in (("calls", IvrCall.started_at, IvrCall.center),
                                    ("sms", M.c.created_at, M.c.center)):
        hour = cast((column - since) / 3600, Integer)
        q = select(hour, func.count()).where(column >= since, column < since + 86400,
                                             center_col.in_(centers)).group_by(hour)
        for h, n in session.execute(q).all():
            if 0 <= int(h) < 24:
                out[key][int(h)] += n
    return out


def chart(values: list[int], width: int = 480, height: int = 120) -> dict:
    """Bar geometry for an inline SVG chart (drawn server-side, no script)."""
    top = max(values) or 1
    step = width / len(values)
    bars = [{"x": round(i * step + 1, 1), "w": round(step - 2, 1),
             "h": round(v / top * (height - 30), 1), "v": v, "i": i}
            for i, v in enumerate(values)]
    for bar in bars:
        bar["y"] = round(height - 14 - bar["h"], 1)
    return {"bars": bars, "width": width, "height": height, "max": top}


def monitoring(session, now: float) -> dict:
    """What ``/metrics`` reads before a scrape (common.metrics.Metrics): messages of the
    last 24 h by center, state and carrier, calls of the last 24 h by outcome, and the
    receipt latencies of the last hour."""
    messages = session.execute(select(M.c.center, M.c.state, M.c.smsc, func.count())
                               .where(M.c.created_at >= now - 86400)
                               .group_by(M.c.center, M.c.state, M.c.smsc)).all()
    calls = session.execute(select(IvrCall.center, IvrCall.outcome, func.count())
                            .where(IvrCall.started_at >= now - 86400)
                            .group_by(IvrCall.center, IvrCall.outcome)).all()
    latencies = sorted(r[0] for r in session.execute(
        select(M.c.final_at - M.c.created_at).where(
            M.c.state == DELIVERED, M.c.final_at >= now - 3600)))
    return {"messages": messages, "calls": calls, "latencies": latencies}
