"""The worked example of the contract (tests/examples/), end to end through the domain core."""

from __future__ import annotations

import json
from datetime import date, datetime

from onewindow.calendar_source import load_calendar
from onewindow.domain.case import CaseState, fold, project
from onewindow.domain.deadline import ON_TIME, sla_status
from onewindow.domain.validation import validate

from .helpers import CAL_2025, EXAMPLES, read_jsonl, t

DEPARTMENTS = {"zwfw", "scjgj", "zjj"}


def expected_case() -> dict:
    return json.loads((EXAMPLES / "restaurant-case.expected.json").read_text("utf-8"))["case"]


def _as_expected(v: dict) -> dict:
    """The projected view in the shape of restaurant-case.expected.json's "case"."""
    exp = expected_case()
    out: dict = {}
    for key in exp:
        if key == "applicant_kind":
            out[key] = v["applicant"]["kind"]
        elif key == "tasks":
            out[key] = {tk["task_id"]: {"department": tk["department"], "status": tk["status"]}
                        for tk in v["tasks"]}
        else:
            out[key] = v[key]
    return out


def _parse_expected() -> dict:
    exp = expected_case()
    for key in ("accepted_at", "closed_at", "due_at", "paused_since"):
        if exp[key] is not None:
            exp[key] = datetime.fromisoformat(exp[key])
    exp["due_date"] = date.fromisoformat(exp["due_date"])
    return exp


def test_every_event_is_valid() -> None:
    for ev in read_jsonl(EXAMPLES / "restaurant-case.jsonl"):
        assert validate(ev, topic_department=ev["department"], departments=DEPARTMENTS,
                        now=t("2025-10-16 00:00")) is None


def test_projection_equals_the_expected_case() -> None:
    events = read_jsonl(EXAMPLES / "restaurant-case.jsonl")
    for calendar in (load_calendar(), CAL_2025):
        v = project(fold(events), calendar)
        assert _as_expected(v) == _parse_expected()
        assert v["due_at"].isoformat() == "2025-10-16T15:59:59.999000+00:00"
        assert sla_status(v, t("2030-01-01 00:00"), calendar) == ON_TIME
        assert sla_status(v, t("2025-10-01 00:00"), calendar) == ON_TIME


def test_without_the_supplement_it_would_be_due_on_the_14th() -> None:
    events = [ev for ev in read_jsonl(EXAMPLES / "restaurant-case.jsonl")
              if ev["event_id"] not in ("evt-0005", "evt-0006")]
    v = project(fold(events), load_calendar())
    assert v["due_date"] == date(2025, 10, 14)


def test_replay_in_reverse_with_duplicates_and_round_trips() -> None:
    events = read_jsonl(EXAMPLES / "restaurant-case.jsonl")
    forward = fold(events)
    s = CaseState()
    for ev in reversed(events + events):
        s.apply(ev)
    s = CaseState.from_bytes(s.to_bytes())
    assert s.to_bytes() == forward.to_bytes()
    assert project(s, CAL_2025) == project(forward, CAL_2025)
