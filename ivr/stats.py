"""Hotline statistics from the call records: what the guidelines ask a 12329 hotline to report.

Calls, IVR-handled, transferred to agents, abandoned, lost with a dead daemon,
answered by the dialplan's fallback alone, average duration,
satisfaction and key presses per menu item, over a time window and optionally
one center. ``summary`` runs inside ``Database.run`` (or ``run_sync`` for the CLI).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from ivr.tables import IvrCall, IvrKeyPress


@dataclass(frozen=True)
class Stats:
    calls: int
    ended: int
    ivr_handled: int
    transferred: int
    abandoned: int
    failed: int
    errors: int
    lost: int  # the daemon driving the call died (closed at its next start)
    fallback: int  # only the dialplan's fallback answered (no daemon took the call)
    average_duration: float | None  # seconds, over ended calls
    survey: dict[int, int] = field(default_factory=dict)  # answer -> count
    key_presses: dict[tuple[str, str], int] = field(default_factory=dict)  # (node, key) -> n

    @property
    def satisfaction(self) -> float | None:
        """(satisfied + basically satisfied) / respondents."""
        total = sum(self.survey.values())
        if not total:
            return None
        return (self.survey.get(1, 0) + self.survey.get(2, 0)) / total


def summary(session, center: str | None = None, since: float | None = None,
            until: float | None = None) -> Stats:
    """Statistics of calls that started in [since, until)."""
    where = []
    if center is not None:
        where.append(IvrCall.center == center)
    if since is not None:
        where.append(IvrCall.started_at >= since)
    if until is not None:
        where.append(IvrCall.started_at < until)
    outcomes = dict(session.execute(
        select(IvrCall.outcome, func.count()).where(*where).group_by(IvrCall.outcome)).all())
    calls = sum(outcomes.values())
    avg = session.execute(select(func.avg(IvrCall.ended_at - IvrCall.started_at))
                          .where(IvrCall.ended_at.is_not(None), *where)).scalar()
    survey = dict(session.execute(
        select(IvrCall.survey, func.count()).where(IvrCall.survey.is_not(None), *where)
        .group_by(IvrCall.survey)).all())
    presses = session.execute(
        select(IvrKeyPress.node, IvrKeyPress.key, func.sum(IvrKeyPress.count))
        .join(IvrCall, IvrCall.id == IvrKeyPress.call_id).where(*where)
        .group_by(IvrKeyPress.node, IvrKeyPress.key)).all()
    return Stats(
        calls=calls,
        ended=calls - outcomes.get(None, 0),
        ivr_handled=outcomes.get("ivr_handled", 0),
        transferred=outcomes.get("transferred", 0),
        abandoned=outcomes.get("abandoned", 0),
        failed=outcomes.get("failed", 0),
        errors=outcomes.get("error", 0),
        lost=outcomes.get("lost", 0),
        fallback=outcomes.get("fallback", 0),
        average_duration=float(avg) if avg is not None else None,
        survey={int(k): int(v) for k, v in survey.items()},
        key_presses={(node, key): int(n) for node, key, n in presses},
    )


def format_stats(stats: Stats) -> str:
    """The report ``hotline ivr stats`` prints."""
    avg = "-" if stats.average_duration is None else f"{stats.average_duration:.1f} s"
    sat = "-" if stats.satisfaction is None else f"{stats.satisfaction:.1%}"
    lines = [
        f"calls            {stats.calls}",
        f"  ivr handled    {stats.ivr_handled}",
        f"  transferred    {stats.transferred}",
        f"  abandoned      {stats.abandoned}",
        f"  failed         {stats.failed}",
        f"  errors         {stats.errors}",
        f"  lost           {stats.lost}",
        f"  fallback only  {stats.fallback}",
        f"  still open     {stats.calls - stats.ended}",
        f"average duration {avg}",
        f"satisfaction     {sat} of {sum(stats.survey.values())} answers",
        "key presses:",
    ]
    for (node, key), n in sorted(stats.key_presses.items()):
        lines.append(f"  {node:<20} {key:<4} {n}")
    return "\n".join(lines)
