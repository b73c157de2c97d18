"""The supervisor's queries (onewindow.read_model.supervision) on a small read model written
row by row, on SQLite and PostgreSQL, against numbers worked out by hand below.

The week of 2025-03-03 (Monday) to 2025-03-07 (Friday), Asia/Shanghai; "now" is Friday
10:00. Times below are local. The cases (window, service, tasks' departments):

    C1  W01 S1 scjgj+swj  accepted Mon 09:00, APPROVED Wed 15:00, due Thu  -> on time
    C2  W02 S1 scjgj      accepted Mon 10:00, REJECTED Fri 09:00, due Tue  -> late
    C3  W01 S2 gaj        accepted Tue 11:00, open, due Thu
    C4  W01 S2 scjgj      accepted Wed 09:30, open, paused since Thu 14:00 (no due date)
    C5  W02 S1 swj        accepted Thu 16:00, open, due next Tue (03-11)
    C6  W01 S1 gaj        accepted Sun 03-02 09:00 (before the week), open, HOUR promise
                          due Mon 13:00
    C7  W02 S1 scjgj      accepted Tue 09:00, WITHDRAWN Tue 17:00, due Fri -> on time
    C8  W01 S1 scjgj      accepted Fri 09:30 (today), open, due next Wed (03-12)
    C9  W01 S1 gaj        accepted and closed the week before (counts nowhere)
    C10 W03 S2 scjgj      accepted Mon 08:00, APPROVED Mon 20:00, due Thu -> on time
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, and_, case, delete, exists, func, insert, select

from onewindow.calendar_source import load_calendar
from onewindow.domain.deadline import SHANGHAI, end_of_local_day
from onewindow.domain.decision_time import DECISIONS
from onewindow.domain.events import PAUSING_STATUSES, STATUS_RANK
from onewindow.read_model import supervision as sup
from onewindow.read_model.dialect import seconds_between
from onewindow.read_model.supervision import Scope
from onewindow.read_model.tables import (
    CASES,
    DEAD,
    LINKS,
    MATERIALS,
    TASK_DECISIONS,
    TASKS,
    TIMELINE,
)
from sinks.decisions import refresh_all
from sinks.rows import Batch
from sinks.unit_of_work import write_batch

NOW = datetime(2025, 3, 7, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)
WEEK = Scope(date(2025, 3, 3), date(2025, 3, 7))
REC = datetime(2025, 3, 8, tzinfo=UTC)  # recorded_at of every row
_n = count()


def at(day: int, hh: int, mm: int = 0, month: int = 3) -> datetime:
    """A local time of 2025-``month``-``day`` as a UTC instant."""
    return datetime(2025, month, day, hh, mm, tzinfo=SHANGHAI).astimezone(UTC)


def due(day: int, month: int = 3) -> tuple[date, datetime]:
    d = date(2025, month, day)
    return d, end_of_local_day(d)


def _case(case_id: str, window: str, service: str, accepted: datetime, status: str,
          due_on: tuple[date, datetime] | None, closed: datetime | None = None,
          paused: datetime | None = None) -> dict[str, Any]:
    return {"case_id": case_id, "version": 1, "status": status, "service_code": service,
            "service_name": f"服务{service}", "window_id": window, "accepted_at": accepted,
            "due_date": due_on[0] if due_on else None, "due_at": due_on[1] if due_on else None,
            "closed_at": closed, "paused_since": paused, "recorded_at": REC}


CASE_ROWS = [
    _case("C1", "W01", "S1", at(3, 9), "APPROVED", due(6), closed=at(5, 15)),
    _case("C2", "W02", "S1", at(3, 10), "REJECTED", due(4), closed=at(7, 9)),
    _case("C3", "W01", "S2", at(4, 11), "IN_PROGRESS", due(6)),
    _case("C4", "W01", "S2", at(5, 9, 30), "SUPPLEMENT_REQUIRED", None, paused=at(6, 14)),
    _case("C5", "W02", "S1", at(6, 16), "IN_PROGRESS", due(11)),
    _case("C6", "W01", "S1", at(2, 9), "IN_PROGRESS", (date(2025, 3, 3), at(3, 13))),
    _case("C7", "W02", "S1", at(4, 9), "WITHDRAWN", due(7), closed=at(4, 17)),
    _case("C8", "W01", "S1", at(7, 9, 30), "ACCEPTED", due(12)),
    _case("C9", "W01", "S1", at(25, 9, month=2), "APPROVED", due(28, 2),
          closed=at(27, 9, month=2)),
    _case("C10", "W03", "S2", at(3, 8), "APPROVED", due(6), closed=at(3, 20)),
]

# (case, task, department, status, updated_at)
TASK_ROWS = [
    ("C1", "C1-T1", "scjgj", "APPROVED", at(5, 15)), ("C1", "C1-T2", "swj", "APPROVED", at(4, 12)),
    ("C2", "C2-T", "scjgj", "REJECTED", at(7, 9)), ("C3", "C3-T", "gaj", "IN_REVIEW", at(4, 12)),
    ("C4", "C4-T", "scjgj", "SUPPLEMENT_REQUESTED", at(6, 14)),
    ("C5", "C5-T", "swj", "RECEIVED", at(6, 17)), ("C6", "C6-T", "gaj", "IN_REVIEW", at(3, 9)),
    ("C7", "C7-T", "scjgj", "WITHDRAWN", at(4, 17)), ("C8", "C8-T", "scjgj", "PENDING", None),
    ("C9", "C9-T", "gaj", "APPROVED", at(27, 9, month=2)),
    ("C10", "C10-T", "scjgj", "APPROVED", at(3, 20)),
]

# (case, task, department, status, occurred_at[, out_of_role])
TASK_EVENTS: list[tuple[Any, ...]] = [
    # C1-T1: 53 h from receipt to decision, 6 h of it paused (补正)
    ("C1", "C1-T1", "scjgj", "RECEIVED", at(3, 10)), ("C1", "C1-T1", "scjgj", "IN_REVIEW", at(3, 11)),
    ("C1", "C1-T1", "scjgj", "SUPPLEMENT_REQUESTED", at(4, 9)),
    ("C1", "C1-T1", "scjgj", "SUPPLEMENT_RECEIVED", at(4, 15)),
    ("C1", "C1-T1", "scjgj", "APPROVED", at(5, 15)),
    # C1-T2: 24 h, no pause: the SUSPENDED from gaj is out of role and counts for nothing
    ("C1", "C1-T2", "swj", "RECEIVED", at(3, 12)),
    ("C1", "C1-T2", "gaj", "SUSPENDED", at(3, 13), True),
    ("C1", "C1-T2", "swj", "APPROVED", at(4, 12)),
    # C2-T: 94 h, no pause
    ("C2", "C2-T", "scjgj", "RECEIVED", at(3, 11)), ("C2", "C2-T", "scjgj", "IN_REVIEW", at(4, 8)),
    ("C2", "C2-T", "scjgj", "REJECTED", at(7, 9)),
    # C10-T: 11 h, paused 10:00-14:00 (补正, then 特别程序 straight after: one pause of 4 h)
    ("C10", "C10-T", "scjgj", "RECEIVED", at(3, 9)),
    ("C10", "C10-T", "scjgj", "SUPPLEMENT_REQUESTED", at(3, 10)),
    ("C10", "C10-T", "scjgj", "SUSPENDED", at(3, 12)),
    ("C10", "C10-T", "scjgj", "RESUMED", at(3, 14)),
    ("C10", "C10-T", "scjgj", "APPROVED", at(3, 20)),
    # not decided, or decided before the week
    ("C3", "C3-T", "gaj", "RECEIVED", at(4, 11, 30)), ("C3", "C3-T", "gaj", "IN_REVIEW", at(4, 12)),
    ("C9", "C9-T", "gaj", "RECEIVED", at(25, 10, month=2)),
    ("C9", "C9-T", "gaj", "APPROVED", at(27, 9, month=2)),
]


def _material(mid: str, case_id: str, dept: str, mtype: str, name: str, holder: str,
              pages: int | None, when: datetime, avoidable: bool,
              kind: str = "MaterialSubmitted") -> dict[str, Any]:
    return {"material_id": mid, "kind": kind, "material_type": mtype, "name": name,
            "holder_id_type": "RESIDENT_ID", "holder_id_hash": holder * 8,
            "holder_id_masked": "44**************37", "sha256": mid.lower() * 16,
            "pages": pages, "declared_fields": "{}", "occurred_at": when, "case_id": case_id,
            "department": dept, "event_id": f"{mid}-e", "avoidable": avoidable,
            "document_number": f"DOC-{mid}", "recorded_at": REC}


MATERIAL_ROWS = [
    _material("M1", "C1", "scjgj", "ID_CARD", "法定代表人身份证", "h1", 1, at(3, 9, 5), False),
    _material("M2", "C1", "swj", "ID_CARD", "法定代表人身份证", "h1", 1, at(3, 9, 6), True),
    _material("M3", "C2", "scjgj", "ID_CARD", "申请人身份证", "h2", 2, at(4, 10), True),
    _material("M4", "C3", "gaj", "HOUSEHOLD_REGISTER", "户口簿", "h2", 4, at(4, 11), False),
    _material("M5", "C5", "swj", "BUSINESS_LICENSE", "营业执照", "h3", None, at(6, 16), True),
    _material("M6", "C6", "scjgj", "ID_CARD", "法定代表人身份证", "h3", 1, at(2, 9), True),
    _material("M7", "C1", "scjgj", "BUSINESS_LICENSE", "营业执照", "h1", 1, at(5, 15), False,
              kind="CertificateIssued"),
    _material("M8", "C8", "scjgj", "ID_CARD", "法定代表人身份证", "h1", 1, at(7, 9, 40), True),
]


def _link(a: str, b: str, verdict: str, found: datetime, case_a: str,
          case_b: str) -> dict[str, Any]:
    return {"material_a": a, "material_b": b, "verdict": verdict,
            "differing_fields": '["name"]' if verdict == "CONFLICT" else "[]",
            "holders_differ": False, "case_a": case_a, "case_b": case_b, "found_at": found,
            "recorded_at": REC}


LINK_ROWS = [
    _link("M1", "M6", "CONFLICT", at(4, 10), "C1", "C6"),
    _link("M4", "M9", "CONFLICT", at(6, 12), "C3", "C11"),  # M9 not in the model yet
    _link("M1", "M2", "EXACT", at(3, 10), "C1", "C1"),
    _link("M3", "M6", "CONFLICT", at(1, 10), "C2", "C6"),  # before the week
]


def _dead(offset: int, dept: str | None, reason: str, when: datetime) -> dict[str, Any]:
    return {"source_topic": "dept.x.events", "source_partition": 0, "source_offset": offset,
            "reason": reason, "detail": "-", "department": dept, "original_sha256": "0" * 64,
            "original_size": 10, "dead_lettered_at": when, "recorded_at": REC}


DEAD_ROWS = [
    _dead(1, "scjgj", "INVALID_FIELD", at(3, 12)), _dead(2, "scjgj", "INVALID_FIELD", at(5, 12)),
    _dead(3, "swj", "UNDECODABLE", at(6, 12)), _dead(4, None, "UNKNOWN_DEPARTMENT", at(6, 13)),
    _dead(5, "scjgj", "FUTURE_TIMESTAMP", at(20, 9, month=2)),
]


@pytest.fixture
def model(engine: Engine) -> Engine:
    tasks = [{"case_id": c, "task_id": t, "position": 0, "department": d, "status": s,
              "updated_at": u} for c, t, d, s, u in TASK_ROWS]
    events = []
    for c, t, d, s, when, *oor in TASK_EVENTS:
        i = next(_n)
        events.append({"case_id": c, "event_id": f"ev{i}", "event_type": "TaskUpdated",
                       "department": d, "occurred_at": when, "version": i, "task_id": t,
                       "status": s, "event_json": "{}", "source_topic": "t",
                       "source_partition": 0, "source_offset": i, "recorded_at": REC,
                       "out_of_role": bool(oor and oor[0])})
    # a MaterialSubmitted of C1-T1 on the timeline: no task status, never a task event
    events.append({"case_id": "C1", "event_id": "ev-m1", "event_type": "MaterialSubmitted",
                   "department": "scjgj", "occurred_at": at(3, 9, 5), "version": 99,
                   "task_id": "C1-T1", "status": None, "event_json": "{}",
                   "source_topic": "t", "source_partition": 0, "source_offset": 999,
                   "recorded_at": REC, "out_of_role": False})
    with engine.begin() as c:
        c.execute(insert(CASES), CASE_ROWS)
        c.execute(insert(TASKS), tasks)
        c.execute(insert(TIMELINE), events)
        c.execute(insert(MATERIALS), MATERIAL_ROWS)
        c.execute(insert(LINKS), LINK_ROWS)
        c.execute(insert(DEAD), DEAD_ROWS)
        refresh_all(c)  # the decision-time summary the sink keeps, from these rows
    return engine


def _days(rows: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in keys) for r in rows]


def test_cases_accepted_closed_and_open_per_day(model: Engine) -> None:
    with model.connect() as c:
        flow = sup.case_flow(c, WEEK, NOW)
        assert [r["day"] for r in flow] == [date(2025, 3, d) for d in range(3, 8)]
        assert _days(flow, "accepted", "closed", "approved", "rejected", "withdrawn",
                     "open_at_end") == [(3, 1, 1, 0, 0, 3), (2, 1, 0, 0, 1, 4),
                                        (1, 1, 1, 0, 0, 4), (1, 0, 0, 0, 0, 5),
                                        (1, 1, 0, 1, 0, 5)]
        assert sup.open_by_status(c, WEEK) == [
            {"status": "IN_PROGRESS", "cases": 2}, {"status": "ACCEPTED", "cases": 1},
            {"status": "SUPPLEMENT_REQUIRED", "cases": 1}]
        # a department: the cases with a task of it (C1, C2, C4, C7, C8, C10)
        scjgj = sup.case_flow(c, Scope(WEEK.first, WEEK.last, department="scjgj"), NOW)
        assert _days(scjgj, "accepted", "closed", "open_at_end") == [
            (3, 1, 2), (1, 1, 2), (1, 1, 2), (0, 0, 2), (1, 1, 2)]
        s2 = sup.case_flow(c, Scope(WEEK.first, WEEK.last, service_code="S2"), NOW)
        assert _days(s2, "accepted", "open_at_end") == [(1, 0), (1, 1), (1, 2), (0, 2), (0, 2)]
        # no point after today; a period in the future has none
        assert len(sup.case_flow(c, Scope(WEEK.first, date(2025, 3, 20)), NOW)) == 5
        assert sup.case_flow(c, Scope(date(2025, 4, 1), date(2025, 4, 2)), NOW) == []


def test_sla_trend_day_by_day(model: Engine) -> None:
    with model.connect() as c:
        trend = sup.sla_trend(c, WEEK, NOW, load_calendar())
    # on_track, due_soon, overdue, paused, on_time, late
    assert _days(trend, "on_track", "due_soon", "overdue", "paused", "on_time", "late") == [
        (1, 1, 1, 0, 1, 0),  # Mon: C1 on track, C2 due Tue, C6 past 13:00; C10 closed
        (2, 1, 1, 0, 1, 0),  # Tue: C1, C3 on track, C2 due today; C7 withdrawn on time
        (0, 1, 2, 0, 1, 0),  # Wed: C3 due Thu, C2 and C6 overdue (C4 not paused yet)
        (1, 1, 2, 1, 0, 0),  # Thu: C5 on track, C3 due today, C4 paused
        (2, 0, 2, 1, 0, 1),  # Fri 10:00: C3 overdue now, C5 and C8 on track; C2 late
    ]


def test_sla_trend_agrees_with_the_domain_rule(model: Engine) -> None:
    """Every past day's point is sla_status of each case at that day's last millisecond,
    judged with the case's row as it stands (the rule of the docstring)."""
    cal = load_calendar()
    from onewindow.domain.deadline import sla_status  # noqa: PLC0415 - the reference
    with model.connect() as c:
        trend = {r["day"]: r for r in sup.sla_trend(c, WEEK, NOW, cal)}
    for d in WEEK.days(date(2025, 3, 6)):
        t = end_of_local_day(d)
        want = dict.fromkeys(sup.SLA_STATES, 0)
        for row in CASE_ROWS:
            if row["accepted_at"] > t or (row["closed_at"] and row["closed_at"] < WEEK.start):
                continue
            closed = row["closed_at"] is not None and row["closed_at"] <= t
            if closed and row["closed_at"] < datetime.combine(d, dtime(0), SHANGHAI):
                continue  # closed before this day
            paused = row["paused_since"] is not None and row["paused_since"] <= t
            state = sla_status({**row, "closed_at": row["closed_at"] if closed else None,
                                "paused_since": row["paused_since"] if paused else None},
                               t, cal)
            if state is not None:
                want[state] += 1
        assert {s: trend[d][s.lower()] for s in sup.SLA_STATES} == want, d


