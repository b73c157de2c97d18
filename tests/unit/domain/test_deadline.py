from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from onewindow.domain.calendar import SetCalendar, WeekdayCalendar, consult
from onewindow.domain.case import fold, project
from onewindow.domain.deadline import (
    DUE_SOON,
    LATE,
    ON_TIME,
    ON_TRACK,
    OVERDUE,
    PAUSED,
    due_by_natural_days,
    due_by_working_days,
    end_of_local_day,
    next_working_day,
    pause_intervals,
    paused_dates,
    sla_status,
    union_length,
    working_days_left,
)

from .helpers import CAL_2025, accepted, t, task, withdrawn


def view(*events: dict[str, Any], calendar: Any = CAL_2025) -> dict[str, Any]:
    return project(fold(events), calendar)


# --------------------------------------------------------------------- WORKING_DAY


def test_five_working_days_over_national_day() -> None:
    # 10-01..10-08 holiday, Saturday 10-11 a make-up working day.
    v = view(accepted(at="2025-09-30 10:00", amount=5))
    assert v["due_date"] == date(2025, 10, 14)
    assert v["due_at"] == datetime(2025, 10, 14, 15, 59, 59, 999000, tzinfo=UTC)
    assert v["due_at"] == t("2025-10-14 23:59:59.999")
    assert v["due_provisional"] is False
    assert v["paused_since"] is None


def test_supplement_pause_moves_the_deadline() -> None:
    v = view(
        accepted(at="2025-09-30 10:00", amount=5),
        task("e1", "T1", "RECEIVED", "2025-09-30 14:00"),
        task("e2", "T1", "SUPPLEMENT_REQUESTED", "2025-10-09 09:00"),
        task("e3", "T1", "SUPPLEMENT_RECEIVED", "2025-10-10 16:00"),
    )
    assert v["due_date"] == date(2025, 10, 16)
    assert v["status"] == "IN_PROGRESS"


def test_zero_days_is_the_acceptance_date() -> None:
    for unit in ("WORKING_DAY", "NATURAL_DAY"):
        v = view(accepted(at="2025-10-01 10:00", amount=0, unit=unit))  # a holiday
        assert v["due_date"] == date(2025, 10, 1)
        assert v["due_at"] == t("2025-10-01 23:59:59.999")
        assert v["due_provisional"] is False


def test_acceptance_date_is_the_shanghai_date() -> None:
    # 2025-09-30 17:00 UTC is 2025-10-01 01:00 in Shanghai: A = 10-01.
    ev = accepted(amount=1)
    ev["occurred_at"] = datetime(2025, 9, 30, 17, 0, tzinfo=UTC)
    assert view(ev)["due_date"] == date(2025, 10, 9)
    ev["occurred_at"] = datetime(2025, 9, 30, 15, 59, tzinfo=UTC)  # 23:59 on 09-30
    assert view(ev)["due_date"] == date(2025, 10, 9)
    ev["occurred_at"] = datetime(2025, 9, 29, 15, 59, tzinfo=UTC)  # 23:59 on 09-29
    assert view(ev)["due_date"] == date(2025, 9, 30)


def test_paused_dates_both_ends_included_across_midnight() -> None:
    closed, _ = pause_intervals([(t("2025-10-09 23:00"), "SUPPLEMENT_REQUESTED"),
                                 (t("2025-10-10 01:00"), "SUPPLEMENT_RECEIVED")])
    assert paused_dates(closed) == {date(2025, 10, 9), date(2025, 10, 10)}
    # Same-day pause touches one date; UTC input is converted to Shanghai.
    assert paused_dates([(datetime(2025, 10, 9, 1, tzinfo=UTC),
                          datetime(2025, 10, 9, 2, tzinfo=UTC))]) == {date(2025, 10, 9)}


def test_a_paused_weekend_changes_nothing_for_working_days() -> None:
    v = view(
        accepted(at="2025-09-30 10:00", amount=5),
        task("e1", "T1", "SUSPENDED", "2025-10-12 09:00"),  # Sunday
        task("e2", "T1", "RESUMED", "2025-10-12 18:00"),
    )
    assert v["due_date"] == date(2025, 10, 14)


