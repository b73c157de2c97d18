"""The limits of domain.md section 2 (issue 13): TOO_LARGE and the plausible dates, each
at its edge: exactly at the limit passes, one over is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onewindow.domain.limits import (
    EARLIEST_OCCURRED_AT,
    MAX_CODE_CHARS,
    MAX_DECLARED_FIELDS,
    MAX_DECLARED_VALUE_CHARS,
    MAX_JSON_BYTES,
    MAX_PROMISE,
    MAX_RECORD_BYTES,
    MAX_TASKS,
    MAX_TEXT_CHARS,
)
from onewindow.domain.validation import (
    INVALID_FIELD,
    TOO_LARGE,
    UNAUTHORISED,
    UNKNOWN_DEPARTMENT,
    Rejection,
    check_record_size,
    validate,
)

from .helpers import CST, accepted, certificate, material, t, task, withdrawn

DEPTS = frozenset({"zwfw", "scjgj", "zjj", "gaj"})
NOW = t("2025-10-20 12:00")


def check(ev: dict[str, Any], now: datetime = NOW) -> Rejection | None:
    return validate(ev, topic_department=None, departments=DEPTS, now=now,
                    counters=frozenset({"zwfw"}))


def reason(ev: dict[str, Any]) -> str | None:
    r = check(ev)
    return None if r is None else r.reason


def test_the_spec_numbers() -> None:
    assert MAX_RECORD_BYTES == 262_144
    assert (MAX_TASKS, MAX_DECLARED_FIELDS, MAX_DECLARED_VALUE_CHARS, MAX_TEXT_CHARS) == (
        100, 64, 2_000, 4_000)
    assert MAX_PROMISE == {"WORKING_DAY": 3_660, "NATURAL_DAY": 3_660, "HOUR": 87_840}
    assert EARLIEST_OCCURRED_AT == datetime(2000, 1, 1, tzinfo=CST)


def test_record_size_at_the_edge() -> None:
    assert check_record_size(MAX_RECORD_BYTES) is None
    r = check_record_size(MAX_RECORD_BYTES + 1)
    assert r is not None and r.reason == TOO_LARGE and "262145 bytes" in r.detail


def _tasks(n: int) -> list[tuple[str, str, str]]:
    return [(f"T{i}", "scjgj", "任务") for i in range(n)]


def _declared(n: int, value: str = "v") -> dict[str, str]:
    return {f"k{i}": value for i in range(n)}


def _party(ev: dict[str, Any], field: str, **changes: Any) -> dict[str, Any]:
    return dict(ev, **{field: dict(ev[field], **changes)})


#: (name, build(n) -> an event with the limited thing of size n, the limit, the field named)
EDGES: list[tuple[str, Callable[[int], dict[str, Any]], int, str]] = [
    ("tasks", lambda n: accepted(tasks=_tasks(n)), MAX_TASKS, "tasks"),
    ("declared fields", lambda n: material(declared_fields=_declared(n)),
     MAX_DECLARED_FIELDS, "declared_fields"),
    ("certificate declared fields", lambda n: certificate(declared_fields=_declared(n)),
     MAX_DECLARED_FIELDS, "declared_fields"),
    ("declared value", lambda n: material(declared_fields={"k": "値" * n}),
     MAX_DECLARED_VALUE_CHARS, "declared_fields['k']"),
    ("declared key", lambda n: material(declared_fields={"k" * n: "v"}),
     MAX_CODE_CHARS, "declared_fields"),
    ("note", lambda n: task("e1", "T1", "RECEIVED", "2025-10-01 09:00", note="注" * n),
     MAX_TEXT_CHARS, "note"),
    ("officer", lambda n: task("e1", "T1", "RECEIVED", "2025-10-01 09:00", officer="x" * n),
     MAX_TEXT_CHARS, "officer"),
    ("reason", lambda n: dict(withdrawn("w1", "2025-10-02 09:00"), reason="r" * n),
     MAX_TEXT_CHARS, "reason"),
    ("service name", lambda n: accepted(service_name="名" * n), MAX_TEXT_CHARS,
     "service_name"),
    ("applicant name", lambda n: _party(accepted(), "applicant", name="n" * n),
     MAX_TEXT_CHARS, "applicant.name"),
    ("holder name", lambda n: _party(material(), "holder", name="n" * n), MAX_TEXT_CHARS,
     "holder.name"),
    ("task name", lambda n: accepted(tasks=[("T1", "scjgj", "n" * n)]), MAX_TEXT_CHARS,
     "tasks[0].name"),
    ("material name", lambda n: material(name="n" * n), MAX_TEXT_CHARS, "name"),
    ("service code", lambda n: accepted(service_code="S" * n), MAX_CODE_CHARS,
     "service_code"),
    ("window", lambda n: accepted(window_id="W" * n), MAX_CODE_CHARS, "window_id"),
    ("declared task id", lambda n: accepted(tasks=[("T" * n, "scjgj", "x")]),
     MAX_CODE_CHARS, "tasks[0].task_id"),
    ("task id", lambda n: task("e1", "T" * n, "RECEIVED", "2025-10-01 09:00"),
     MAX_CODE_CHARS, "task_id"),
    ("material id", lambda n: material(material_id="m" * n), MAX_CODE_CHARS, "material_id"),
    ("document number", lambda n: material(document_number="d" * n), MAX_CODE_CHARS,
     "document_number"),
    ("certificate id", lambda n: certificate(certificate_id="c" * n), MAX_CODE_CHARS,
     "certificate_id"),
    ("passport number", lambda n: _party(material(), "holder", id_type="PASSPORT",
                                         id_number="E" * n), MAX_CODE_CHARS,
     "holder.id_number"),
]


@pytest.mark.parametrize(("name", "build", "limit", "field"), EDGES,
                         ids=[e[0] for e in EDGES])
def test_each_size_limit_at_its_edge(name: str, build: Callable[[int], dict[str, Any]],
                                     limit: int, field: str) -> None:
    assert check(build(limit)) is None
    r = check(build(limit + 1))
    assert r is not None and r.reason == TOO_LARGE, r
    assert r.detail.startswith(field) and str(limit) in r.detail


@given(st.integers(min_value=0, max_value=2 * MAX_TEXT_CHARS),
       st.sampled_from(["a", "注", "\0", "😀", '"']))
def test_a_note_is_too_large_exactly_when_over_the_limit(n: int, char: str) -> None:
    ev = task("e1", "T1", "RECEIVED", "2025-10-01 09:00", note=char * n)
    assert (reason(ev) == TOO_LARGE) == (n > MAX_TEXT_CHARS)
    if n <= MAX_TEXT_CHARS:
        assert reason(ev) is None


def test_json_size_counts_escapes() -> None:
    """64 declared values of 2,000 NULs are within every field limit, but 768 KB as
    JSON: refused; the same of plain letters is fine."""
    plain = material(declared_fields=_declared(MAX_DECLARED_FIELDS, "a" * 2_000))
    assert check(plain) is None
    nuls = material(declared_fields=_declared(MAX_DECLARED_FIELDS, "\0" * 2_000))
    r = check(nuls)
    assert r is not None and r.reason == TOO_LARGE and r.detail.startswith("event:")


def test_json_size_at_its_edge() -> None:
    nul = "\0" * MAX_DECLARED_VALUE_CHARS  # 12,002 bytes as JSON
    n = 40
    while _json_size(material(declared_fields=_declared(n + 1, nul))) < MAX_JSON_BYTES:
        n += 1
    base = material(declared_fields=_declared(n, nul))
    gap = MAX_JSON_BYTES - _json_size(base) - len(json.dumps("kx")) - len(json.dumps(""))
    m, r = divmod(gap, 6)
    assert m <= MAX_DECLARED_VALUE_CHARS
    at = dict(base, declared_fields=dict(base["declared_fields"], kx="\0" * m),
              name=base["name"] + "a" * r)
    assert _json_size(at) == MAX_JSON_BYTES
    assert check(at) is None
    over = dict(at, name=at["name"] + "a")
    r2 = check(over)
    assert r2 is not None and r2.reason == TOO_LARGE and str(MAX_JSON_BYTES + 1) in r2.detail


def _all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _all_strings(k) + _all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _all_strings(v)]
    return []


def _json_size(ev: dict[str, Any]) -> int:
    return sum(len(json.dumps(s)) for s in _all_strings(ev))


def test_too_large_comes_after_the_sender_and_before_the_content() -> None:
    big = accepted(tasks=_tasks(MAX_TASKS + 1) + [("X", "nope", "x")], amount=-1)
    assert reason(big) == TOO_LARGE  # not UNKNOWN_DEPARTMENT of a task, not INVALID_FIELD
    assert reason(dict(big, department="nope")) == UNKNOWN_DEPARTMENT
    assert reason(dict(big, department="scjgj")) == UNAUTHORISED


def test_a_field_of_the_wrong_type_is_invalid_not_too_large() -> None:
    assert reason(accepted() | {"tasks": "T" * 10_000}) == INVALID_FIELD
    assert reason(task("e1", "T1", "RECEIVED", "2025-10-01 09:00", note=["x"] * 5000)) \
        == INVALID_FIELD


def test_occurred_at_before_2000_is_invalid() -> None:
    at = EARLIEST_OCCURRED_AT
    assert check(task("e1", "T1", "RECEIVED", "2025-10-01 09:00") | {"occurred_at": at}) \
        is None
    early = at - timedelta(milliseconds=1)
    r = check(task("e1", "T1", "RECEIVED", "2025-10-01 09:00") | {"occurred_at": early})
    assert r is not None and r.reason == INVALID_FIELD and r.detail.startswith("occurred_at")
    # 1999-12-31 20:00 UTC is 2000-01-01 04:00 in Shanghai: plausible
    utc = datetime.fromisoformat("1999-12-31T20:00:00+00:00")
    assert check(accepted() | {"occurred_at": utc}) is None


@pytest.mark.parametrize("unit", ["WORKING_DAY", "NATURAL_DAY", "HOUR"])
def test_promise_at_its_edge(unit: str) -> None:
    limit = MAX_PROMISE[unit]
    assert check(accepted(amount=limit, unit=unit)) is None
    r = check(accepted(amount=limit + 1, unit=unit))
    assert r is not None and r.reason == INVALID_FIELD and r.detail.startswith("promise.amount")


def test_the_issue_events_are_too_large() -> None:
    """Issue 13: a CaseAccepted with a 1 MB name; an update whose note is 200 KB of NULs."""
    big = accepted(service_name="名" * 350_000)
    nul = task("e1", "T1", "RECEIVED", "2025-10-01 09:00", note="\0" * 200_000)
    assert reason(big) == TOO_LARGE and reason(nul) == TOO_LARGE