def test_decision_times_median_p90_and_pauses_apart(model: Engine) -> None:
    with model.connect() as c:
        rows = sup.decision_times(c, WEEK)
        assert rows == [
            {"department": "scjgj", "decided": 3,  # C10-T 11 h, C1-T1 53 h, C2-T 94 h
             "active_median_h": 47.0, "active_p90_h": 94.0,  # 7, 47, 94
             "elapsed_median_h": 53.0, "elapsed_p90_h": 94.0,
             "paused_tasks": 2, "paused_median_h": 4.0, "paused_p90_h": 6.0},
            {"department": "swj", "decided": 1,
             "active_median_h": 24.0, "active_p90_h": 24.0,
             "elapsed_median_h": 24.0, "elapsed_p90_h": 24.0,
             "paused_tasks": 0, "paused_median_h": None, "paused_p90_h": None}]
        s1 = sup.decision_times(c, Scope(WEEK.first, WEEK.last, service_code="S1"))
        assert [(r["department"], r["decided"], r["elapsed_median_h"], r["elapsed_p90_h"])
                for r in s1] == [("scjgj", 2, 53.0, 94.0), ("swj", 1, 24.0, 24.0)]
        swj = sup.decision_times(c, Scope(WEEK.first, WEEK.last, department="swj"))
        assert [r["department"] for r in swj] == ["swj"]
        # C2-T was decided on Friday: a period ending Thursday leaves it out
        thu = sup.decision_times(c, Scope(WEEK.first, date(2025, 3, 6), department="scjgj"))
        assert thu[0]["decided"] == 2 and thu[0]["elapsed_p90_h"] == 53.0


