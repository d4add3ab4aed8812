"""Quiet hours: per-class daily windows in which a message waits instead of going out."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from common.daily_window import DailyWindow


class QuietHours:
    """Per-class windows, in the outbox's zone; a class without one is never held."""

    def __init__(self, windows: dict[str, DailyWindow | None], timezone: str):
        self.windows = windows
        self.tz = ZoneInfo(timezone)

    def release_at(self, klass: str, now: float) -> float:
        """``now`` if the class may send now, else the epoch second its quiet window ends."""
        window = self.windows.get(klass)
        return now if window is None else window.release_at(now, self.tz)
