from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from onewindow.domain.validation import (
    ALL_REASONS,
    DEPARTMENT_MISMATCH,
    FUTURE_TIMESTAMP,
    INVALID_FIELD,
    INVALID_ID_NUMBER,
    UNAUTHORISED,
    UNKNOWN_DEPARTMENT,
    Rejection,
    validate,
)

from .helpers import EXAMPLES, accepted, certificate, material, read_jsonl, t, task, withdrawn

DEPTS = frozenset({"zwfw", "scjgj", "zjj", "gaj"})
NOW = t("2025-10-20 12:00")


def check(ev: dict[str, Any], topic: str | None = None, now: datetime = NOW) -> Rejection | None:
    return validate(ev, topic_department=topic, departments=DEPTS, now=now)


def reason(ev: dict[str, Any], topic: str | None = None, now: datetime = NOW) -> str | None:
    r = check(ev, topic, now)
    return None if r is None else r.reason


def test_reason_codes() -> None:
    assert ALL_REASONS == ("UNDECODABLE", "UNKNOWN_SCHEMA", "UNKNOWN_DEPARTMENT",
                           "DEPARTMENT_MISMATCH", "INVALID_ID_NUMBER", "INVALID_FIELD",
                           "FUTURE_TIMESTAMP", "EVENT_ID_CONFLICT", "UNAUTHORISED",
                           "TOO_LARGE", "WRONG_PARTITION", "OUTPUT_FAILED")


@pytest.mark.parametrize("ev", [
    accepted(), task("e1", "T1", "RECEIVED", "2025-10-01 09:00"),
    withdrawn("w1", "2025-10-02 09:00"),
    material(), certificate(),
])
def test_valid_events(ev: dict[str, Any]) -> None:
    assert check(ev) is None
    assert check(ev, topic=ev["department"]) is None


def test_the_worked_example_is_valid() -> None:
    for ev in read_jsonl(EXAMPLES / "restaurant-case.jsonl"):
        assert check(ev, topic=ev["department"], now=t("2025-10-16 00:00")) is None, ev


def test_optional_fields_may_be_absent() -> None:
    ev = task("e1", "T1", "RECEIVED", "2025-10-01 09:00")
    del ev["officer"], ev["note"]
    assert check(ev) is None
    ev = accepted()
    del ev["window_id"]
    assert check(ev) is None
    ev = material()
    del ev["document_number"], ev["task_id"]
    assert check(ev) is None
    ev = certificate(valid_until=None)
    assert check(ev) is None


def test_unknown_department() -> None:
    r = check(task("e1", "T1", "RECEIVED", "2025-10-01 09:00", department="nope"))
    assert r == Rejection(UNKNOWN_DEPARTMENT, "department: 'nope' is not registered")
    ev = accepted(tasks=[("T1", "nope", "x")])
    r = check(ev)
    assert r is not None and r.reason == UNKNOWN_DEPARTMENT and "tasks[0].department" in r.detail


def test_department_mismatch_only_when_the_topic_is_known() -> None:
    ev = task("e1", "T1", "RECEIVED", "2025-10-01 09:00", department="scjgj")
    assert reason(ev, topic="zjj") == DEPARTMENT_MISMATCH
    assert reason(ev, topic=None) is None
    # Unknown beats mismatch (the order of the table).
    ev["department"] = "nope"
    assert reason(ev, topic="zjj") == UNKNOWN_DEPARTMENT


COUNTERS = frozenset({"zwfw"})  # the registry's counter role (interfaces.md, Departments)


def by_role(ev: dict[str, Any], topic: str | None = None) -> Rejection | None:
    return validate(ev, topic_department=topic, departments=DEPTS, now=NOW, counters=COUNTERS)


def role_reason(ev: dict[str, Any], topic: str | None = None) -> str | None:
    r = by_role(ev, topic)
    return None if r is None else r.reason


def test_only_a_counter_department_accepts_or_withdraws_a_case() -> None:
    """domain.md section 2: UNAUTHORISED is a CaseAccepted or CaseWithdrawn from a
    department whose registered role is not counter."""
    assert by_role(accepted(), topic="zwfw") is None
    assert by_role(withdrawn("w1", "2025-10-02 09:00"), topic="zwfw") is None
    for ev in (dict(accepted(), department="scjgj"),
               dict(withdrawn("w1", "2025-10-02 09:00"), department="gaj")):
        r = by_role(ev, topic=ev["department"])
        assert r is not None and r.reason == UNAUTHORISED, r
        assert repr(ev["department"]) in r.detail and ev["type"] in r.detail
        assert by_role(ev) is not None  # also when the topic is not known
        assert check(ev) is None  # without the roles the rule is not checked
    # Every other type may come from any registered department, the counter included.
    for ev in (task("e1", "T1", "RECEIVED", "2025-10-01 09:00"), material(), certificate(),
               task("e2", "T1", "RECEIVED", "2025-10-01 09:00", department="zwfw")):
        assert by_role(ev, topic=ev["department"]) is None