def test_avoidable_submissions_and_the_documents_handed_in_again(model: Engine) -> None:
    with model.connect() as c:
        assert sup.avoidable_submissions(c, WEEK) == [
            {"department": "scjgj", "material_type": "ID_CARD", "submissions": 3,
             "avoidable": 2, "share": 0.6667, "pages": 4, "avoidable_pages": 3},
            {"department": "swj", "material_type": "BUSINESS_LICENSE", "submissions": 1,
             "avoidable": 1, "share": 1.0, "pages": 0, "avoidable_pages": 0},
            {"department": "swj", "material_type": "ID_CARD", "submissions": 1,
             "avoidable": 1, "share": 1.0, "pages": 1, "avoidable_pages": 1},
            {"department": "gaj", "material_type": "HOUSEHOLD_REGISTER", "submissions": 1,
             "avoidable": 0, "share": 0.0, "pages": 4, "avoidable_pages": 0}]
        assert sup.resubmitted_documents(c, WEEK) == [
            {"material_type": "ID_CARD", "name": "法定代表人身份证", "avoidable": 2, "pages": 2,
             "holders": 1, "departments": 2},
            {"material_type": "BUSINESS_LICENSE", "name": "营业执照", "avoidable": 1, "pages": 0,
             "holders": 1, "departments": 1},
            {"material_type": "ID_CARD", "name": "申请人身份证", "avoidable": 1, "pages": 2,
             "holders": 1, "departments": 1}]
        swj = sup.avoidable_submissions(c, Scope(WEEK.first, WEEK.last, department="swj"))
        assert {r["department"] for r in swj} == {"swj"} and len(swj) == 2
        s2 = sup.avoidable_submissions(c, Scope(WEEK.first, WEEK.last, service_code="S2"))
        assert [(r["material_type"], r["submissions"]) for r in s2] == [
            ("HOUSEHOLD_REGISTER", 1)]