def test_pauses_of_several_tasks_and_chained_pausing_statuses() -> None:
    # T1: SR 10-09 -> SUSPENDED 10-10 (still paused) -> RESUMED 10-13: 09,10,11,13 paused.
    # T2: SR 10-14 -> SUPPLEMENT_RECEIVED 10-14: 14 paused.
    v = view(
        accepted(at="2025-09-30 10:00", amount=5),
        task("a", "T1", "SUPPLEMENT_REQUESTED", "2025-10-09 09:00"),
        task("b", "T1", "SUSPENDED", "2025-10-10 09:00"),
        task("c", "T1", "RESUMED", "2025-10-13 09:00"),
        task("d", "T2", "SUPPLEMENT_REQUESTED", "2025-10-14 09:00", department="zjj"),
        task("e", "T2", "SUPPLEMENT_RECEIVED", "2025-10-14 10:00", department="zjj"),
    )
    # Working, not paused: 15, 16, 17, 20, 21.
    assert v["due_date"] == date(2025, 10, 21)


def test_pause_intervals() -> None:
    closed, open_start = pause_intervals([(1, "RECEIVED"), (2, "SUPPLEMENT_REQUESTED"),
                                          (3, "SUSPENDED"), (4, "RESUMED"), (5, "SUSPENDED"),
                                          (6, "APPROVED"), (7, "SUPPLEMENT_REQUESTED")])
    assert closed == [(2, 4), (5, 6)]
    assert open_start == 7
    assert pause_intervals([]) == ([], None)


def test_open_pause_nulls_the_deadline() -> None:
    v = view(
        accepted(at="2025-09-30 10:00", amount=5),
        task("a", "T1", "SUPPLEMENT_REQUESTED", "2025-10-09 09:00"),
        task("b", "T2", "SUSPENDED", "2025-10-10 09:00", department="zjj"),
    )
    assert v["due_date"] is None and v["due_at"] is None
    assert v["paused_since"] == t("2025-10-09 09:00")
    assert v["status"] == "SUPPLEMENT_REQUIRED"
    # A closed pause of another task does not hide the open one.
    v = view(
        accepted(at="2025-09-30 10:00", amount=5),
        task("a", "T1", "SUPPLEMENT_REQUESTED", "2025-10-09 09:00"),
        task("b", "T1", "SUPPLEMENT_RECEIVED", "2025-10-09 10:00"),
        task("c", "T2", "SUSPENDED", "2025-10-10 09:00", department="zjj"),
    )
    assert v["paused_since"] == t("2025-10-10 09:00")
    assert v["status"] == "SUSPENDED"


def test_due_by_working_days_directly() -> None:
    assert due_by_working_days(date(2025, 9, 30), 5, set(), CAL_2025) == (date(2025, 10, 14),
                                                                         False)
    assert due_by_working_days(date(2025, 9, 30), 5, {date(2025, 10, 9), date(2025, 10, 10)},
                               CAL_2025) == (date(2025, 10, 16), False)
    # Friday + 1 working day = Monday.
    assert due_by_working_days(date(2025, 9, 19), 1, set(), CAL_2025) == (date(2025, 9, 22),
                                                                         False)


# ------------------------------------------------------------------- provisional


def test_unknown_year_counts_monday_to_friday_provisionally() -> None:
    v = view(accepted(at="2027-09-30 10:00", amount=5))  # Thursday; CAL_2025 knows 2025 only
    assert v["due_date"] == date(2027, 10, 7)  # Fri 1, Mon 4, Tue 5, Wed 6, Thu 7
    assert v["due_provisional"] is True
    v = view(accepted(at="2027-09-30 10:00", amount=5), calendar=WeekdayCalendar())
    assert v["due_provisional"] is True


def test_a_deadline_crossing_into_an_unknown_year_is_provisional() -> None:
    v = view(accepted(at="2025-12-29 10:00", amount=2))  # Tue 30, Wed 31
    assert (v["due_date"], v["due_provisional"]) == (date(2025, 12, 31), False)
    v = view(accepted(at="2025-12-29 10:00", amount=3))  # Thu 2026-01-01 is unknown here
    assert (v["due_date"], v["due_provisional"]) == (date(2026, 1, 1), True)


