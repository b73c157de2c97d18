"""Closed cases keep the deadline they closed with (domain.md section 4), also when one of
their own events arrives again after the calendar changed: `onewindow.domain.case.settle`
records it in the fold state, `project` uses it while the case stays closed and its
deadline's inputs (acceptance, promise, paused dates) are the same; the calendar is a
parameter of the fold (docs/state-rules.md)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.domain.calendar import SetCalendar
from onewindow.domain.case import CaseState, Outcome, fold, project, settle
from onewindow.domain.deadline import LATE, ON_TIME, deadline_key, sla_status
from onewindow.errors import OneWindowError

from .helpers import CAL_2025, accepted, material, task, withdrawn
from .test_case_properties import case_events

#: the calendar the case closed under: Sunday 2025-12-28 a rest day
OLD = SetCalendar(years=[2025, 2026], holidays=[date(2025, 10, 1), date(2026, 1, 1)])
#: then a notice makes it a make-up working day
NEW = SetCalendar(years=[2025, 2026], holidays=[date(2025, 10, 1), date(2026, 1, 1)],
                  workdays=[date(2025, 12, 28)])
NOW = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)
MOVED = ("due_date", "due_at", "due_provisional")


def _closed(case_id: str = "C-1") -> list[dict[str, Any]]:
    """Accepted Fri 12-26, 1 working day: due Mon 12-29 under OLD, Sun 12-28 under NEW.
    Both tasks approved Mon 12-29 09:00: ON_TIME under OLD, LATE under NEW."""
    return [accepted("acc", "2025-12-26 10:00", amount=1, case_id=case_id),
            task("t1", "T1", "APPROVED", "2025-12-29 09:00", case_id=case_id),
            task("t2", "T2", "APPROVED", "2025-12-29 09:00", department="zjj",
                 case_id=case_id)]


def _deadline(v: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(v[k] for k in MOVED)


def test_a_late_out_of_role_update_keeps_the_deadline_the_case_closed_with() -> None:
    closed = fold(_closed())
    first = settle(closed, OLD)  # the worker wrote the state when it closed
    assert first["status"] == "APPROVED" and first["due_date"] == date(2025, 12, 29)
    assert sla_status(first, NOW, OLD) == ON_TIME
    assert project(closed, NEW)["due_date"] == date(2025, 12, 29)  # a calendar check
    # the calendar changes; another department updates T1 late (out of role)
    late = task("x", "T1", "IN_REVIEW", "2025-12-30 10:00", department="zjj")
    assert closed.apply(late) is Outcome.APPLIED and closed.is_out_of_role(late)
    again = settle(closed, NEW)
    assert again["version"] == 4 and again["status"] == "APPROVED"
    assert _deadline(again) == _deadline(first)
    assert sla_status(again, NOW, NEW) == ON_TIME
    # a later CaseAccepted (not the record), a material, a duplicate: kept as well
    for ev in (accepted("acc-2", "2025-12-27 10:00", amount=9), material("m", "2025-12-30 10:00"),
               _closed()[1]):
        closed.apply(ev)
        assert _deadline(settle(closed, NEW)) == _deadline(first)
    # stored and read back (the worker's table)
    assert _deadline(project(CaseState.from_bytes(closed.to_bytes()), NEW)) == _deadline(first)
    # without the record the same set under the new calendar would have moved
    live = fold([*_closed(), late])
    assert project(live, NEW)["due_date"] == date(2025, 12, 28)
    assert sla_status(project(live, NEW), NOW, NEW) == LATE


def test_an_open_case_moves_with_the_calendar() -> None:
    state = fold(_closed()[:2])  # T2 still pending
    v = settle(state, OLD)
    assert v["closed_at"] is None and v["due_date"] == date(2025, 12, 29)
    assert state.closed_with is None
    state.apply(task("x", "T1", "IN_REVIEW", "2025-12-30 10:00", department="zjj"))
    assert settle(state, NEW)["due_date"] == date(2025, 12, 28)
    assert state.closed_with is None
    # it closes under NEW: it keeps NEW's deadline from then on
    state.apply(_closed()[2])
    assert settle(state, NEW)["due_date"] == date(2025, 12, 28)
    assert project(state, OLD)["due_date"] == date(2025, 12, 28)


def test_a_late_event_that_reopens_the_case_follows_the_calendar_again() -> None:
    """Section 3 lets a late event re-open a closed case: a later non-terminal update of
    a task, an update creating a task, an earlier CaseAccepted declaring another task."""
    reopeners = [
        task("r", "T1", "RESUMED", "2025-12-30 10:00"),  # greater than APPROVED in task order
        task("n", "T9", "RECEIVED", "2025-12-30 10:00", department="gaj"),
        accepted("acc-0", "2025-12-26 09:00", amount=1,
                 tasks=[("T1", "scjgj", ""), ("T2", "zjj", ""), ("T3", "gaj", "")]),
    ]
    for ev in reopeners:
        state = fold(_closed())
        settle(state, OLD)
        assert state.closed_with is not None
        state.apply(ev)
        v = settle(state, NEW)
        assert v["closed_at"] is None, ev["event_id"]
        assert v["due_date"] == date(2025, 12, 28) and state.closed_with is None


def test_a_late_event_that_changes_the_paused_dates_recomputes_the_deadline() -> None:
    """What the deadline is computed from besides the calendar changed: the kept one no
    longer applies; it is computed anew, with the calendar of that moment."""
    state = fold(_closed())
    settle(state, OLD)
    kept = list(state.closed_with or [])
    for ev in (task("p1", "T1", "SUPPLEMENT_REQUESTED", "2025-12-27 09:00"),
               task("p2", "T1", "SUPPLEMENT_RECEIVED", "2025-12-27 15:00")):
        state.apply(ev)
    v = settle(state, NEW)
    # 12-27 paused: the one working day after 12-26 is 12-28 under NEW (12-29 under OLD)
    assert v["closed_at"] is not None and v["due_date"] == date(2025, 12, 28)
    assert state.closed_with != kept
    assert project(state, OLD)["due_date"] == date(2025, 12, 28)  # kept from now on
    # a pause that touches no new date keeps the key, and so the kept deadline
    state.apply(task("p3", "T1", "SUPPLEMENT_REQUESTED", "2025-12-27 10:00"))
    state.apply(task("p4", "T1", "SUPPLEMENT_RECEIVED", "2025-12-27 11:00"))
    assert settle(state, OLD)["due_date"] == date(2025, 12, 28)


def test_only_closed_working_day_cases_record_a_deadline() -> None:
    """Natural days and hours consult no calendar: nothing to keep; a case withdrawn
    before acceptance has no deadline; one withdrawn while paused keeps its nulls."""
    for unit in ("NATURAL_DAY", "HOUR"):
        state = fold([accepted("acc", "2025-12-26 10:00", amount=1, unit=unit),
                      withdrawn("w", "2025-12-29 09:00")])
        assert settle(state, OLD)["closed_at"] is not None and state.closed_with is None
        assert deadline_key(datetime(2025, 12, 26, tzinfo=UTC), 1, unit, [], []) is None
    state = fold([withdrawn("w", "2025-12-29 09:00")])
    assert settle(state, OLD)["due_date"] is None and state.closed_with is None
    paused = fold([accepted("acc", "2025-12-26 10:00", amount=1),
                   task("p", "T1", "SUPPLEMENT_REQUESTED", "2025-12-26 11:00"),
                   withdrawn("w", "2025-12-29 09:00")])
    v = settle(paused, OLD)
    assert (v["due_date"], v["due_at"], v["paused_since"] is not None) == (None, None, True)
    assert paused.closed_with is not None and paused.closed_with[0] is None
    assert _deadline(project(paused, NEW)) == _deadline(v)


def test_serialised_states_with_and_without_the_record() -> None:
    """The record is an eighth element, written only when set: a state that is not closed
    keeps the bytes it always had, and a state stored before the record existed (seven
    elements) loads and is projected live."""
    open_state = fold(_closed()[:2])
    before = open_state.to_bytes()
    settle(open_state, OLD)
    assert open_state.to_bytes() == before and len(json.loads(before)) == 7
    closed = fold(_closed())
    legacy = closed.to_bytes()  # as a worker before this change stored it
    settle(closed, OLD)
    doc = json.loads(closed.to_bytes())
    assert len(doc) == 8 and doc[7] == closed.closed_with and doc[:7] == json.loads(legacy)
    again = CaseState.from_bytes(closed.to_bytes())
    assert again == closed and again.to_bytes() == closed.to_bytes()
    old = CaseState.from_bytes(legacy)
    assert old.closed_with is None and old != closed
    assert project(old, NEW)["due_date"] == date(2025, 12, 28)  # nothing kept: live
    for bad in (json.dumps([*doc, None]), json.dumps(doc[:6])):
        with pytest.raises(OneWindowError):
            CaseState.from_bytes(bad)


# ---------------------------------------------------------------------- property


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=case_events(), data=st.data())
def test_with_one_calendar_settling_changes_nothing_and_order_does_not_matter(
        events: list[dict[str, Any]], data: st.DataObject) -> None:
    """For a fixed calendar the state is still a function of the set of applied events:
    settled after any of the events, in any order, with duplicates, it has the bytes of
    the set folded and settled once, and the view of the set projected live."""
    reference = fold(events)
    live = project(reference, CAL_2025)
    settle(reference, CAL_2025)
    ref_bytes = reference.to_bytes()
    assert project(reference, CAL_2025) == live

    extra = data.draw(st.lists(st.sampled_from(events), max_size=8)) if events else []
    replay = data.draw(st.permutations(events + extra))
    when = data.draw(st.lists(st.booleans(), min_size=len(replay), max_size=len(replay)))
    state = CaseState()
    for ev, now in zip(replay, when, strict=True):
        state.apply(ev)
        if now:
            settle(state, CAL_2025)
            state = CaseState.from_bytes(state.to_bytes())  # as stored between batches
    assert settle(state, CAL_2025) == live
    assert state.to_bytes() == ref_bytes