def test_conflicts_dead_letters_and_services(model: Engine) -> None:
    with model.connect() as c:
        rows, total = sup.conflict_list(c, WEEK)
        assert total == 2
        assert [(r["material_a"], r["material_b"], r["case_a"], r["case_b"],
                 r["material_type"], r["department_a"], r["department_b"]) for r in rows] == [
            ("M4", "M9", "C3", "C11", "HOUSEHOLD_REGISTER", "gaj", None),
            ("M1", "M6", "C1", "C6", "ID_CARD", "scjgj", "scjgj")]
        assert rows[1]["document_number"] == "DOC-M1" and rows[1]["found_at"] == at(4, 10)
        page, total = sup.conflict_list(c, WEEK, limit=1, offset=1)
        assert total == 2 and [r["material_a"] for r in page] == ["M1"]
        gaj = sup.conflict_list(c, Scope(WEEK.first, WEEK.last, department="gaj"))
        assert [r["material_a"] for r in gaj[0]] == ["M4"]
        s1 = sup.conflict_list(c, Scope(WEEK.first, WEEK.last, service_code="S1"))
        assert [r["material_a"] for r in s1[0]] == ["M1"]

        assert sup.dead_letter_counts(c, WEEK) == [
            {"department": "scjgj", "reason": "INVALID_FIELD", "dead_letters": 2},
            {"department": "swj", "reason": "UNDECODABLE", "dead_letters": 1},
            {"department": None, "reason": "UNKNOWN_DEPARTMENT", "dead_letters": 1}]
        assert sup.dead_letter_counts(c, Scope(WEEK.first, WEEK.last, department="swj")) == [
            {"department": "swj", "reason": "UNDECODABLE", "dead_letters": 1}]

        assert sup.services(c, WEEK) == [
            {"service_code": "S1", "service_name": "服务S1", "cases": 5},
            {"service_code": "S2", "service_name": "服务S2", "cases": 3}]


