from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from onewindow.domain.case import (
    VIEW_KEYS,
    CaseMismatchError,
    CaseState,
    Outcome,
    event_fingerprint,
    fold,
    project,
)
from onewindow.errors import OneWindowError

from .helpers import CAL_2025, accepted, certificate, material, t, task, withdrawn


def view(*events: dict[str, Any]) -> dict[str, Any]:
    return project(fold(events), CAL_2025)


def statuses(v: dict[str, Any]) -> dict[str, str]:
    return {tk["task_id"]: tk["status"] for tk in v["tasks"]}


# ------------------------------------------------------------------ the view


def test_view_has_exactly_the_contract_keys() -> None:
    v = view(accepted())
    assert tuple(v) == VIEW_KEYS
    assert v["applicant"] == {"kind": "ORGANIZATION", "id_type": "USCC",
                              "id_number": "91440101MA5CXYW123", "name": "广州花城餐饮管理有限公司"}
    assert v["promise"] == {"amount": 5, "unit": "WORKING_DAY"}
    assert v["accepted_at"] == datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
    assert v["accepted_at"].tzinfo is UTC
    assert (v["service_code"], v["service_name"], v["case_kind"], v["channel"],
            v["window_id"]) == ("S-1", "开办餐饮店", "JOINT", "COUNTER", "W07")
    assert v["tasks"] == [
        {"task_id": "T1", "department": "scjgj", "name": "食品经营许可", "status": "PENDING",
         "updated_at": None},
        {"task_id": "T2", "department": "zjj", "name": "消防安全检查", "status": "PENDING",
         "updated_at": None},
    ]


def test_empty_state() -> None:
    v = project(CaseState(), CAL_2025)
    assert v["status"] == "PENDING_ACCEPTANCE" and v["version"] == 0 and v["tasks"] == []
    assert all(v[k] is None for k in VIEW_KEYS
               if k not in ("status", "version", "tasks", "due_provisional"))


# ------------------------------------------------------------ case status rules


def test_rule1_withdrawn_wins_even_before_acceptance() -> None:
    v = view(withdrawn("w1", "2025-10-02 09:00"))
    assert v["status"] == "WITHDRAWN" and v["closed_at"] == t("2025-10-02 09:00")
    v = view(accepted(), task("a", "T1", "APPROVED", "2025-10-09 10:00"),
             task("b", "T2", "APPROVED", "2025-10-09 11:00", department="zjj"),
             withdrawn("w2", "2025-10-12 09:00"), withdrawn("w1", "2025-10-10 09:00"))
    assert v["status"] == "WITHDRAWN"
    assert v["closed_at"] == t("2025-10-10 09:00")  # the earliest CaseWithdrawn


def test_rule2_pending_acceptance_keeps_early_events() -> None:
    early = [task("a", "T1", "RECEIVED", "2025-09-30 11:00"),
             task("b", "T9", "IN_REVIEW", "2025-09-30 12:00", department="gaj"),
             material()]
    v = view(*early)
    assert v["status"] == "PENDING_ACCEPTANCE"
    assert v["version"] == 3
    assert v["accepted_at"] is None and v["due_date"] is None and v["closed_at"] is None
    assert statuses(v) == {"T1": "RECEIVED", "T9": "IN_REVIEW"}
    v = view(*early, accepted())
    assert v["status"] == "IN_PROGRESS" and v["version"] == 4
    assert statuses(v) == {"T1": "RECEIVED", "T2": "PENDING", "T9": "IN_REVIEW"}


def test_rule3_accepted_without_tasks() -> None:
    v = view(accepted(tasks=[]))
    assert v["status"] == "ACCEPTED" and v["tasks"] == [] and v["closed_at"] is None


@pytest.mark.parametrize(("finals", "expected"), [
    (("APPROVED", "APPROVED"), "APPROVED"),
    (("REJECTED", "REJECTED"), "REJECTED"),
    (("APPROVED", "REJECTED"), "PARTIALLY_APPROVED"),
    (("APPROVED", "WITHDRAWN"), "APPROVED"),
    (("REJECTED", "WITHDRAWN"), "REJECTED"),
    (("WITHDRAWN", "WITHDRAWN"), "WITHDRAWN"),
])
def test_rule4_every_task_terminal(finals: tuple[str, str], expected: str) -> None:
    v = view(accepted(),
             task("a", "T1", finals[0], "2025-10-13 10:00"),
             task("b", "T2", finals[1], "2025-10-15 15:20", department="zjj"))
    assert v["status"] == expected
    assert v["closed_at"] == t("2025-10-15 15:20")