def test_unauthorised_comes_after_the_department_rules_and_before_the_content() -> None:
    ev = dict(accepted(), department="scjgj")
    # spoofed: reported as DEPARTMENT_MISMATCH (the sender is not who it claims to be)
    assert role_reason(ev, topic="zjj") == DEPARTMENT_MISMATCH
    # a counter's name on another department's topic is a spoof too, not an authorisation
    assert role_reason(accepted(), topic="scjgj") == DEPARTMENT_MISMATCH
    # unknown: UNKNOWN_DEPARTMENT
    assert role_reason(dict(ev, department="nope"), topic="nope") == UNKNOWN_DEPARTMENT
    # its content is not reviewed: a bad ID number, a bad field, a future time, an
    # unregistered task department are all UNAUTHORISED first
    bad = dict(ev, applicant=dict(ev["applicant"], id_number="91440101MA5CXYW124"),
               promise={"amount": -1, "unit": "WORKING_DAY"},
               tasks=[{"task_id": "T1", "department": "nope", "name": "x"}],
               occurred_at=NOW + timedelta(days=1))
    assert role_reason(bad, topic="scjgj") == UNAUTHORISED
    # while from the counter the same content gives its own reasons, in their order
    assert role_reason(dict(bad, department="zwfw"), topic="zwfw") == UNKNOWN_DEPARTMENT


def test_invalid_id_numbers() -> None:
    ev = accepted()
    ev["applicant"] = dict(ev["applicant"], id_number="91440101MA5CXYW124")
    r = check(ev)
    assert r is not None and r.reason == INVALID_ID_NUMBER and "applicant.id_number" in r.detail
    ev["applicant"] = dict(ev["applicant"], id_type="RESIDENT_ID", kind="PERSON",
                           id_number="110105194912310021")
    assert reason(ev) == INVALID_ID_NUMBER
    for make in (material, certificate):
        ev = make()
        ev["holder"] = {"id_type": "RESIDENT_ID", "id_number": "440106198503121238", "name": "x"}
        r = check(ev)
        assert r is not None and r.reason == INVALID_ID_NUMBER and "holder" in r.detail
        ev["holder"] = {"id_type": "USCC", "id_number": "91440101MA5CXYW12Z", "name": "x"}
        assert reason(ev) == INVALID_ID_NUMBER


def test_other_id_types_are_not_checked_and_numbers_are_normalised() -> None:
    ev = material()
    ev["holder"] = {"id_type": "PASSPORT", "id_number": "E1234", "name": "x"}
    assert check(ev) is None
    ev["holder"] = {"id_type": "OTHER", "id_number": "whatever", "name": "x"}
    assert check(ev) is None
    ev["holder"] = {"id_type": "RESIDENT_ID", "id_number": "440106 19850312 1237", "name": "x"}
    assert check(ev) is None
    # A 15-digit first-generation ID has no check digit: invalid.
    ev["holder"] = {"id_type": "RESIDENT_ID", "id_number": "440106850312123", "name": "x"}
    assert reason(ev) == INVALID_ID_NUMBER


BAD_FIELDS: list[tuple[str, Any, str]] = []


def _bad(name: str, ev: dict[str, Any], field: str) -> None:
    BAD_FIELDS.append((name, ev, field))


_bad("case_id empty", task("e", "T1", "RECEIVED", "2025-10-01 09:00", case_id=""), "case_id")
_bad("case_id chars", task("e", "T1", "RECEIVED", "2025-10-01 09:00", case_id="a b"), "case_id")
_bad("case_id 65", task("e", "T1", "RECEIVED", "2025-10-01 09:00", case_id="a" * 65), "case_id")
_bad("case_id non-ascii", task("e", "T1", "RECEIVED", "2025-10-01 09:00", case_id="案1"),
     "case_id")