def test_today_and_the_windows_latest_cases(model: Engine) -> None:
    with model.connect() as c:
        figures = sup.today_figures(c, NOW, load_calendar(), "W01")
        assert figures == {"accepted": 1, "closed": 1, "open": 5, "overdue": 2, "due_soon": 0,
                           "paused": 1, "avoidable": 1, "conflicts": 0, "dead_letters": 0,
                           "window_accepted": 1, "window_open": 4}
        # Thursday noon, the rows as they are: C3 is due today, C6 overdue since Monday
        thursday = sup.today_figures(c, at(6, 12), load_calendar())
        assert (thursday["due_soon"], thursday["overdue"]) == (1, 1)
        assert "window_open" not in thursday
        assert [r["case_id"] for r in sup.window_cases(c, NOW, "W01")] == [
            "C8", "C4", "C3", "C1", "C6", "C9"]
        assert [r["case_id"] for r in sup.window_cases(c, NOW, None, limit=3)] == [
            "C8", "C5", "C4"]
        # seen on Tuesday, what was accepted after Tuesday is not listed
        assert sup.window_cases(c, NOW - timedelta(days=3), "W01")[0]["case_id"] == "C3"


# ------------------------------------------------------------------ decision times: the summary


def _decision_times_from_events(conn: Any, scope: Scope) -> list[dict[str, Any]]:
    """The reference: the chart's figures from the raw rows, each decided task's events
    replayed in SQL (the query of the view before migration 0004's summary)."""
    t, tl = TASKS, TIMELINE
    decided_where = [t.c.status.in_(DECISIONS), t.c.updated_at >= scope.start,
                     t.c.updated_at < scope.end]
    if scope.service_code is not None:
        decided_where.append(exists().where(and_(CASES.c.case_id == t.c.case_id,
                                                 CASES.c.service_code == scope.service_code)))
    if scope.department is not None:
        decided_where.append(t.c.department == scope.department)
    decided = (select(t.c.case_id, t.c.task_id, t.c.department,
                      t.c.updated_at.label("decided_at")).where(*decided_where).cte("decided"))
    rank = case(dict(STATUS_RANK), value=tl.c.status, else_=0)
    events = (select(decided.c.case_id, decided.c.task_id, tl.c.status, tl.c.occurred_at,
                     func.lead(tl.c.occurred_at).over(
                         partition_by=(decided.c.case_id, decided.c.task_id),
                         order_by=(tl.c.occurred_at, rank, tl.c.event_id)).label("next_at"))
              .join_from(decided, tl, and_(tl.c.case_id == decided.c.case_id,
                                           tl.c.task_id == decided.c.task_id,
                                           tl.c.event_type == "TaskUpdated",
                                           tl.c.out_of_role.is_(False)))
              .subquery("task_events"))
    piece = case((and_(events.c.status.in_(sorted(PAUSING_STATUSES)),
                       events.c.next_at.is_not(None)),
                  seconds_between(events.c.occurred_at, events.c.next_at)), else_=0.0)
    steps = (select(events.c.case_id, events.c.task_id,
                    func.min(events.c.occurred_at).label("received_at"),
                    func.sum(piece).label("paused"))
             .group_by(events.c.case_id, events.c.task_id).cte("steps"))
    per_task = (select(decided.c.department,
                       seconds_between(steps.c.received_at, decided.c.decided_at)
                       .label("elapsed"), steps.c.paused)
                .join_from(decided, steps, and_(steps.c.case_id == decided.c.case_id,
                                                steps.c.task_id == decided.c.task_id))
                .cte("per_task"))
    dept = per_task.c.department
    active = (per_task.c.elapsed - per_task.c.paused).label("active")
    has_pause = per_task.c.paused > 0
    ranked = select(
        dept, per_task.c.elapsed, per_task.c.paused, active,
        func.count().over(partition_by=dept).label("n"),
        func.row_number().over(partition_by=dept, order_by=per_task.c.elapsed).label("r_el"),
        func.row_number().over(partition_by=dept, order_by=active).label("r_act"),
        func.count().over(partition_by=(dept, has_pause)).label("n_p"),
        func.row_number().over(partition_by=(dept, has_pause),
                               order_by=per_task.c.paused).label("r_p"),
    ).cte("ranked")
    r = ranked.c

    def at_rank(value: Any, rank_col: Any, n: Any, tenths: int, only: Any = None) -> Any:
        hit = rank_col == (tenths * n + 9) // 10
        return func.max(case((hit if only is None else and_(only, hit), value)))

    def hours(seconds: Any) -> float | None:
        return None if seconds is None else round(float(seconds) / 3600.0, 1)

    paused = r.paused > 0
    q = select(
        r.department, func.count(),
        at_rank(r.active, r.r_act, r.n, 5), at_rank(r.active, r.r_act, r.n, 9),
        at_rank(r.elapsed, r.r_el, r.n, 5), at_rank(r.elapsed, r.r_el, r.n, 9),
        func.sum(case((paused, 1), else_=0)),
        at_rank(r.paused, r.r_p, r.n_p, 5, paused), at_rank(r.paused, r.r_p, r.n_p, 9, paused),
    ).group_by(r.department).order_by(func.count().desc(), r.department)
    return [{"department": dep, "decided": int(n),
             "active_median_h": hours(a50), "active_p90_h": hours(a90),
             "elapsed_median_h": hours(e50), "elapsed_p90_h": hours(e90),
             "paused_tasks": int(n_paused or 0),
             "paused_median_h": hours(p50), "paused_p90_h": hours(p90)}
            for dep, n, a50, a90, e50, e90, n_paused, p50, p90 in conn.execute(q)]


