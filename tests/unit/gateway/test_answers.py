"""gateway.answers: each event's answer before and after the broker (pure), and the
answer cache (an LRU with a time to live)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.answers import (
    ACCEPTED,
    DUPLICATE,
    REJECTED,
    Answer,
    AnswerCache,
    Known,
    Ready,
    Send,
    Wait,
    plan,
    prepare,
    request_digest,
)
from gateway.parsing import JSON, JSONL, split_body
from onewindow.codec import get_codec
from onewindow.departments import load_registry

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
REGISTRY = load_registry()


def task(event_id: str, **over: Any) -> dict[str, Any]:
    return {"type": "TaskUpdated", "event_id": event_id, "case_id": "GZ1",
            "department": "scjgj", "occurred_at": "2026-03-02T09:15:00+08:00",
            "task_id": "GZ1-SCJG", "status": "RECEIVED", **over}


def run_prepare(values: list[Any], department: str = "scjgj") -> list[Ready | Answer]:
    from gateway.parsing import RawEvent  # noqa: PLC0415 - local to the helper
    return prepare([RawEvent(i, value=v) for i, v in enumerate(values)],
                   department=department, departments=REGISTRY.codes,
                   counters=REGISTRY.counter_codes, now=NOW, codec=get_codec())


def test_every_rule_runs_before_anything_is_sent_and_names_the_field() -> None:
    accepted = {"type": "CaseAccepted", "event_id": "a1", "case_id": "GZ1",
                "department": "scjgj", "occurred_at": "2026-03-02T09:00:00+08:00",
                "service_code": "S", "service_name": "n", "case_kind": "JOINT",
                "channel": "COUNTER", "applicant": {"kind": "PERSON", "id_type": "RESIDENT_ID",
                                                    "id_number": "11010519491231002X",
                                                    "name": "x"},
                "promise": {"amount": 5, "unit": "WORKING_DAY"}, "tasks": []}
    items = run_prepare([
        task("e1"),
        task("e2", department="gaj"),                       # another department's event
        task("e3", case_id="has space"),
        task("e4", occurred_at="2026-03-02T12:00:00+08:00"),  # 2 h ahead of NOW
        task("e5", colour="red"),
        "not an object",
        accepted,                                           # scjgj is not the counter
        task("e6", note="x" * 5000),
        task("e7", department="nobody"),
    ])
    assert isinstance(items[0], Ready) and items[0].key == ("scjgj", "GZ1", "e1")
    got = [(a.index, a.event_id, a.reason, a.detail.split(":")[0])
           for a in items[1:] if isinstance(a, Answer)]
    assert got == [(1, "e2", "DEPARTMENT_MISMATCH", "department"),
                   (2, "e3", "INVALID_FIELD", "case_id"),
                   (3, "e4", "FUTURE_TIMESTAMP", "occurred_at"),
                   (4, "e5", "INVALID_FIELD", "colour"),
                   (5, None, "INVALID_FIELD", "(event)"),
                   (6, "a1", "UNAUTHORISED", "department"),
                   (7, "e6", "TOO_LARGE", "note"),
                   (8, "e7", "UNKNOWN_DEPARTMENT", "department")]
    assert all(isinstance(a, Answer) and a.status == REJECTED for a in items[1:])
    # the counter may accept cases; an ID number quoted in a detail is masked
    [ok] = run_prepare([accepted | {"department": "zwfw"}], "zwfw")
    assert isinstance(ok, Ready)
    [bad] = run_prepare([task("e8", case_id="110105199003071239 x")])
    assert isinstance(bad, Answer) and "110105199003071239" not in (bad.detail or "")


def test_an_unreadable_line_is_rejected_undecodable_with_its_line() -> None:
    raws = split_body(b'{"type": "TaskUpdated"\n', JSONL)
    [answer] = prepare(raws, department="scjgj", departments=REGISTRY.codes,
                       counters=REGISTRY.counter_codes, now=NOW, codec=get_codec())
    assert isinstance(answer, Answer)
    assert (answer.status, answer.reason, answer.line) == (REJECTED, "UNDECODABLE", 1)


def test_plan_duplicates_conflicts_and_replays() -> None:
    items = run_prepare([task("e1"), task("e2"), task("e1"), task("e2", note="other"),
                         task("e3"), task("e4"), task("e5")])
    e1 = items[0]
    assert isinstance(e1, Ready)
    digest = b"r" * 16
    seen = {("scjgj", "GZ1", "e3"): Known(items[4].fingerprint, digest),  # type: ignore[union-attr]
            ("scjgj", "GZ1", "e4"): Known("someone else's content", digest),
            ("scjgj", "GZ1", "e5"): Known(items[6].fingerprint, b"o" * 16,  # type: ignore[union-attr]
                                          pending=True)}
    steps = plan(items, request=digest, known=seen.get).steps
    assert isinstance(steps[0], Send) and isinstance(steps[1], Send)
    assert steps[2] == Answer(2, DUPLICATE, "e1")           # earlier in this request
    assert isinstance(steps[3], Answer) and steps[3].reason == "EVENT_ID_CONFLICT"
    assert steps[4] == Answer(4, ACCEPTED, "e3")            # this request published it
    assert isinstance(steps[5], Answer) and steps[5].reason == "EVENT_ID_CONFLICT"
    assert steps[6] == Wait(6, ("scjgj", "GZ1", "e5"), DUPLICATE)  # another's, in flight
    other = plan(items, request=b"x" * 16, known=seen.get).steps
    assert other[4] == Answer(4, DUPLICATE, "e3")            # another request published it


def test_event_ids_are_scoped_to_their_case() -> None:
    """domain.md: an event id is checked within its case, as the stream worker does."""
    items = run_prepare([task("e1"), task("e1", case_id="GZ2")])
    steps = plan(items, request=b"d" * 16, known=lambda _k: None).steps
    assert all(isinstance(s, Send) for s in steps)


def test_a_request_is_the_same_whatever_its_form() -> None:
    events = [task("e1"), {"not": "an event"}, task("e2")]
    as_array = split_body(__import__("json").dumps(events).encode(), JSON)
    as_lines = split_body(b"\n".join(
        __import__("json").dumps(e, indent=None, separators=(", ", " : ")).encode()
        for e in events), JSONL)

    def digest(raws: list[Any]) -> bytes:
        items = prepare(raws, department="scjgj", departments=REGISTRY.codes,
                        counters=REGISTRY.counter_codes, now=NOW, codec=get_codec())
        return request_digest("scjgj", items, raws)

    assert digest(as_array) == digest(as_lines)
    assert digest(as_array) != digest(as_array[:2])
    assert digest(split_body(b"[" + b"".join([b"{}"]) + b"]", JSON)) != digest(as_array)


def test_the_cache_forgets_the_least_recently_used_and_the_expired() -> None:
    t = [0.0]
    cache = AnswerCache(2, 60.0, clock=lambda: t[0])
    k = [("d", "c", str(i)) for i in range(3)]
    cache.put(k[0], Known("f0", b""))
    cache.put(k[1], Known("f1", b""))
    assert cache.get(k[0]) == Known("f0", b"")  # k0 used: k1 is the least recent now
    cache.put(k[2], Known("f2", b""))
    assert cache.get(k[1]) is None and cache.get(k[0]) is not None and len(cache) == 2
    t[0] = 61.0
    assert cache.get(k[0]) is None and len(cache) == 0


def test_an_event_put_again_lives_from_its_last_put() -> None:
    t = [0.0]
    cache = AnswerCache(3, 60.0, clock=lambda: t[0])
    key = ("d", "c", "e")
    cache.put(key, Known("f", b"r1"))
    t[0] = 50.0
    cache.put(key, Known("f", b"r2"))  # acknowledged again (published again after a loss)
    t[0] = 100.0  # past the first put's time, not the second's
    assert cache.get(key) == Known("f", b"r2") and len(cache) == 1
    t[0] = 110.0
    assert cache.get(key) is None and len(cache) == 0
    for i in range(5000):  # many more puts than entries
        cache.put(("d", "c", str(i % 7)), Known("f", b""))
    assert len(cache) == 3

@pytest.mark.parametrize("n", [1, 100])
def test_prepared_records_are_what_the_sdk_would_send(n: int) -> None:
    codec = get_codec()
    items = run_prepare([task(f"e{i}") for i in range(n)])
    for i, item in enumerate(items):
        assert isinstance(item, Ready)
        assert item.record.key == b"GZ1"
        assert codec.decode(item.record.value)["event_id"] == f"e{i}"


def test_a_uscc_on_the_operators_list_is_accepted_as_the_worker_accepts_it() -> None:
    from onewindow.domain.identifiers import is_valid_uscc  # noqa: PLC0415

    bad = next(f"91440101MA5CXYW12{c}" for c in "0123456789ABCDEFGHJKLMNPQRTUWXY"
               if not is_valid_uscc(f"91440101MA5CXYW12{c}"))
    event = material_of(bad)
    [refused] = run_prepare([event])
    assert isinstance(refused, Answer) and refused.reason == "INVALID_ID_NUMBER"
    [ok] = prepare(split_body(__import__("json").dumps([event]).encode(), JSON),
                   department="scjgj", departments=REGISTRY.codes,
                   counters=REGISTRY.counter_codes, now=NOW, codec=get_codec(),
                   uscc_exceptions=frozenset({bad}))
    assert isinstance(ok, Ready)


def material_of(uscc: str) -> dict[str, Any]:
    return {"type": "MaterialSubmitted", "event_id": "m1", "case_id": "GZ1",
            "department": "scjgj", "occurred_at": "2026-03-02T09:15:00+08:00",
            "material_id": "m1", "material_type": "BUSINESS_LICENSE", "name": "营业执照",
            "holder": {"id_type": "USCC", "id_number": uscc, "name": "某公司"},
            "sha256": "ab" * 32, "pages": 1, "size_bytes": 10, "form": "COPY",
            "declared_fields": {}}