def test_rule4_partially_with_three_tasks() -> None:
    tasks = [("T1", "scjgj", "a"), ("T2", "zjj", "b"), ("T3", "gaj", "c")]
    v = view(accepted(tasks=tasks),
             task("a", "T1", "APPROVED", "2025-10-13 10:00"),
             task("b", "T2", "REJECTED", "2025-10-13 11:00", department="zjj"),
             task("c", "T3", "WITHDRAWN", "2025-10-13 09:00", department="gaj"))
    assert v["status"] == "PARTIALLY_APPROVED"
    assert v["closed_at"] == t("2025-10-13 11:00")


def test_closed_at_is_the_greatest_final_event_not_the_greatest_event() -> None:
    # T1 was approved at 10-13 after an earlier decision; the final-status event of each
    # task counts, and a later non-task event (a certificate) does not.
    v = view(accepted(),
             task("a", "T1", "REJECTED", "2025-10-10 10:00"),
             task("b", "T1", "APPROVED", "2025-10-13 10:00"),
             task("c", "T2", "APPROVED", "2025-10-11 10:00", department="zjj"),
             certificate(at="2025-10-20 10:00"))
    assert v["status"] == "APPROVED"
    assert v["closed_at"] == t("2025-10-13 10:00")


def test_rule5_to_8() -> None:
    base = accepted()
    assert view(base, task("a", "T1", "RECEIVED", "2025-10-09 10:00"))["status"] == "ACCEPTED"
    assert view(base, task("a", "T1", "IN_REVIEW", "2025-10-09 10:00"))["status"] == "IN_PROGRESS"
    assert view(base, task("a", "T1", "APPROVED", "2025-10-09 10:00"))["status"] == "IN_PROGRESS"
    assert view(base, task("a", "T1", "RESUMED", "2025-10-09 10:00"))["status"] == "IN_PROGRESS"
    assert view(base, task("a", "T1", "SUSPENDED", "2025-10-09 10:00"))["status"] == "SUSPENDED"
    both = view(base, task("a", "T1", "SUSPENDED", "2025-10-09 10:00"),
                task("b", "T2", "SUPPLEMENT_REQUESTED", "2025-10-09 10:00", department="zjj"))
    assert both["status"] == "SUPPLEMENT_REQUIRED"
    assert view(base)["status"] == "ACCEPTED"
    assert view(base)["closed_at"] is None


# -------------------------------------------------------------------- tasks


def test_task_order_key_ties_broken_by_rank_then_event_id() -> None:
    # Same instant: the higher rank wins (APPROVED 7 after SUPPLEMENT_RECEIVED 4).
    v = view(accepted(),
             task("z", "T1", "APPROVED", "2025-10-09 10:00"),
             task("a", "T1", "SUPPLEMENT_RECEIVED", "2025-10-09 10:00"))
    assert statuses(v)["T1"] == "APPROVED"
    # Same instant and rank: the greater event_id wins (statuses are equal, so check
    # the department of a task created by the events: from the smallest event).
    v = view(task("b", "TX", "RECEIVED", "2025-10-09 10:00", department="gaj"),
             task("a", "TX", "RECEIVED", "2025-10-09 10:00", department="rsj"))
    assert v["tasks"][0]["department"] == "rsj"
    # Event time beats arrival: a late-arriving older event does not win.
    v = view(accepted(),
             task("b", "T1", "APPROVED", "2025-10-13 10:00"),
             task("a", "T1", "IN_REVIEW", "2025-10-10 10:00"))
    assert statuses(v)["T1"] == "APPROVED"
    assert v["tasks"][0]["updated_at"] == t("2025-10-13 10:00")


def test_undeclared_task_is_created_with_the_event_department_and_no_name() -> None:
    v = view(accepted(tasks=[("T1", "scjgj", "食品经营许可")]),
             task("a", "EXTRA", "IN_REVIEW", "2025-10-09 10:00", department="gaj"))
    extra = [tk for tk in v["tasks"] if tk["task_id"] == "EXTRA"][0]
    assert extra == {"task_id": "EXTRA", "department": "gaj", "name": None,
                     "status": "IN_REVIEW", "updated_at": t("2025-10-09 10:00")}
    assert [tk["task_id"] for tk in v["tasks"]] == ["EXTRA", "T1"]  # sorted by task_id


def test_declared_department_wins_over_the_event_department() -> None:
    v = view(accepted(), task("a", "T1", "IN_REVIEW", "2025-10-09 10:00", department="gaj"))
    assert v["tasks"][0]["department"] == "scjgj"
    assert v["tasks"][0]["status"] == "PENDING"  # gaj's update is out of role


# ------------------------------------------------------- who may change a task


