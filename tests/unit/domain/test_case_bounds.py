"""Bounds per case (issue 13; docs/state-rules.md "Bounds per case"): the fold refuses a
new event past MAX_CASE_EVENTS, MAX_CASE_TASKS or MAX_CASE_FOLD_BYTES (TOO_LARGE), so no
sequence of valid events makes the fold state larger than MAX_FOLD_STATE_BYTES; the state
stays a pure function of the set of applied events."""

from __future__ import annotations

import functools
import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.domain.case import CaseState, Outcome, fold, project, settle
from onewindow.domain.events import RANK_STATUS
from onewindow.domain.limits import (
    MAX_ACCEPTANCE_BYTES,
    MAX_CASE_EVENTS,
    MAX_CASE_FOLD_BYTES,
    MAX_CASE_TASKS,
    MAX_CLOSED_WITH_BYTES,
    MAX_CODE_CHARS,
    MAX_FOLD_STATE_BYTES,
    MAX_TASKS,
    MAX_TEXT_CHARS,
    event_oversize,
)

from .helpers import CAL_2025, accepted, material, t, task, withdrawn

BASE = t("2025-09-29 08:00")
STATUSES = [s for s in RANK_STATUS if s != "PENDING"]


def _at(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M")


def _legal(ev: dict[str, Any]) -> dict[str, Any]:
    assert event_oversize(ev, ev["type"]) is None, ev["type"]
    return ev


def _rest(state: CaseState) -> int:
    """What the bytes bound measures, from scratch: the serialised state with the
    acceptance record null and without the deadline a closed case keeps."""
    again = CaseState.from_bytes(state.to_bytes())
    again.acc = again.acc_key = again.closed_with = None
    return len(again.to_bytes())


def test_the_limits_leave_room_under_a_kafka_record() -> None:
    assert MAX_FOLD_STATE_BYTES == (MAX_ACCEPTANCE_BYTES + MAX_CASE_FOLD_BYTES
                                    + MAX_CLOSED_WITH_BYTES)
    assert MAX_FOLD_STATE_BYTES + 64 * 1024 < 1_000_000


def test_the_deadline_a_closed_case_keeps_fits_its_reserved_room() -> None:
    """The largest ``closed_with``: a due_at near the last year a datetime holds (the
    most digits), provisional; it is outside the bytes bound, so a case at its bound that
    closes still fits MAX_FOLD_STATE_BYTES."""
    state = fold([accepted("a", "9980-01-04 10:00", amount=3_660, tasks=[("T1", "scjgj", "")]),
                  task("e", "T1", "APPROVED", "9980-01-05 10:00")], CaseState())
    before = len(state.to_bytes())
    # a year the calendar does not know: Monday to Friday, provisional
    view = settle(state, CAL_2025)
    assert view["due_provisional"] is True and view["due_date"].year == 9994
    assert state.closed_with is not None
    assert 40 < len(state.to_bytes()) - before <= MAX_CLOSED_WITH_BYTES
    assert state._rest_bytes() == _rest(state)


def test_events_past_the_limit_are_refused_and_change_nothing() -> None:
    state = CaseState("C-1")
    assert state.apply(accepted()) is Outcome.APPLIED
    for i in range(1, MAX_CASE_EVENTS):
        assert state.apply(task(f"e{i}", f"T{i % 40}", "IN_REVIEW", _at(i))) \
            is Outcome.APPLIED
    assert state.version == MAX_CASE_EVENTS
    before = state.to_bytes()
    one_more = task("e-next", "T1", "APPROVED", _at(99_999))
    assert state.apply(one_more) is Outcome.TOO_LARGE
    assert state.to_bytes() == before
    detail = state.limit_breach(one_more)
    assert detail == (f"case 'C-1' has reached {MAX_CASE_EVENTS} applied events, the most "
                      f"one case may hold")
    # every type counts, and whatever arrives it is refused every time it does
    for ev in (withdrawn("w1", _at(5)), material("m1", _at(5)), accepted("acc-0", _at(0))):
        assert state.apply(ev) is Outcome.TOO_LARGE
    assert state.apply(one_more) is Outcome.TOO_LARGE
    # an event applied before is still a duplicate (a replay re-emits its outputs), and a
    # conflicting one still a conflict
    assert state.apply(task("e7", "T7", "IN_REVIEW", _at(7))) is Outcome.DUPLICATE
    assert state.apply(task("e7", "T7", "APPROVED", _at(7))) is Outcome.EVENT_ID_CONFLICT
    assert state.limit_breach(task("e7", "T7", "IN_REVIEW", _at(7))) is None
    assert state.to_bytes() == before


def test_tasks_with_updates_are_bounded_but_known_tasks_still_move() -> None:
    state = CaseState("C-1")
    for i in range(MAX_CASE_TASKS):
        assert state.apply(task(f"e{i}", f"X{i}", "RECEIVED", _at(i))) is Outcome.APPLIED
    new_task = task("e-new", "X-new", "RECEIVED", _at(1))
    assert state.apply(new_task) is Outcome.TOO_LARGE
    assert state.limit_breach(new_task) == (
        f"case 'C-1' has reached {MAX_CASE_TASKS} tasks with updates; task 'X-new' would "
        f"be one more")
    # an update of a task the case has, and any other type, still applies
    assert state.apply(task("e-more", "X3", "APPROVED", _at(600))) is Outcome.APPLIED
    # the acceptance record may declare up to MAX_TASKS more, without updates
    declared = [(f"D{k}", "scjgj", "") for k in range(MAX_TASKS)]
    assert state.apply(accepted(tasks=declared)) is Outcome.APPLIED
    view = project(state, CAL_2025)
    assert len(view["tasks"]) == MAX_CASE_TASKS + MAX_TASKS
    assert view["tasks"][[x["task_id"] for x in view["tasks"]].index("X3")]["status"] \
        == "APPROVED"
    # an update of a declared task without updates is one more task with updates
    assert state.apply(task("e-d", "D0", "RECEIVED", _at(700))) is Outcome.TOO_LARGE


def _long_update(i: int, *, task_id: str | None = None) -> dict[str, Any]:
    """A TaskUpdated of the largest growth: ids JSON escapes to 12 bytes a character."""
    return _legal(task("😀" * 60 + f"{i:04d}", task_id or ("😀" * 250 + f"{i:06d}"),
                       "RECEIVED", _at(i)))


def test_the_bytes_bound_refuses_what_would_pass_it() -> None:
    state = CaseState("C-1")
    i = 0
    while (outcome := state.apply(_long_update(i))) is Outcome.APPLIED:
        assert _rest(state) <= MAX_CASE_FOLD_BYTES
        i += 1
    assert outcome is Outcome.TOO_LARGE
    assert 50 < i < MAX_CASE_TASKS  # bytes, not the count, stopped it
    detail = state.limit_breach(_long_update(i))
    assert detail is not None and detail.startswith("case 'C-1' has reached its size")
    assert f"over {MAX_CASE_FOLD_BYTES}" in detail
    # a small event still fits where a large one does not
    assert state.apply(task("s", "T", "RECEIVED", _at(1))) is Outcome.APPLIED
    # the acceptance record has its own room: the largest one still applies
    big = largest_acceptance()
    assert state.apply(big) is Outcome.APPLIED
    assert len(state.to_bytes()) <= MAX_FOLD_STATE_BYTES


@functools.cache
def _largest_acceptance(char: str) -> dict[str, Any]:
    return largest_acceptance(char)


def largest_acceptance(char: str = "\0", event_id: str = "acc-big99",
                       at: str = "2025-09-30 10:00", *,
                       applicant: dict[str, Any] | None = None) -> dict[str, Any]:
    """A legal CaseAccepted as large as the limits allow in the fold state: every name
    as long as allowed, of a character JSON escapes (to 6 or 12 bytes), 100 tasks with
    the longest ids, the task names as long as MAX_JSON_BYTES lets them be.
    ``applicant``: fields of the applicant to set."""
    code = char * (MAX_CODE_CHARS - 4)

    def make(n: int) -> dict[str, Any]:
        ev = accepted(event_id, at, service_name=char * MAX_TEXT_CHARS,
                      service_code="S" + code, window_id="W" + code,
                      tasks=[(f"T{k:03d}{code}", "scjgj", char * n) for k in range(MAX_TASKS)])
        ev["applicant"] = dict(ev["applicant"], name=char * MAX_TEXT_CHARS, **(applicant or {}))
        return ev

    lo, hi = 0, MAX_TEXT_CHARS  # the longest task name that is still legal
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if event_oversize(make(mid), "CaseAccepted") is None \
            else (lo, mid - 1)
    return _legal(make(lo))


@pytest.mark.parametrize("char", ["\0", "😀", '"'])
def test_the_largest_acceptance_fits_its_reserved_room(char: str) -> None:
    state = CaseState("C-1")
    assert state.apply(largest_acceptance(char)) is Outcome.APPLIED
    acc_bytes = len(state.to_bytes()) - _rest(state) + len("nullnull")
    assert 400_000 < acc_bytes <= MAX_ACCEPTANCE_BYTES


# --------------------------------------------------------------------- properties

_ID_CHARS = st.sampled_from(["a", "\0", "😀", "名", '"', "\\", "\x7f", "/"])


@st.composite
def large_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A case's events, most of them as large as their limits allow (so the bounds are
    reached within a few hundred events), with a few small ones and the largest
    acceptance records, in any order."""
    events: list[dict[str, Any]] = []
    n = draw(st.integers(min_value=150, max_value=400))
    seed = draw(st.integers(0, 2**32 - 1))
    rnd = random.Random(seed)
    chars = [draw(_ID_CHARS) for _ in range(3)]
    for i in range(n):
        kind = rnd.choices(["big", "small", "acc", "wd", "mat"], [80, 12, 2, 2, 4])[0]
        c = rnd.choice(chars)
        eid = c * rnd.randint(50, 58) + f"{i:06d}"
        at = _at(rnd.randint(0, 90 * 24 * 60))
        if kind == "big":
            tid = c * rnd.randint(200, 250) + f"{rnd.randint(0, 300):06d}"
            # codes of one length: which department a task's first event has then changes
            # no byte count, so the applied set folds again in any order under the bound
            events.append(task(eid, tid, rnd.choice(STATUSES), at,
                               department=rnd.choice(["zjj", "gaj", "wjw"])))
        elif kind == "small":
            events.append(task(f"s{i}", f"T{rnd.randint(0, 5)}", rnd.choice(STATUSES), at))
        elif kind == "acc":
            events.append(dict(_largest_acceptance(c), event_id=f"acc-{i}",
                               occurred_at=t(at)))
        elif kind == "wd":
            events.append(withdrawn(eid, at))
        else:
            events.append(material(eid, at, material_id=f"m{i}"))
    return events


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(events=large_events())
def test_no_sequence_of_valid_events_makes_the_state_too_large(
        events: list[dict[str, Any]]) -> None:
    """Every state on the way is under MAX_FOLD_STATE_BYTES, the size the bytes bound
    keeps (exact, not an estimate) matches the serialised state, settled now and then as
    the worker settles it (a closed case records its deadline, outside the bound), and
    the applied set folded again in another order gives the same bytes."""
    state = CaseState()
    applied: list[dict[str, Any]] = []
    for i, ev in enumerate(events):
        outcome = state.apply(ev)
        assert outcome in (Outcome.APPLIED, Outcome.TOO_LARGE, Outcome.DUPLICATE)
        if outcome is Outcome.APPLIED:
            applied.append(ev)
        if i % 5 == 0:
            settle(state, CAL_2025)
            assert len(state.to_bytes()) <= MAX_FOLD_STATE_BYTES
        if i % 7 == 0:
            assert state._rest_bytes() == _rest(state)
    assert state._rest_bytes() == _rest(state)
    settle(state, CAL_2025)
    assert state._rest_bytes() == _rest(state)
    data = state.to_bytes()
    assert len(data) <= MAX_FOLD_STATE_BYTES
    assert state.version <= MAX_CASE_EVENTS and len(state.tasks) <= MAX_CASE_TASKS
    again = fold(reversed(applied), CaseState())
    settle(again, CAL_2025)
    assert again.to_bytes() == data


def test_a_state_read_back_measures_the_same() -> None:
    state = fold([accepted(), task("e1", "T1", "RECEIVED", _at(1)), withdrawn("w", _at(2)),
                  task("e0", "T1", "RECEIVED", _at(0), department="zjj")], CaseState())
    again = CaseState.from_bytes(state.to_bytes())
    assert again._rest_bytes() == state._rest_bytes() == _rest(state)
