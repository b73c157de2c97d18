from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from onewindow.calendar_source import DEFAULT_OVERRIDE_FILE, load_calendar, load_override
from onewindow.domain.calendar import WorkingCalendar
from onewindow.domain.case import fold, project
from onewindow.errors import ConfigError

from .helpers import accepted


def test_published_years_come_from_chinesecalendar() -> None:
    cal = load_calendar()
    assert isinstance(cal, WorkingCalendar)
    assert cal.is_working_day(date(2025, 10, 1)) is False  # National Day
    assert cal.is_working_day(date(2025, 10, 11)) is True  # make-up Saturday
    assert cal.is_working_day(date(2025, 10, 12)) is False
    assert cal.is_working_day(date(2026, 2, 14)) is True  # make-up Saturday
    assert cal.is_provisional(date(2025, 10, 1)) is False


def test_the_shipped_2027_is_provisional_with_statutory_holidays() -> None:
    cal = load_calendar()
    assert 2027 in load_override()
    assert cal.is_working_day(date(2027, 10, 1)) is False
    assert cal.is_working_day(date(2027, 2, 8)) is False  # 初三, a Monday
    assert cal.is_working_day(date(2027, 3, 1)) is True
    assert cal.is_working_day(date(2027, 3, 6)) is False  # Saturday
    assert cal.is_provisional(date(2027, 3, 1)) is True
    v = project(fold([accepted(at="2027-09-29 10:00", amount=2)]), cal)
    assert v["due_date"] == date(2027, 10, 4)  # Thu 30, (Fri 10-01 holiday), Mon 10-04
    assert v["due_provisional"] is True


def test_unknown_years_are_none(caplog: pytest.LogCaptureFixture) -> None:
    cal = load_calendar()
    assert cal.is_working_day(date(2031, 3, 3)) is None
    assert cal.is_working_day(date(2031, 3, 4)) is None
    assert sum("2031" in r.getMessage() for r in caplog.records) == 1  # warned once
    v = project(fold([accepted(at="2031-03-03 10:00", amount=1)]), cal)
    assert (v["due_date"], v["due_provisional"]) == (date(2031, 3, 4), True)
    assert not cal.is_known_year(2031) and cal.is_known_year(2025)


def test_a_published_override_replaces_the_package_and_is_not_provisional(
        tmp_path: Path) -> None:
    f = tmp_path / "cal.yaml"
    f.write_text("years:\n  2025:\n    holidays: ['2025-10-09']\n    workdays: [2025-10-12]\n"
                 "  2028:\n    provisional: false\n", encoding="utf-8")
    cal = load_calendar(f)
    assert cal.is_working_day(date(2025, 10, 9)) is False
    assert cal.is_working_day(date(2025, 10, 12)) is True
    assert cal.is_working_day(date(2025, 10, 1)) is True  # the whole year is replaced
    assert cal.is_working_day(date(2028, 1, 3)) is True
    assert cal.is_provisional(date(2028, 1, 3)) is False
    assert cal.is_working_day(date(2027, 10, 1)) is None  # this file has no 2027


@pytest.mark.parametrize("text", [
    "years: [1, 2]",
    "years:\n  x:\n    holidays: []",
    "years:\n  2028:\n    holidays: [2029-01-01]",
    "years:\n  2028:\n    holidays: [not-a-date]",
    "years:\n  2028:\n    provisional: maybe",
    "years:\n  2028:\n    holiday: []",
    "years:\n  2028:\n    holidays: [2028-01-03]\n    workdays: [2028-01-03]",
    "years: {2028: {holidays: 5}}",
    ": bad: yaml: [",
])
def test_bad_override_files(tmp_path: Path, text: str) -> None:
    f = tmp_path / "cal.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_override(f)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_override(tmp_path / "absent.yaml")
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    assert load_override(tmp_path / "empty.yaml") == {}
    assert DEFAULT_OVERRIDE_FILE.is_file()