def test_an_out_of_role_update_counts_towards_version_only() -> None:
    """domain.md section 3: a TaskUpdated from another department than the task's is
    applied (version) but does not count towards its status, pauses or closed_at."""
    acc = accepted(amount=5)
    own = task("a", "T1", "IN_REVIEW", "2025-10-09 10:00")
    foreign = [task("x1", "T1", "APPROVED", "2025-10-10 10:00", department="gaj"),
               task("x2", "T1", "SUPPLEMENT_REQUESTED", "2025-10-11 10:00", department="gaj"),
               task("x3", "T2", "REJECTED", "2025-10-12 10:00", department="scjgj")]
    v = view(acc, own, *foreign)
    assert v["version"] == 5
    assert statuses(v) == {"T1": "IN_REVIEW", "T2": "PENDING"}
    assert v["status"] == "IN_PROGRESS" and v["closed_at"] is None
    assert v["paused_since"] is None and v["due_date"] == view(acc, own)["due_date"]
    t2 = [tk for tk in v["tasks"] if tk["task_id"] == "T2"][0]
    assert t2["updated_at"] is None and t2["department"] == "zjj"
    # Only the owners' own final events close the case, at their own time.
    done = view(acc, own, *foreign, task("b", "T1", "APPROVED", "2025-10-13 09:00"),
                task("c", "T2", "APPROVED", "2025-10-14 09:00", department="zjj"))
    assert done["status"] == "APPROVED" and done["closed_at"] == t("2025-10-14 09:00")


def test_the_owner_of_an_undeclared_task_is_the_department_of_its_first_event() -> None:
    first = task("b", "EXTRA", "RECEIVED", "2025-10-09 09:00", department="gaj")
    other = task("a", "EXTRA", "APPROVED", "2025-10-10 09:00", department="rsj")
    v = view(accepted(tasks=[]), other, first)
    assert statuses(v) == {"EXTRA": "RECEIVED"} and v["tasks"][0]["department"] == "gaj"
    # An earlier event of another department makes that one the owner.
    earlier = task("c", "EXTRA", "SUSPENDED", "2025-10-08 09:00", department="rsj")
    v = view(accepted(tasks=[]), other, first, earlier)
    assert statuses(v) == {"EXTRA": "APPROVED"} and v["tasks"][0]["department"] == "rsj"


def test_ownership_follows_the_acceptance_record_of_the_set() -> None:
    # The later CaseAccepted declares T1 for gaj; the earlier one (the record) for scjgj.
    later = accepted("acc-2", at="2025-09-30 12:00", tasks=[("T1", "gaj", "x")])
    early = accepted("acc-1", at="2025-09-30 10:00", tasks=[("T1", "scjgj", "y")])
    by_gaj = task("g", "T1", "APPROVED", "2025-10-09 10:00", department="gaj")
    s = fold([later, by_gaj])
    assert statuses(project(s, CAL_2025)) == {"T1": "APPROVED"}
    assert s.task_owner("T1") == "gaj" and not s.is_out_of_role(by_gaj)
    s.apply(early)  # arrives last, becomes the record: gaj's approval no longer counts
    assert s.task_owner("T1") == "scjgj" and s.is_out_of_role(by_gaj)
    v = project(s, CAL_2025)
    assert statuses(v) == {"T1": "PENDING"} and v["status"] == "ACCEPTED"
    assert v == view(early, by_gaj, later)
    # Before any acceptance the first event's department owns the task.
    s = fold([by_gaj])
    assert s.task_owner("T1") == "gaj" and s.task_owner("T9") is None
    assert not s.is_out_of_role(accepted()) and not s.is_out_of_role(material())


def test_a_state_written_before_entries_had_departments_still_reads() -> None:
    s = fold([accepted(), task("a", "T1", "IN_REVIEW", "2025-10-09 10:00"),
              task("b", "T1", "APPROVED", "2025-10-10 10:00")])
    old = CaseState.from_bytes(s.to_bytes())
    old.tasks["T1"][1] = [e[:3] for e in old.tasks["T1"][1]]  # the earlier form
    assert project(old, CAL_2025) == project(s, CAL_2025)
    assert old.apply(task("c", "T1", "REJECTED", "2025-10-11 10:00", department="gaj")) \
        is Outcome.APPLIED
    assert statuses(project(old, CAL_2025))["T1"] == "APPROVED"


# ------------------------------------------------------------ acceptance record


def test_acceptance_record_is_the_earliest_by_time_then_event_id() -> None:
    first = accepted("acc-b", at="2025-09-30 10:00", service_code="FIRST",
                     tasks=[("T1", "scjgj", "x")])
    later = accepted("acc-a", at="2025-09-30 11:00", service_code="LATER", amount=1,
                     tasks=[("T2", "zjj", "y")])
    same_time_smaller_id = accepted("acc-0", at="2025-09-30 10:00", service_code="TIE")
    v = view(later, first)
    assert v["service_code"] == "FIRST" and v["version"] == 2
    assert [tk["task_id"] for tk in v["tasks"]] == ["T1"]  # only the record's tasks
    assert v["promise"] == {"amount": 5, "unit": "WORKING_DAY"}
    v = view(first, later, same_time_smaller_id)
    assert v["service_code"] == "TIE" and v["version"] == 3