def test_the_summary_answers_as_the_events_did_on_the_worked_week(model: Engine) -> None:
    with model.connect() as c:
        for scope in (WEEK, Scope(WEEK.first, WEEK.last, service_code="S1"),
                      Scope(WEEK.first, WEEK.last, department="scjgj"),
                      Scope(WEEK.first, date(2025, 3, 6)), Scope(date(2025, 2, 1), WEEK.last)):
            assert sup.decision_times(c, scope) == _decision_times_from_events(c, scope), scope


_DEPTS = ("scjgj", "swj", "gaj")
_STEP_STATUSES = ("RECEIVED", "IN_REVIEW", "SUPPLEMENT_REQUESTED", "SUPPLEMENT_RECEIVED",
                  "SUSPENDED", "RESUMED", "APPROVED", "REJECTED")
_SLOT = timedelta(minutes=6)  # a tenth of an hour
_BASE = datetime(2025, 3, 3, tzinfo=SHANGHAI).astimezone(UTC)


def _instant(slot: int, ms: int) -> datetime:
    """``slot`` tenths of an hour into the week, plus a millisecond or two: no duration
    ever lies near a rounding tie (x.x5 h), where the reference's SQLite arithmetic
    (``julianday``, about 40 us off) and the exact summary could round apart."""
    return _BASE + slot * _SLOT + timedelta(milliseconds=ms)