def test_natural_days_and_hours_never_consult_the_calendar() -> None:
    for unit in ("NATURAL_DAY", "HOUR"):
        v = view(accepted(at="2027-09-30 10:00", amount=5, unit=unit))
        assert v["due_provisional"] is False
    v = view(accepted(at="2027-09-30 10:00", amount=0))
    assert v["due_provisional"] is False


def test_provisional_calendar_years_are_used_but_flagged() -> None:
    cal = SetCalendar(years={2027}, holidays={date(2027, 10, 1)}, provisional_years={2027})
    v = view(accepted(at="2027-09-30 10:00", amount=1), calendar=cal)
    assert (v["due_date"], v["due_provisional"]) == (date(2027, 10, 4), True)
    assert consult(cal, date(2027, 10, 1)) == (False, True)
    assert consult(CAL_2025, date(2025, 10, 11)) == (True, False)
    assert consult(CAL_2025, date(2024, 10, 11)) == (True, True)


# ------------------------------------------------------------------- NATURAL_DAY


def test_natural_days() -> None:
    v = view(accepted(at="2025-09-30 10:00", amount=5, unit="NATURAL_DAY"))
    assert v["due_date"] == date(2025, 10, 5)
    assert v["due_at"] == t("2025-10-05 23:59:59.999")
    v = view(
        accepted(at="2025-09-30 10:00", amount=10, unit="NATURAL_DAY"),
        task("a", "T1", "SUPPLEMENT_REQUESTED", "2025-10-09 09:00"),
        task("b", "T1", "SUPPLEMENT_RECEIVED", "2025-10-10 16:00"),
    )
    assert v["due_date"] == date(2025, 10, 12)  # 10-09 and 10-10 not counted
    assert due_by_natural_days(date(2025, 2, 27), 2, set()) == date(2025, 3, 1)


# -------------------------------------------------------------------------- HOUR


def test_hours_without_pauses() -> None:
    v = view(accepted(at="2025-10-09 09:00", amount=8, unit="HOUR"))
    assert v["due_at"] == t("2025-10-09 17:00")
    assert v["due_date"] == date(2025, 10, 9)
    v = view(accepted(at="2025-10-09 20:00", amount=8, unit="HOUR"))
    assert v["due_date"] == date(2025, 10, 10)  # 04:00 local next day
    assert v["due_at"].tzinfo == UTC


def test_hours_add_the_union_of_closed_pauses_from_acceptance_on() -> None:
    v = view(
        task("p", "T1", "SUPPLEMENT_REQUESTED", "2025-10-09 08:00"),  # before acceptance
        accepted(at="2025-10-09 09:00", amount=8, unit="HOUR"),
        task("q", "T1", "SUPPLEMENT_RECEIVED", "2025-10-09 09:30"),  # 30 min after A
        task("r", "T1", "SUSPENDED", "2025-10-09 10:00"),
        task("s", "T1", "RESUMED", "2025-10-09 12:00"),
        task("u", "T2", "SUPPLEMENT_REQUESTED", "2025-10-09 11:00", department="zjj"),
        task("v", "T2", "SUPPLEMENT_RECEIVED", "2025-10-09 13:00", department="zjj"),
    )
    # 8 h + 0.5 h + union(10-12, 11-13) = 3 h -> 17:00 + 3.5 h.
    assert v["due_at"] == t("2025-10-09 20:30")


def test_union_length() -> None:
    a = t("2025-10-09 09:00")
    iv = [(t("2025-10-09 10:00"), t("2025-10-09 11:00")),
          (t("2025-10-09 10:30"), t("2025-10-09 10:45")),
          (t("2025-10-09 08:00"), t("2025-10-09 08:30")),
          (t("2025-10-09 12:00"), t("2025-10-09 12:10"))]
    assert union_length(iv, a).total_seconds() == 70 * 60
    assert union_length([], a).total_seconds() == 0


def test_end_of_local_day() -> None:
    assert end_of_local_day(date(2025, 10, 16)).isoformat() == "2025-10-16T15:59:59.999000+00:00"


# ---------------------------------------------------------------------- SLA status