# ------------------------------------------------------- duplicates / conflicts


def test_duplicate_is_ignored_and_conflict_first_wins() -> None:
    s = CaseState()
    ev = task("a", "T1", "IN_REVIEW", "2025-10-09 10:00")
    assert s.apply(accepted()) is Outcome.APPLIED
    assert s.apply(ev) is Outcome.APPLIED
    before = s.to_bytes()
    assert s.apply(dict(ev)) is Outcome.DUPLICATE
    assert s.to_bytes() == before
    conflicting = dict(ev, status="APPROVED")
    assert s.apply(conflicting) is Outcome.EVENT_ID_CONFLICT
    assert s.to_bytes() == before
    v = project(s, CAL_2025)
    assert v["version"] == 2 and statuses(v)["T1"] == "IN_REVIEW"
    # The other order: the approved one came first and stays.
    s2 = fold([accepted(), conflicting])
    assert s2.apply(ev) == "EVENT_ID_CONFLICT"
    assert statuses(project(s2, CAL_2025))["T1"] == "APPROVED"


def test_duplicate_detection_across_event_types_and_with_given_fingerprints() -> None:
    s = CaseState()
    assert s.apply(material(event_id="x")) is Outcome.APPLIED
    assert s.apply(task("x", "T1", "RECEIVED", "2025-10-09 10:00")) is Outcome.EVENT_ID_CONFLICT
    assert s.apply(task("y", "T1", "RECEIVED", "2025-10-09 10:00"), "fp1") is Outcome.APPLIED
    assert s.apply(task("y", "T1", "APPROVED", "2025-10-09 10:00"), "fp1") is Outcome.DUPLICATE
    assert s.version == 2


def test_fingerprint_is_wire_independent() -> None:
    ev = accepted()
    utc_copy = dict(ev, occurred_at=ev["occurred_at"].astimezone(UTC))
    assert event_fingerprint(ev) == event_fingerprint(utc_copy)
    no_window = dict(ev)
    no_window["window_id"] = None
    without_key = {k: v for k, v in ev.items() if k != "window_id"}
    assert event_fingerprint(no_window) == event_fingerprint(without_key)
    assert event_fingerprint(ev) != event_fingerprint(no_window)
    reordered = dict(reversed(list(ev.items())))
    assert event_fingerprint(ev) == event_fingerprint(reordered)
    # Keys foreign to the type (codec metadata) do not count; content does.
    assert event_fingerprint(dict(ev, _offset=5)) == event_fingerprint(ev)
    assert event_fingerprint(dict(ev, service_name="x")) != event_fingerprint(ev)
    # Sub-millisecond digits are below the wire precision.
    micro = dict(ev, occurred_at=ev["occurred_at"].replace(microsecond=400))
    assert event_fingerprint(micro) == event_fingerprint(ev)
    c = certificate()
    assert event_fingerprint(c) != event_fingerprint(dict(c, valid_until=date(2030, 10, 15)))
    assert len(event_fingerprint(c)) == 32


def test_a_state_belongs_to_one_case() -> None:
    s = fold([accepted()])
    with pytest.raises(CaseMismatchError):
        s.apply(accepted(case_id="C-2"))
    assert issubclass(CaseMismatchError, OneWindowError)


# ------------------------------------------------------------ serialisation


def test_round_trip_and_canonical_bytes() -> None:
    events = [accepted(), material(), task("a", "T1", "SUPPLEMENT_REQUESTED", "2025-10-09 09:00"),
              task("b", "T1", "SUPPLEMENT_RECEIVED", "2025-10-10 16:00"),
              task("c", "T7", "RECEIVED", "2025-10-10 16:00", department="gaj"),
              withdrawn("w", "2025-10-20 09:00"), certificate()]
    s = fold(events)
    b = s.to_bytes()
    s2 = CaseState.from_bytes(b)
    assert s2 == s and s2.to_bytes() == b
    assert project(s2, CAL_2025) == project(s, CAL_2025)
    assert fold(reversed(events)).to_bytes() == b
    # The restored state keeps folding.
    assert s2.apply(task("d", "T1", "APPROVED", "2025-10-15 10:00")) is Outcome.APPLIED
    assert s2.apply(events[2]) is Outcome.DUPLICATE
    assert CaseState.from_bytes(CaseState().to_bytes()) == CaseState()


def test_from_bytes_rejects_foreign_data() -> None:
    with pytest.raises(OneWindowError):
        CaseState.from_bytes(b'{"a": 1}')
    with pytest.raises(OneWindowError):
        CaseState.from_bytes(b"[99]")


def test_unknown_event_type_is_a_programming_error() -> None:
    with pytest.raises(OneWindowError):
        CaseState().apply(dict(withdrawn("w", "2025-10-20 09:00"), type="Nope"))
