"""Order and duplication never change a case's state (domain.md section 3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.domain.case import CaseState, fold, project
from onewindow.domain.events import RANK_STATUS

from .helpers import CAL_2025, EXAMPLES, accepted, material, read_jsonl, t, task, withdrawn

BASE = t("2025-09-29 08:00")
STATUSES = [s for s in RANK_STATUS if s != "PENDING"]
TASK_IDS = ["T1", "T2", "T3"]
DEPTS = ["scjgj", "zjj", "gaj"]

# Times on a coarse grid so that ties (same instant) are frequent.
minutes = st.integers(min_value=0, max_value=30 * 24 * 4).map(lambda q: q * 15)


@st.composite
def case_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    n = draw(st.integers(min_value=0, max_value=25))
    for i in range(n):
        at = (BASE + timedelta(minutes=draw(minutes))).strftime("%Y-%m-%d %H:%M")
        kind = draw(st.sampled_from(["task"] * 6 + ["acc", "acc", "wd", "mat"]))
        eid = f"e{i:03d}"
        if kind == "task":
            tid = draw(st.sampled_from(TASK_IDS))
            events.append(task(eid, tid, draw(st.sampled_from(STATUSES)), at,
                               department=draw(st.sampled_from(DEPTS))))
        elif kind == "acc":
            ntasks = draw(st.integers(min_value=0, max_value=3))
            unit = draw(st.sampled_from(["WORKING_DAY", "NATURAL_DAY", "HOUR"]))
            events.append(accepted(
                eid, at, amount=draw(st.integers(min_value=0, max_value=20)), unit=unit,
                tasks=[(TASK_IDS[k], DEPTS[k], f"task {k}") for k in range(ntasks)],
                service_code=f"S-{i}"))
        elif kind == "wd":
            events.append(withdrawn(eid, at))
        else:
            events.append(material(eid, at, material_id=f"m{i}"))
    return events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=case_events(), data=st.data())
def test_permutations_and_duplicates_give_the_same_state(events: list[dict[str, Any]],
                                                         data: st.DataObject) -> None:
    reference = fold(events)
    ref_view = project(reference, CAL_2025)
    ref_bytes = reference.to_bytes()
    assert ref_view["version"] == len(events)

    shuffled = data.draw(st.permutations(events))
    extra = data.draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
    replay = data.draw(st.permutations(shuffled + extra))
    state = CaseState()
    for ev in replay:
        state.apply(ev)
    assert state.to_bytes() == ref_bytes
    assert project(state, CAL_2025) == ref_view

    # Split the replay anywhere, serialise in between, keep folding.
    cut = data.draw(st.integers(min_value=0, max_value=len(replay)))
    first = fold(replay[:cut])
    restored = CaseState.from_bytes(first.to_bytes())
    assert restored == first
    fold(replay[cut:], restored)
    assert restored.to_bytes() == ref_bytes
    assert project(restored, CAL_2025) == ref_view


@settings(max_examples=100, deadline=None)
@given(order=st.permutations(list(range(9))), dups=st.lists(st.integers(0, 8), max_size=9))
def test_the_worked_example_in_any_order(order: list[int], dups: list[int]) -> None:
    events = read_jsonl(EXAMPLES / "restaurant-case.jsonl")
    expected = project(fold(events), CAL_2025)
    state = fold([events[i] for i in order + dups])
    state = CaseState.from_bytes(state.to_bytes())
    assert project(state, CAL_2025) == expected
