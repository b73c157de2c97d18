"""Order and duplication never change a case's state (domain.md section 3).

The generated events include TaskUpdated events out of role (from another department
than the one their task belongs to), and CaseAccepted events that declare the same task
for different departments, so that whether an update is out of role depends on which
acceptance record is in the set: an update in role when it arrives becomes out of role
when an earlier CaseAccepted arrives after it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.domain.case import CaseState, fold, project
from onewindow.domain.clock import to_ms
from onewindow.domain.events import RANK_STATUS, STATUS_RANK, TERMINAL_STATUSES

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
            # Usually the usual department, sometimes another: two acceptances may then
            # give one task two owners, and which is the record decides.
            owners = [draw(st.sampled_from([DEPTS[k], DEPTS[k], *DEPTS]))
                      for k in range(ntasks)]
            events.append(accepted(
                eid, at, amount=draw(st.integers(min_value=0, max_value=20)), unit=unit,
                tasks=[(TASK_IDS[k], owners[k], f"task {k}") for k in range(ntasks)],
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


# ------------------------------------------------- who may change a task, from the set


def _task_key(ev: dict[str, Any]) -> tuple[int, int, str]:
    return (to_ms(ev["occurred_at"]), STATUS_RANK[ev["status"]], ev["event_id"])


def _reference(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Section 3 read literally from the set of events: the task owners, the statuses,
    closed_at and the out-of-role updates."""
    accs = [e for e in events if e["type"] == "CaseAccepted"]
    record = min(accs, key=lambda e: (to_ms(e["occurred_at"]), e["event_id"]), default=None)
    declared: dict[str, str] = {}
    for tk in (record or {}).get("tasks", []):
        declared.setdefault(tk["task_id"], tk["department"])
    updates: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["type"] == "TaskUpdated":
            updates.setdefault(e["task_id"], []).append(e)
    owners, statuses, finals, out_of_role = {}, {}, [], set()
    for task_id in declared.keys() | updates.keys():
        ordered = sorted(updates.get(task_id, []), key=_task_key)
        owner = declared.get(task_id) or ordered[0]["department"]
        mine = [e for e in ordered if e["department"] == owner]
        out_of_role |= {e["event_id"] for e in ordered if e["department"] != owner}
        owners[task_id] = owner
        statuses[task_id] = mine[-1]["status"] if mine else "PENDING"
        if mine:
            finals.append(mine[-1]["occurred_at"])
    withdrawals = [e["occurred_at"] for e in events if e["type"] == "CaseWithdrawn"]
    if withdrawals:
        closed_at = min(withdrawals)
    elif record is not None and statuses and all(
            s in TERMINAL_STATUSES for s in statuses.values()):
        closed_at = max(finals)
    else:
        closed_at = None
    return {"owners": owners, "statuses": statuses, "closed_at": closed_at,
            "out_of_role": out_of_role}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=case_events(), data=st.data())
def test_out_of_role_updates_follow_the_rule_of_the_set(events: list[dict[str, Any]],
                                                         data: st.DataObject) -> None:
    arrival = data.draw(st.permutations(events))
    state = CaseState()
    marks = {}
    for ev in arrival:
        state.apply(ev)
        marks[ev["event_id"]] = state.is_out_of_role(ev)
    ref = _reference(events)
    view = project(state, CAL_2025)
    assert {tk["task_id"]: tk["status"] for tk in view["tasks"]} == ref["statuses"]
    assert {tk["task_id"]: tk["department"] for tk in view["tasks"]} == ref["owners"]
    assert {tid: state.task_owner(tid) for tid in ref["owners"]} == ref["owners"]
    assert view["closed_at"] == (None if ref["closed_at"] is None
                                 else ref["closed_at"].astimezone(view["closed_at"].tzinfo))
    assert {e["event_id"] for e in events if state.is_out_of_role(e)} == ref["out_of_role"]
    # The mark as applied can differ from the final one only when a CaseAccepted (a new
    # record) or an earlier update of an undeclared task (a new first event) came after.
    for i, ev in enumerate(arrival):
        if marks[ev["event_id"]] != (ev["event_id"] in ref["out_of_role"]):
            later = arrival[i + 1:]
            assert any(e["type"] == "CaseAccepted" or (
                e["type"] == "TaskUpdated" and e["task_id"] == ev["task_id"]) for e in later)
