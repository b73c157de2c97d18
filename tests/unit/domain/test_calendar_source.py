from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from onewindow.calendar_source import (
    DEFAULT_OVERRIDE_FILE,
    CalendarFile,
    load_calendar,
    load_override,
)
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


# ------------------------------------------------------------ dates of the year before


def _override(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "cal.yaml"
    f.write_text(text, encoding="utf-8")
    return f


def test_a_year_block_moves_a_date_of_the_year_before_without_replacing_that_year(
        tmp_path: Path) -> None:
    """domain.md section 4: a notice for 2026 makes Sunday 2025-12-28 a make-up working
    day; the rest of 2025 keeps chinesecalendar's answers (National Day, its own make-up
    Saturday), and 2026 is the block's."""
    f = _override(tmp_path, "years:\n  2026:\n    holidays: [2026-01-02]\n"
                            "    workdays: [2025-12-28, 2026-01-04]\n")
    schedules = load_override(f)
    assert schedules[2026].prior_workdays == {date(2025, 12, 28)}
    assert schedules[2026].workdays == {date(2026, 1, 4)}
    assert 2025 not in schedules
    cal = load_calendar(f)
    assert cal.is_working_day(date(2025, 12, 28)) is True  # moved
    assert cal.is_working_day(date(2025, 12, 27)) is False  # the Saturday before: kept
    assert cal.is_working_day(date(2025, 10, 1)) is False  # National Day: the package's
    assert cal.is_working_day(date(2025, 9, 28)) is True  # the package's make-up Sunday
    assert cal.is_working_day(date(2026, 1, 2)) is False and cal.is_provisional(
        date(2025, 12, 28)) is False
    # a deadline across the moved date counts it: accepted Fri 12-26, 1 working day
    v = project(fold([accepted(at="2025-12-26 10:00", amount=1)]), cal)
    assert (v["due_date"], v["due_provisional"]) == (date(2025, 12, 28), False)
    assert project(fold([accepted(at="2025-12-26 10:00", amount=1)]),
                   load_calendar())["due_date"] == date(2025, 12, 29)
    # only that date differs from the shipped calendar in 2025
    moved = [d for d in cal.snapshot().changed_dates(load_calendar().snapshot())
             if d.year == 2025]
    assert moved == [date(2025, 12, 28)]


def test_a_moved_date_of_a_provisional_block_is_provisional(tmp_path: Path) -> None:
    cal = load_calendar(_override(tmp_path, "years:\n  2028:\n    provisional: true\n"
                                            "    holidays: ['2027-12-31']\n"))
    assert cal.is_working_day(date(2027, 12, 31)) is False
    assert cal.is_provisional(date(2027, 12, 31)) is True
    assert cal.is_working_day(date(2027, 12, 30)) is None  # this file knows no 2027
    assert cal.known_years()[-2:] == (2027, 2028)


def test_a_moved_date_agreeing_with_its_own_year_block_is_fine(tmp_path: Path) -> None:
    cal = load_calendar(_override(tmp_path, "years:\n  2027:\n    workdays: [2027-12-26]\n"
                                            "  2028:\n    workdays: [2027-12-26]\n"))
    assert cal.is_working_day(date(2027, 12, 26)) is True
    assert cal.is_working_day(date(2027, 10, 1)) is True  # 2027 replaced by its block


@pytest.mark.parametrize("text", [
    "years:\n  2028:\n    workdays: [2026-12-27]",  # two years back
    "years:\n  2028:\n    workdays: [2029-01-06]",  # the year after
    "years:\n  2027:\n    holidays: [2027-12-31]\n  2028:\n    workdays: [2027-12-31]",
    "years:\n  2027:\n    workdays: [2027-12-26]\n  2028:\n    holidays: [2027-12-26]",
])
def test_moved_dates_of_other_years_or_contradicting_their_year_are_refused(
        tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_override(_override(tmp_path, text))


def test_files_of_the_old_format_load_as_before(tmp_path: Path) -> None:
    """Backward compatible: the shipped file and a file written for the old format give
    the same answers as before (no moved dates, years replaced whole)."""
    shipped = load_override()
    assert all(not s.prior_holidays and not s.prior_workdays for s in shipped.values())
    f = _override(tmp_path, "years:\n  2025:\n    holidays: ['2025-10-09']\n")
    assert load_calendar(f).is_working_day(date(2025, 10, 1)) is True


def test_calendar_file_reloads_only_a_changed_file(tmp_path: Path) -> None:
    f = _override(tmp_path, "years:\n  2028:\n    holidays: [2028-01-03]\n")
    cf = CalendarFile(f)
    first = cf.calendar
    assert cf.reload() is False and cf.calendar is first
    f.write_text("years:\n  2028:\n    holidays: [2028-01-04]\n", encoding="utf-8")
    assert cf.reload() is True
    assert cf.calendar.is_working_day(date(2028, 1, 4)) is False
    assert cf.calendar.snapshot().digest != first.snapshot().digest
    f.write_text("years: [", encoding="utf-8")
    with pytest.raises(ConfigError):
        cf.reload()
    assert cf.calendar.is_working_day(date(2028, 1, 4)) is False  # kept