_event = st.tuples(st.sampled_from(_STEP_STATUSES), st.integers(0, 1679), st.integers(0, 2),
                   st.booleans(), st.integers(0, 9))  # status, slot, ms, other dept?, roll
_task = st.tuples(st.sampled_from(_DEPTS),
                  st.sampled_from(("APPROVED", "REJECTED", "IN_REVIEW", "WITHDRAWN")),
                  st.integers(0, 1679), st.integers(0, 2), st.lists(_event, max_size=6))
_case_st = st.tuples(st.sampled_from(("S1", "S2")), st.lists(_task, min_size=1, max_size=3))


def _write_in_batches(conn: Any, cases: list[Any], order: random.Random) -> None:
    """The cases' rows through the sink's unit of work, in random batches and order: each
    case's state twice (an earlier version with its tasks undecided, and the last), its
    task events (some out of role, some of another department, a material), shuffled;
    then, in random order, the last state of about half the cases and one event of
    about half of them (so the summary of a case is complete only at its last batch)."""
    items: list[tuple[str, Any]] = []
    late: list[tuple[str, Any]] = []
    for i, (service, tasks) in enumerate(cases):
        cid = f"C{i}"
        base = {c.name: None for c in CASES.columns if c.name != "recorded_at"}
        base.update(case_id=cid, status="IN_PROGRESS", service_code=service,
                    accepted_at=_BASE, due_provisional=False)
        early = [{"case_id": cid, "task_id": f"{cid}-T{k}", "position": k, "department": d,
                  "name": None, "status": "RECEIVED", "updated_at": None}
                 for k, (d, *_rest) in enumerate(tasks)]
        final = [dict(row, status=status, updated_at=_instant(slot, ms))
                 for row, (_d, status, slot, ms, _e) in zip(early, tasks, strict=True)]
        items.append(("case", (dict(base, version=1), early)))
        (late if order.random() < 0.5 else items).append(
            ("case", (dict(base, version=2), final)))
        for k, (dept, _s, _slot, _ms, events) in enumerate(tasks):
            for j, (status, slot, ms, other, roll) in enumerate(events):
                items.append(("event", {
                    "case_id": cid, "event_id": f"{cid}-T{k}-E{j}",
                    "event_type": "MaterialSubmitted" if roll == 9 else "TaskUpdated",
                    "department": _DEPTS[(_DEPTS.index(dept) + 1) % 3] if other else dept,
                    "occurred_at": _instant(slot, ms), "version": j, "task_id": f"{cid}-T{k}",
                    "status": None if roll == 9 else status, "material_id": None,
                    "event_json": "{}", "source_topic": "t", "source_partition": 0,
                    "source_offset": j, "source_timestamp": None,
                    "out_of_role": other and roll < 7}))
        if order.random() < 0.5 and len(items) > 1 and items[-1][0] == "event":
            late.append(items.pop())
    order.shuffle(items)
    order.shuffle(late)
    items += late
    while items:
        n = order.randint(1, 6)
        b = Batch()
        for kind, item in items[:n]:
            if kind == "case":
                b.add_case(*item)
            else:
                b.add_timeline(item)
        write_batch(conn, b)
        items = items[n:]


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cases=st.lists(_case_st, min_size=1, max_size=6), seed=st.integers(0, 2**16),
       first=st.integers(3, 9), days=st.integers(0, 6))
def test_the_summary_written_batch_by_batch_answers_as_the_events(
        engine: Engine, cases: list[Any], seed: int, first: int, days: int) -> None:
    """Whatever the order and batches the rows come in, the summary the unit of work kept
    gives the answer the raw rows give (every department, one, one service, a part of
    the week), and equals the summary computed at once from the final rows (the bulk
    load's and the migration's way)."""
    with engine.begin() as c:
        for table in (TASK_DECISIONS, TIMELINE, TASKS, CASES):
            c.execute(delete(table))
        _write_in_batches(c, cases, random.Random(seed))
    start = date(2025, 3, first)
    period = (start, min(date(2025, 3, 9), start + timedelta(days=days)))
    with engine.begin() as c:
        for scope in (Scope(date(2025, 3, 3), date(2025, 3, 9)), Scope(*period),
                      Scope(*period, department="scjgj"), Scope(*period, service_code="S2")):
            assert sup.decision_times(c, scope) == _decision_times_from_events(c, scope), scope
        kept = sorted(map(tuple, c.execute(select(TASK_DECISIONS)).all()))
        refresh_all(c)
        assert sorted(map(tuple, c.execute(select(TASK_DECISIONS)).all())) == kept
