"""The simulator's opening hours (producers/service_hours.py): working days of the
deadline rules' calendar (chinesecalendar, 调休 included), 09:00-12:00 and 13:30-17:30
Asia/Shanghai, and time counted in them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.calendar_source import load_calendar
from onewindow.domain.calendar import SetCalendar
from producers.service_hours import AROUND_THE_CLOCK, ServiceHours, describe, session_seconds

HOURS = ServiceHours(load_calendar())
CST = timedelta(hours=8)


def cst(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    """A wall time in Guangzhou as a UTC instant."""
    return datetime(y, m, d, hh, mm, tzinfo=UTC) - CST


def test_a_working_day_has_seven_open_hours_in_two_sessions() -> None:
    assert session_seconds() == HOURS.day_seconds == 7 * 3600
    assert HOURS.open_share == pytest.approx(7 / 24)
    assert describe() == "working days 09:00-12:00, 13:30-17:30"
    day = cst(2025, 11, 12, 0)  # a Wednesday
    assert HOURS.open_seconds(day, day + timedelta(days=1)) == 7 * 3600
    assert HOURS.is_open(cst(2025, 11, 12, 9)) and not HOURS.is_open(cst(2025, 11, 12, 12))
    assert not HOURS.is_open(cst(2025, 11, 12, 13, 29))
    assert HOURS.next_open(cst(2025, 11, 12, 12, 30)) == cst(2025, 11, 12, 13, 30)
    assert HOURS.next_open(cst(2025, 11, 12, 10)) == cst(2025, 11, 12, 10)


def test_open_time_skips_lunch_nights_weekends_and_holidays_and_counts_make_up_days() -> None:
    # 30 open minutes from 11:45: 15 before lunch, 15 after it
    assert HOURS.add(cst(2025, 11, 12, 11, 45), 30 * 60) == cst(2025, 11, 12, 13, 45)
    # Friday 17:00 + 1 open hour: Monday 09:30
    assert HOURS.add(cst(2025, 11, 14, 17), 3600) == cst(2025, 11, 17, 9, 30)
    # National Day 2025: closed 1 to 8 October; Sunday 28 September is a make-up working day
    assert HOURS.add(cst(2025, 9, 30, 17), 3600) == cst(2025, 10, 9, 9, 30)
    assert HOURS.is_open(cst(2025, 9, 28, 10))
    assert HOURS.add(cst(2025, 9, 27, 20), 0) == cst(2025, 9, 28, 9)
    # back is add's inverse
    assert HOURS.back(cst(2025, 10, 9, 9, 30), 3600) == cst(2025, 9, 30, 17)
    assert HOURS.back(cst(2025, 11, 12, 20), 0) == cst(2025, 11, 12, 20)


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 1),
                        timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(at=instants, seconds=st.floats(min_value=0, max_value=30 * 7 * 3600))
def test_add_back_and_open_seconds_agree(at: datetime, seconds: float) -> None:
    later = HOURS.add(at, seconds)
    assert later >= at
    assert HOURS.open_seconds(at, later) == pytest.approx(seconds, abs=1e-3)
    earlier = HOURS.back(at, seconds)
    assert earlier <= at
    assert HOURS.open_seconds(earlier, at) == pytest.approx(seconds, abs=1e-3)


def test_around_the_clock_is_clock_time() -> None:
    at = cst(2025, 11, 15, 23)  # a Saturday night
    assert AROUND_THE_CLOCK.add(at, 90) == at + timedelta(seconds=90)
    assert AROUND_THE_CLOCK.back(at, 90) == at - timedelta(seconds=90)
    assert AROUND_THE_CLOCK.open_seconds(at, at + timedelta(hours=1)) == 3600
    assert AROUND_THE_CLOCK.open_share == 1


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="ascend"):
        ServiceHours(load_calendar(), ((time(13), time(12)),))
    with pytest.raises(ValueError, match="ascend"):
        ServiceHours(load_calendar(), ((time(9), time(12)), (time(11), time(15))))
    with pytest.raises(ValueError, match="naive"):
        HOURS.add(datetime(2025, 11, 12, 9), 60)
    with pytest.raises(ValueError, match="negative"):
        HOURS.add(cst(2025, 11, 12, 9), -1)
    every_day_off = SetCalendar(years=range(2000, 2100),
                                holidays=[date(2025, 1, 1) + timedelta(days=i)
                                          for i in range(400)])
    with pytest.raises(ValueError, match="no opening session within 60 days"):
        ServiceHours(every_day_off).add(cst(2025, 1, 1, 9), 60)