def test_sla_of_closed_cases() -> None:
    base = [accepted(at="2025-09-30 10:00", amount=5, tasks=[("T1", "scjgj", "x")])]
    v = view(*base, task("a", "T1", "APPROVED", "2025-10-14 23:59:59.999"))
    assert sla_status(v, t("2030-01-01 00:00"), CAL_2025) == ON_TIME
    v = view(*base, task("a", "T1", "APPROVED", "2025-10-15 00:00"))
    assert sla_status(v, t("2025-10-15 00:00"), CAL_2025) == LATE
    v = view(*base, withdrawn("w", "2025-10-20 00:00"))
    assert sla_status(v, t("2025-10-21 00:00"), CAL_2025) == LATE


@pytest.mark.parametrize(("now", "expected"), [
    ("2025-10-09 09:00", ON_TRACK),   # due 10-14; next working day 10-10
    ("2025-10-10 09:00", ON_TRACK),   # next working day is Sat 10-11 (make-up)
    ("2025-10-11 09:00", ON_TRACK),   # next working day Mon 10-13
    ("2025-10-13 09:00", DUE_SOON),   # due the next working day
    ("2025-10-14 23:59", DUE_SOON),   # due today
    ("2025-10-15 00:00", OVERDUE),
])
def test_sla_of_open_cases(now: str, expected: str) -> None:
    v = view(accepted(at="2025-09-30 10:00", amount=5))
    assert v["due_date"] == date(2025, 10, 14)
    assert sla_status(v, t(now), CAL_2025) == expected


def test_due_soon_covers_rest_days_before_the_next_working_day() -> None:
    # Natural-day case due Sunday 10-12, seen Friday 10-10: next working day is Sat 10-11
    # (make-up), so Sunday is after it: on track. Seen Saturday: next is Monday: due soon.
    v = view(accepted(at="2025-10-07 10:00", amount=5, unit="NATURAL_DAY"))
    assert v["due_date"] == date(2025, 10, 12)
    assert sla_status(v, t("2025-10-10 10:00"), CAL_2025) == ON_TRACK
    assert sla_status(v, t("2025-10-11 10:00"), CAL_2025) == DUE_SOON


def test_sla_paused_and_undefined() -> None:
    v = view(accepted(at="2025-09-30 10:00", amount=5),
             task("a", "T1", "SUSPENDED", "2025-10-09 09:00"))
    assert sla_status(v, t("2026-01-01 00:00"), CAL_2025) == PAUSED
    assert sla_status(view(task("a", "T1", "RECEIVED", "2025-10-09 09:00")),
                      t("2025-10-10 00:00"), CAL_2025) is None
    # Withdrawn while a pause is open: no deadline to judge against.
    v = view(accepted(at="2025-09-30 10:00", amount=5),
             task("a", "T1", "SUSPENDED", "2025-10-09 09:00"),
             withdrawn("w", "2025-10-10 00:00"))
    assert v["due_at"] is None
    assert sla_status(v, t("2025-10-11 00:00"), CAL_2025) is None


def test_next_working_day() -> None:
    assert next_working_day(date(2025, 9, 30), CAL_2025) == date(2025, 10, 9)
    assert next_working_day(date(2025, 10, 10), CAL_2025) == date(2025, 10, 11)
    assert next_working_day(date(2027, 1, 1), CAL_2025) == date(2027, 1, 4)


# --------------------------------------------------------------------- working days left


def test_working_days_left_counts_after_today_up_to_the_due_date() -> None:
    # 2025-09-30 (Tue): 10-01..10-08 holiday, Saturday 10-11 a make-up working day.
    assert working_days_left(date(2025, 10, 14), date(2025, 9, 30), CAL_2025) == 5
    assert working_days_left(date(2025, 10, 14), date(2025, 10, 11), CAL_2025) == 2
    assert working_days_left(date(2025, 10, 14), date(2025, 10, 13), CAL_2025) == 1
    assert working_days_left(date(2025, 10, 14), date(2025, 10, 14), CAL_2025) == 0
    # overdue: the working days after the due date, up to today
    assert working_days_left(date(2025, 9, 30), date(2025, 10, 9), CAL_2025) == -1
    assert working_days_left(date(2025, 9, 30), date(2025, 10, 8), CAL_2025) == 0
    # a due date on a rest day, seen the working day before: nothing left but not late
    assert working_days_left(date(2025, 10, 5), date(2025, 9, 30), CAL_2025) == 0
    # an unknown calendar counts Monday to Friday
    assert working_days_left(date(2031, 1, 13), date(2031, 1, 10), WeekdayCalendar()) == 1
