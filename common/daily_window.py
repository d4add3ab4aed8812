"""A daily time window (``HH:MM-HH:MM`` on chosen ISO weekdays), the one helper for
menu service hours, agents' office hours and the outbox's quiet hours.

Times are minutes since midnight; a window whose end is before its start wraps
past midnight (``21:00-08:00``), and ``00:00-24:00`` is the whole day. The weekday
test is on the day of the moment asked about, as the menus and office hours have
always read it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

EVERY_DAY = (1, 2, 3, 4, 5, 6, 7)
_DAY = 24 * 60


@dataclass(frozen=True)
class DailyWindow:
    start: int = 0
    end: int = _DAY
    days: tuple[int, ...] = EVERY_DAY

    @classmethod
    def parse(cls, text: str, days: tuple[int, ...] = EVERY_DAY) -> DailyWindow:
        """``HH:MM-HH:MM``; a ValueError saying what a window looks like otherwise."""
        try:
            start, end = (_minutes(part) for part in text.split("-"))
        except ValueError:
            raise ValueError(f"must be a time window like 09:00-17:00, not {text!r}") from None
        if not days or any(d not in EVERY_DAY for d in days):
            raise ValueError("days must be ISO weekdays 1-7")
        return cls(start, end, tuple(sorted(days)))

    @property
    def wraps(self) -> bool:
        return self.end < self.start

    def contains(self, local: dt.datetime) -> bool:
        """Whether the wall-clock time ``local`` (already in the window's zone) is inside."""
        if local.isoweekday() not in self.days:
            return False
        minute = local.hour * 60 + local.minute
        if self.wraps:
            return minute >= self.start or minute < self.end
        return self.start <= minute < self.end

    def release_at(self, now: float, tz: ZoneInfo) -> float:
        """``now`` when outside the window, else the epoch second the window ends (quiet hours:
        a message waiting in a window goes out when it closes)."""
        local = dt.datetime.fromtimestamp(now, tz)
        if not self.contains(local):
            return now
        day = local.date()
        if self.wraps and local.hour * 60 + local.minute >= self.start:
            day += dt.timedelta(days=1)
        if self.end == _DAY:
            return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tz).timestamp()
        return dt.datetime.combine(day, dt.time(self.end // 60, self.end % 60), tz).timestamp()


def _minutes(hhmm: str) -> int:
    h, sep, m = hhmm.strip().partition(":")
    if not sep:
        raise ValueError(hhmm)
    hi, mi = int(h), int(m)
    if not (0 <= hi <= 24 and 0 <= mi < 60) or hi * 60 + mi > _DAY:
        raise ValueError(hhmm)
    return hi * 60 + mi