_bad("event_id empty", task("", "T1", "RECEIVED", "2025-10-01 09:00"), "event_id")
_bad("event_id 65", task("e" * 65, "T1", "RECEIVED", "2025-10-01 09:00"), "event_id")
_bad("bad status", task("e", "T1", "DONE", "2025-10-01 09:00"), "status")
_bad("PENDING is not on the wire", task("e", "T1", "PENDING", "2025-10-01 09:00"), "status")
_bad("missing task_id", task("e", None, "RECEIVED", "2025-10-01 09:00"), "task_id")  # type: ignore[arg-type]
_bad("naive occurred_at", task("e", "T1", "RECEIVED", "2025-10-01 09:00",
                               occurred_at=datetime(2025, 10, 1, 9)), "occurred_at")
_bad("string occurred_at", task("e", "T1", "RECEIVED", "2025-10-01 09:00",
                                occurred_at="2025-10-01T09:00:00+08:00"), "occurred_at")
_bad("officer not str", task("e", "T1", "RECEIVED", "2025-10-01 09:00", officer=3), "officer")
_bad("negative amount", accepted(amount=-1), "promise.amount")
_bad("bool amount", accepted(amount=True), "promise.amount")
_bad("absurd amount", accepted(amount=10**7), "promise.amount")
_bad("bad unit", accepted(unit="WEEK"), "promise.unit")
_bad("missing promise", accepted(promise=None), "promise")
_bad("bad kind", accepted(case_kind="URGENT"), "case_kind")
_bad("bad channel", accepted(channel="FAX"), "channel")
_bad("missing service_code", accepted(service_code=None), "service_code")
_bad("tasks not a list", dict(accepted(), tasks="T1"), "tasks")
_bad("tasks missing", dict(accepted(), tasks=None), "tasks")
_bad("task declared twice", accepted(tasks=[("T1", "zjj", "a"), ("T1", "zjj", "b")]),
     "tasks[1].task_id")
_bad("applicant kind", accepted(applicant={"kind": "ROBOT", "id_type": "OTHER",
                                           "id_number": "1", "name": "x"}), "applicant.kind")
_bad("sha256 upper", material(sha256="AB" * 32), "sha256")
_bad("sha256 short", material(sha256="ab" * 31), "sha256")
_bad("negative pages", material(pages=-1), "pages")
_bad("negative size", material(size_bytes=-5), "size_bytes")
_bad("float size", material(size_bytes=1.5), "size_bytes")
_bad("bad form", material(form="SCAN"), "form")
_bad("declared_fields values", material(declared_fields={"a": 1}), "declared_fields")
_bad("holder id_type", material(holder={"id_type": "SSN", "id_number": "1", "name": "x"}),
     "holder.id_type")
_bad("holder missing", material(holder=None), "holder")
_bad("certificate without number", certificate(document_number=None), "document_number")
_bad("certificate without task", certificate(task_id=None), "task_id")
_bad("valid_until not a date", certificate(valid_until="2030-01-01"), "valid_until")
_bad("unknown type", dict(withdrawn("w", "2025-10-01 09:00"), type="CaseReopened"), "type")
_bad("withdraw reason", dict(withdrawn("w", "2025-10-01 09:00"), reason=5), "reason")


@pytest.mark.parametrize(("name", "ev", "field"), BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_invalid_fields(name: str, ev: dict[str, Any], field: str) -> None:
    r = check(ev)
    assert r is not None, name
    assert r.reason == INVALID_FIELD
    assert r.detail.startswith(field), r.detail


def test_future_timestamp_allows_ten_minutes() -> None:
    ev = task("e", "T1", "RECEIVED", "2025-10-20 12:10")
    assert check(ev) is None
    ev["occurred_at"] += timedelta(milliseconds=1)
    r = check(ev)
    assert r is not None and r.reason == FUTURE_TIMESTAMP and r.detail.startswith("occurred_at")


def test_order_of_reasons() -> None:
    # INVALID_ID_NUMBER before INVALID_FIELD before FUTURE_TIMESTAMP.
    ev = material(sha256="bad", occurred_at=t("2030-01-01 00:00"))
    ev["holder"] = {"id_type": "RESIDENT_ID", "id_number": "440106198503121238", "name": "x"}
    assert reason(ev) == INVALID_ID_NUMBER
    ev["holder"]["id_number"] = "440106198503121237"
    assert reason(ev) == INVALID_FIELD
    ev["sha256"] = "ab" * 32
    assert reason(ev) == FUTURE_TIMESTAMP


def test_not_a_mapping() -> None:
    assert reason([1, 2]) == INVALID_FIELD  # type: ignore[arg-type]
    assert reason({"type": "TaskUpdated"}) == INVALID_FIELD


def test_dates_are_not_datetimes() -> None:
    assert check(certificate(valid_until=date(2031, 1, 1))) is None
    assert reason(certificate(valid_until=t("2031-01-01 00:00"))) == INVALID_FIELD
