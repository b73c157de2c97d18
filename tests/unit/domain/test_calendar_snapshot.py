"""CalendarSnapshot and the recompute rule: the digest of a calendar's answers, and which
cases a calendar change re-publishes (domain.md section 4)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from onewindow.domain.calendar import CalendarSnapshot, SetCalendar, WeekdayCalendar
from onewindow.domain.case import fold, project
from onewindow.domain.deadline import deadline_moved

from .helpers import accepted, task

CAL = SetCalendar(years=[2025, 2026], holidays=[date(2025, 10, 1), date(2026, 1, 1)],
                  workdays=[date(2025, 9, 28)])


def test_the_snapshot_answers_as_its_calendar() -> None:
    snap = CalendarSnapshot.of(CAL, [2024, 2025, 2026])
    assert snap.years == (2025, 2026)  # 2024 knows no date: left out
    d = date(2025, 1, 1)
    for _ in range(2 * 365):
        assert snap.is_working_day(d) == CAL.is_working_day(d)
        assert snap.is_provisional(d) is False
        d = d.fromordinal(d.toordinal() + 1)
    assert snap.is_working_day(date(2024, 5, 6)) is None


def test_the_digest_is_of_the_answers_only() -> None:
    snap = CalendarSnapshot.of(CAL, [2025, 2026])
    same = SetCalendar(years=[2025, 2026], holidays=[date(2025, 10, 1), date(2026, 1, 1),
                                                    date(2025, 10, 4)])  # a Saturday anyway
    assert CalendarSnapshot.of(same, [2025, 2026, 2031]).digest != snap.digest  # 09-28
    again = SetCalendar(years=[2025, 2026], holidays=[date(2025, 10, 1), date(2026, 1, 1),
                                                     date(2025, 10, 4)],
                        workdays=[date(2025, 9, 28)])
    assert CalendarSnapshot.of(again, [2026, 2025]).digest == snap.digest
    assert CalendarSnapshot.of(again, [2026, 2025]) == snap
    assert len(snap.digest) == 64 and int(snap.digest, 16) >= 0


@pytest.mark.parametrize("other", [
    SetCalendar(years=[2025, 2026], holidays=[date(2025, 10, 1)],
                workdays=[date(2025, 9, 28)]),                       # a holiday dropped
    SetCalendar(years=[2025, 2026], holidays=[date(2025, 10, 1), date(2026, 1, 1)],
                workdays=[date(2025, 9, 28)], provisional_years=[2026]),  # now provisional
    SetCalendar(years=[2025, 2026, 2027], holidays=[date(2025, 10, 1), date(2026, 1, 1)],
                workdays=[date(2025, 9, 28)]),                       # a year newly known
])
def test_any_changed_answer_changes_the_digest(other: SetCalendar) -> None:
    snap = CalendarSnapshot.of(CAL, [2025, 2026, 2027])
    changed = CalendarSnapshot.of(other, [2025, 2026, 2027])
    assert changed.digest != snap.digest
    assert changed.changed_dates(snap)


def test_changed_dates_names_the_moved_dates() -> None:
    moved = SetCalendar(years=[2025, 2026], holidays=[date(2025, 10, 1), date(2026, 1, 1)],
                        workdays=[date(2025, 9, 28), date(2025, 12, 28)])
    a, b = CalendarSnapshot.of(CAL, [2025, 2026]), CalendarSnapshot.of(moved, [2025, 2026])
    assert b.changed_dates(a) == [date(2025, 12, 28)] == a.changed_dates(b)


def test_round_trip_through_json_and_bad_documents() -> None:
    snap = CalendarSnapshot.of(SetCalendar(years=[2027], provisional_years=[2027],
                                           holidays=[date(2027, 10, 1)]), [2027])
    back = CalendarSnapshot.from_dict(json.loads(json.dumps(snap.to_dict())))
    assert back == snap and back.digest == snap.digest
    assert back.is_provisional(date(2027, 3, 1)) and back.is_working_day(date(2027, 10, 1)) is False
    for bad in ({}, {"format": 2, "years": {}}, {"format": 1, "years": {"2027": "W"}},
                {"format": 1, "years": {"x": ""}}, {"format": 1, "years": {"2027": "Z" * 365}}):
        with pytest.raises(ValueError):
            CalendarSnapshot.from_dict(bad)
    assert CalendarSnapshot.of(WeekdayCalendar(), [2025]).years == ()


def test_a_calendar_change_republishes_open_cases_whose_deadline_moved() -> None:
    """Accepted Fri 2025-12-26, 1 working day: due Mon 12-29, or Sun 12-28 once a notice
    makes that Sunday a working day. A closed case keeps the deadline it closed with."""
    moved = SetCalendar(years=[2025, 2026], holidays=[date(2025, 10, 1), date(2026, 1, 1)],
                        workdays=[date(2025, 9, 28), date(2025, 12, 28)])
    state = fold([accepted(at="2025-12-26 10:00", amount=1)])
    before, after = project(state, CAL), project(state, moved)
    assert (before["due_date"], after["due_date"]) == (date(2025, 12, 29), date(2025, 12, 28))
    assert deadline_moved(before, after) is True
    assert deadline_moved(after, after) is False
    assert deadline_moved(None, after) is True  # the old calendar unknown: to be sure
    far = fold([accepted(at="2025-11-03 10:00", amount=3)])
    assert deadline_moved(project(far, CAL), project(far, moved)) is False
    closed = fold([accepted(at="2025-12-26 10:00", amount=1),
                   task("e1", "T1", "APPROVED", "2025-12-26 11:00"),
                   task("e2", "T2", "APPROVED", "2025-12-26 12:00", department="zjj")])
    assert project(closed, moved)["closed_at"] is not None
    assert deadline_moved(project(closed, CAL), project(closed, moved)) is False
    assert deadline_moved(None, project(closed, moved)) is False
