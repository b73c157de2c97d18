"""Issue 13 in the case-state step: oversized records are dead letters that fit, no valid
record makes an output over the producer's limit, and a refused output dead-letters its
input (OUTPUT_FAILED) instead of stopping the worker."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.domain.limits import (
    MAX_CODE_CHARS,
    MAX_DECLARED_FIELDS,
    MAX_DECLARED_VALUE_CHARS,
    MAX_RECORD_BYTES,
    MAX_TASKS,
    MAX_TEXT_CHARS,
)
from onewindow.domain.validation import OUTPUT_FAILED, TOO_LARGE, validate
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics
from stream_apps.case_processor import APPLIED, DEAD_LETTERED, BatchResult, CaseProcessor
from stream_apps.output import OutputDeliveryError, OutputProducer
from stream_apps.records import MAX_OUTPUT_BYTES, InRecord, OutRecord
from tests.unit.domain.helpers import accepted, material, t

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TOPICS = Topics("p.")
IDS = IdProtector("unit-test-id-hash-key-0123456789abcdef")
CODEC = get_codec()


def _processor() -> CaseProcessor:
    registry = load_registry()
    return CaseProcessor(codec=CODEC, topics=TOPICS, departments=registry.codes,
                         counters=registry.counter_codes, calendar=load_calendar(),
                         ids=IDS, clock=lambda: NOW)


def _rec(value: bytes, *, offset: int, dept: str = "zwfw", key: bytes = b"C-1") -> InRecord:
    return InRecord(TOPICS.input(dept), 0, offset, key, value, 1_700_000_000_000)


def _run(*records: InRecord) -> BatchResult:
    return _processor().process(records, lambda _c, _r: None)


def _dead_letters(result: BatchResult) -> list[dict[str, Any]]:
    return [CODEC.decode_record(o.value, "DeadLetter") for o in result.outputs
            if o.topic == TOPICS.dead_letters]


def _update(event_id: str, case_id: str = "C-2", **extra: Any) -> dict[str, Any]:
    return {"type": "TaskUpdated", "event_id": event_id, "case_id": case_id,
            "department": "scjgj", "occurred_at": t("2025-10-09 09:00"), "task_id": "T1",
            "status": "RECEIVED", "officer": None, "note": None, **extra}


def test_record_size_edge_is_checked_before_decoding() -> None:
    key = b"C-1"
    at = _rec(b"x" * (MAX_RECORD_BYTES - len(key)), offset=0, key=key)
    over = _rec(b"x" * (MAX_RECORD_BYTES - len(key) + 1), offset=1, key=key)
    result = _run(at, over)
    assert [(t.result, t.reason) for t in result.tallies] == [
        (DEAD_LETTERED, "UNDECODABLE"), (DEAD_LETTERED, TOO_LARGE)]


def test_the_issue_events_end_as_dead_letters_and_the_next_is_applied() -> None:
    """A valid 1 MB CaseAccepted and a 200 KB update whose note is NULs, then a normal
    event of another case: two TOO_LARGE dead letters that fit, the third applied."""
    big = accepted(service_name="名" * 350_000)  # ~1.05 MB of UTF-8
    nul = _update("e1", case_id="C-1", note="\0" * 200_000)
    nxt = _update("e2")
    big_value = CODEC.encode(big)
    assert len(big_value) > 1_000_000
    result = _run(_rec(big_value, offset=0), _rec(CODEC.encode(nul), offset=1, dept="scjgj"),
                  _rec(CODEC.encode(nxt), offset=2, dept="scjgj", key=b"C-2"))
    assert [(t.result, t.reason) for t in result.tallies] == [
        (DEAD_LETTERED, TOO_LARGE), (DEAD_LETTERED, TOO_LARGE), (APPLIED, None)]
    assert all(len(o.value) + len(o.key or b"") < MAX_OUTPUT_BYTES for o in result.outputs)
    first, second = _dead_letters(result)
    # the 1 MB original is cut to what fits, and the detail names the whole
    assert big_value.startswith(first["original"]) and len(first["original"]) > 900_000
    assert hashlib.sha256(big_value).hexdigest() in first["detail"]
    assert str(len(big_value)) in first["detail"]
    assert (first["source_offset"], second["source_offset"]) == (0, 1)
    # the 200 KB one is kept whole
    assert second["original"] == CODEC.encode(nul)
    assert "note" in second["detail"] or "record" in second["detail"]
    assert set(result.states) == {"C-2"}


_CHARS = st.sampled_from(["\0", "\x1f", "😀", "名", '"', "a"])


def _text(limit: int) -> st.SearchStrategy[str]:
    return st.builds(lambda c, n: c * n, _CHARS, st.integers(0, limit))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_text(MAX_TEXT_CHARS), code=_text(MAX_CODE_CHARS),
       tasks=st.integers(0, MAX_TASKS), task_name=_text(MAX_TEXT_CHARS))
@example(name="\0" * MAX_TEXT_CHARS, code="\0" * MAX_CODE_CHARS, tasks=MAX_TASKS,
         task_name="\0" * 480)  # ~500 KiB as JSON: applied, the largest outputs
@example(name="😀" * MAX_TEXT_CHARS, code="😀" * MAX_CODE_CHARS, tasks=MAX_TASKS,
         task_name="😀" * 200)
@example(name="\0" * MAX_TEXT_CHARS, code="\0" * MAX_CODE_CHARS, tasks=MAX_TASKS,
         task_name="\0" * 600)  # over MAX_JSON_BYTES: TOO_LARGE
def test_no_valid_acceptance_makes_an_output_over_the_limit(
        name: str, code: str, tasks: int, task_name: str) -> None:
    """The worst cases under the limits (escape-heavy strings as long as allowed): either
    refused TOO_LARGE, or every output and the fold state fit, with room."""
    ev = accepted(service_name=name, service_code=code or "S", window_id=code,
                  tasks=[(f"T{i}{code}"[:MAX_CODE_CHARS], "scjgj", task_name)
                         for i in range(tasks)])
    ev["applicant"] = dict(ev["applicant"], name=name)
    _check_outputs(ev)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_text(MAX_DECLARED_VALUE_CHARS), n=st.integers(0, MAX_DECLARED_FIELDS),
       name=_text(MAX_TEXT_CHARS), code=_text(MAX_CODE_CHARS))
@example(value="\0" * 1_300, n=MAX_DECLARED_FIELDS, name="\0" * MAX_TEXT_CHARS,
         code="\0" * MAX_CODE_CHARS)
def test_no_valid_material_makes_an_output_over_the_limit(value: str, n: int, name: str,
                                                          code: str) -> None:
    ev = material(name=name, material_id=code or "m", document_number=code,
                  declared_fields={f"{i}{code}"[:MAX_CODE_CHARS]: value for i in range(n)})
    _check_outputs(ev)


def _check_outputs(ev: dict[str, Any]) -> None:
    result = _run(_rec(CODEC.encode(ev), offset=0, dept=ev["department"]))
    (tally,) = result.tallies
    if tally.result == DEAD_LETTERED:
        assert tally.reason == TOO_LARGE
    else:
        assert tally.result == APPLIED
    # a dead letter carries the original (up to ~980 KB); outputs of an applied event
    # have room to spare
    bound = MAX_OUTPUT_BYTES - 100 if tally.result == DEAD_LETTERED else 0.7 * MAX_OUTPUT_BYTES
    for out in result.outputs:
        assert len(out.value) + len(out.key or b"") <= bound, out.topic
    for state, _source in result.states.values():
        assert len(state) <= 0.7 * MAX_OUTPUT_BYTES


# --------------------------------------------------------------------- OUTPUT_FAILED


def _producer(failed: list[tuple[InRecord, str]]) -> OutputProducer:
    """A producer that never reaches a broker: only the client's own refusal is tested
    here (the broker's is in tests/integration/test_record_limits.py)."""
    processor = _processor()

    def on_failed(rec: InRecord, why: str) -> OutRecord:
        failed.append((rec, why))
        return processor.output_failed(rec, why)[0]

    return OutputProducer("127.0.0.1:9", client_id="unit", on_failed=on_failed,
                          config={"log_level": 0, "socket.connection.setup.timeout.ms": 1000})


def test_an_output_the_client_refuses_dead_letters_its_input() -> None:
    failed: list[tuple[InRecord, str]] = []
    output = _producer(failed)
    source = _rec(CODEC.encode(_update("e9")), offset=7, dept="scjgj", key=b"C-2")
    try:
        output.send_batch([OutRecord("p.out", b"C-2", b"x" * MAX_OUTPUT_BYTES, source=source),
                           OutRecord("p.out", b"C-2", b"y" * MAX_OUTPUT_BYTES, source=source),
                           OutRecord("p.out", b"C-2", b"fine", source=source)])
        assert [(r.offset, "MSG_SIZE_TOO_LARGE" in why or "too large" in why)
                for r, why in failed] == [(7, True)]  # one dead letter per input
        dead, tally = _processor().output_failed(source, "why")
        letter = CODEC.decode_record(dead.value, "DeadLetter")
        assert (letter["reason"], letter["source_offset"], letter["original"]) == (
            OUTPUT_FAILED, 7, source.value)
        assert (tally.department, tally.event_type, tally.reason) == (
            "scjgj", "TaskUpdated", OUTPUT_FAILED)
        with pytest.raises(OutputDeliveryError):  # no input to blame: the worker stops
            output.send_batch([OutRecord("p.out", None, b"x" * MAX_OUTPUT_BYTES)])
    finally:
        output._producer.purge()  # noqa: SLF001 - nothing to deliver in a unit test


@given(name=_text(MAX_TEXT_CHARS), tasks=st.integers(0, MAX_TASKS),
       task_name=_text(600))
@settings(max_examples=40, deadline=None)
def test_the_record_size_hint_never_changes_the_verdict(name: str, tasks: int,
                                                         task_name: str) -> None:
    """`validate(record_bytes=...)` skips the JSON walk for small records: same answer."""
    ev = accepted(service_name=name, tasks=[(f"T{i}", "scjgj", task_name)
                                            for i in range(tasks)])
    size = len(CODEC.encode(ev))
    registry = load_registry()
    kwargs: dict[str, Any] = {"topic_department": "zwfw", "departments": registry.codes,
                              "now": NOW, "counters": registry.counter_codes}
    assert validate(ev, record_bytes=size, **kwargs) == validate(ev, **kwargs)
