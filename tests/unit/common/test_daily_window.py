"""The one daily window: menu service hours, agents' office hours, outbox quiet hours."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from common.daily_window import DailyWindow

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAYS = (1, 2, 3, 4, 5)


@pytest.mark.parametrize("window,when,inside", [
    (DailyWindow(9 * 60, 17 * 60, WEEKDAYS), dt.datetime(2026, 11, 26, 9, 0), True),
    (DailyWindow(9 * 60, 17 * 60, WEEKDAYS), dt.datetime(2026, 11, 26, 17, 0), False),
    (DailyWindow(9 * 60, 17 * 60, WEEKDAYS), dt.datetime(2026, 11, 28, 10, 0), False),
    (DailyWindow(22 * 60, 6 * 60), dt.datetime(2026, 11, 26, 23, 0), True),
    (DailyWindow(22 * 60, 6 * 60), dt.datetime(2026, 11, 26, 5, 59), True),
    (DailyWindow(22 * 60, 6 * 60), dt.datetime(2026, 11, 26, 12, 0), False),
    (DailyWindow(), dt.datetime(2026, 11, 26, 23, 59), True),
])
def test_contains(window, when, inside):
    """Windows by weekday, including windows that wrap past midnight and the whole day."""
    assert window.contains(when) is inside


@pytest.mark.parametrize("text,problem", [
    ("9-17", "must be a time window like 09:00-17:00, not '9-17'"),
    ("09:00-25:00", "must be a time window"),
    ("09:00", "must be a time window"),
])
def test_parse_refuses_what_is_not_a_window(text, problem):
    """A bad window says what a good one looks like."""
    with pytest.raises(ValueError, match=problem):
        DailyWindow.parse(text)


def test_parse_refuses_bad_days():
    """Weekdays are ISO numbers 1-7."""
    with pytest.raises(ValueError, match="ISO weekdays"):
        DailyWindow.parse("09:00-17:00", (0, 1))


def _at(hour: int, minute: int = 0, day: int = 26) -> float:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).timestamp()


@pytest.mark.parametrize("now,released", [
    (_at(12), _at(12)),             # outside: now
    (_at(22), _at(8, day=27)),      # evening part of a wrapping window: tomorrow's end
    (_at(3), _at(8)),               # morning part: today's end
])
def test_release_at_is_the_end_of_a_quiet_window(now, released):
    """Quiet hours: a message waiting in the window goes out when it closes, in the
    window's zone."""
    assert DailyWindow(21 * 60, 8 * 60).release_at(now, SHANGHAI) == released


def test_release_at_a_whole_day_window_is_the_next_midnight():
    """00:00-24:00 ends at the next midnight, never at the one already past."""
    assert DailyWindow().release_at(_at(10), SHANGHAI) == _at(0, day=27)
