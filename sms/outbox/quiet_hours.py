"""Quiet hours: per-class daily windows in which a message waits instead of going out."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


class QuietHours:
    """Per-class windows (local time) in which a message waits instead of going out."""

    def __init__(self, windows: dict, timezone: str):
        self.windows = windows
        self.tz = ZoneInfo(timezone)

    def release_at(self, klass: str, now: float) -> float:
        """``now`` if the class may send now, else the epoch second its quiet window ends."""
        window = self.windows.get(klass)
        if window is None:
            return now
        start, end = window
        local = dt.datetime.fromtimestamp(now, self.tz)
        minute = local.hour * 60 + local.minute
        inside = (start <= minute < end) if start <= end else (minute >= start or minute < end)
        if not inside:
            return now
        day = local.date()
        if start > end and minute >= start:
            day += dt.timedelta(days=1)
        release = dt.datetime.combine(day, dt.time(end // 60 % 24, end % 60), self.tz)
        return release.timestamp()
