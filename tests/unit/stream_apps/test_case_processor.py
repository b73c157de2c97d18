"""CaseProcessor without Kafka: every record ends applied, duplicate or dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.domain.case import CaseState, bytes_fingerprint, fold, project
from onewindow.security.id_protection import IdProtector
from onewindow.security.protected_form import encode_protected
from onewindow.topics import Topics, partition_for
from stream_apps.case_processor import (
    APPLIED,
    DEAD_LETTERED,
    DUPLICATE,
    CaseProcessor,
)
from stream_apps.metrics import WorkerMetrics
from stream_apps.records import InRecord
from tests.unit.domain.helpers import accepted, t

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TOPICS = Topics("p.")
IDS = IdProtector("unit-test-id-hash-key-0123456789abcdef")


def protected(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events as the processor folds them: protected (no plaintext ID number)."""
    return [IDS.protect_event(e) for e in events]


def folded(events: list[dict[str, Any]]) -> CaseState:
    """The state the processor folds from ``events``: protected, each fingerprinted by its
    canonical Avro encoding (the bytes of its activity record's ``event``)."""
    state = CaseState()
    for event in protected(events):
        state.apply(event, bytes_fingerprint(encode_protected(get_codec(), event)))
    return state


def _processor(now: datetime = NOW, partitions: int | None = None) -> CaseProcessor:
    registry = load_registry()
    return CaseProcessor(codec=get_codec(), topics=TOPICS, departments=registry.codes,
                         counters=registry.counter_codes, calendar=load_calendar(),
                         ids=IDS, partitions=partitions, clock=lambda: now)


def _rec(event: dict[str, Any] | None, *, offset: int, topic_dept: str | None = None,
         value: bytes | None = None, key: bytes | None = None,
         partition: int = 0) -> InRecord:
    dept = topic_dept or (event["department"] if event else "zwfw")
    if value is None and event is not None:
        value = get_codec().encode(event)
    if key is None and event is not None:
        key = event["case_id"].encode()
    return InRecord(TOPICS.input(dept), partition, offset, key, value, 1_700_000_000_000)


def _task(event_id: str, status: str, at: str, dept: str = "scjgj") -> dict[str, Any]:
    return {"type": "TaskUpdated", "event_id": event_id, "case_id": "C-1", "department": dept,
            "occurred_at": t(at), "task_id": "T1", "status": status, "officer": None,
            "note": None}


def test_each_record_ends_in_exactly_one_outcome_with_its_reason() -> None:
    acc = accepted()
    good = _task("e2", "RECEIVED", "2025-10-09 09:00")
    conflict = dict(good, status="IN_REVIEW")
    spoof = _task("e3", "IN_REVIEW", "2025-10-09 10:00", dept="gaj")
    future = _task("e4", "IN_REVIEW", "2026-01-05 20:30")  # NOW is 20:00 in Shanghai
    badid = dict(accepted("e5"), applicant=dict(acc["applicant"], id_number="91440101MA5CXYW124"))
    records = [
        _rec(acc, offset=0),
        _rec(good, offset=1),
        _rec(good, offset=2),                                   # duplicate
        _rec(conflict, offset=3),                               # same id, other content
        _rec(spoof, offset=4, topic_dept="scjgj"),              # gaj event on scjgj's topic
        _rec(future, offset=5),
        _rec(badid, offset=6),
        _rec(None, offset=7, value=b"\xc3\x01garbage", key=b"C-1"),
        _rec(None, offset=8, value=b"not avro at all", key=b"C-1"),
        _rec(None, offset=9, value=b"\xc3\x01" + b"\0" * 8 + b"x", key=b"C-1"),
        _rec(_task("e6", "IN_REVIEW", "2025-10-09 11:00"), offset=10, key=b"other-case"),
    ]
    result = _processor().process(records, lambda _c, _r: None)
    outcomes = [(t.result, t.reason) for t in result.tallies]
    assert outcomes == [
        (APPLIED, None), (APPLIED, None), (DUPLICATE, None),
        (DEAD_LETTERED, "EVENT_ID_CONFLICT"), (DEAD_LETTERED, "DEPARTMENT_MISMATCH"),
        (DEAD_LETTERED, "FUTURE_TIMESTAMP"), (DEAD_LETTERED, "INVALID_ID_NUMBER"),
        (DEAD_LETTERED, "UNDECODABLE"), (DEAD_LETTERED, "UNDECODABLE"),
        (DEAD_LETTERED, "UNKNOWN_SCHEMA"), (DEAD_LETTERED, "INVALID_FIELD"),
    ]
    dead = [get_codec().decode_record(o.value) for o in result.outputs
            if o.topic == TOPICS.dead_letters]
    assert [d["source_offset"] for d in dead] == [3, 4, 5, 6, 7, 8, 9, 10]
    assert dead[4]["original"] == b"\xc3\x01garbage"
    assert all(d["source_topic"].startswith("p.dept.") for d in dead)
    state_bytes, _ = result.states["C-1"]
    assert CaseState.from_bytes(state_bytes) == folded([acc, good])


def test_state_is_written_once_per_case_and_carried_across_batches() -> None:
    proc = _processor()
    store: dict[str, bytes] = {}
    events = [accepted(), _task("e2", "RECEIVED", "2025-10-09 09:00"),
              _task("e3", "APPROVED", "2025-10-10 09:00")]
    for i, e in enumerate(events):
        res = proc.process([_rec(e, offset=i)], lambda c, _r: store.get(c))
        for cid, (state, _r) in res.states.items():
            store[cid] = state
    res = proc.process([_rec(events[1], offset=9)], lambda c, _r: store.get(c))
    assert [x.result for x in res.tallies] == [DUPLICATE]
    # the duplicate re-emits the current state (outputs are upserts downstream)
    states = [get_codec().decode_record(o.value) for o in res.outputs
              if o.topic == TOPICS.case_state]
    expected = project(fold(protected(events)), load_calendar())
    assert len(states) == 1
    assert {k: v for k, v in states[0].items() if k in expected} == expected


def test_batch_emits_one_state_per_changed_case_and_one_activity_per_event() -> None:
    events = [accepted(), _task("e2", "RECEIVED", "2025-10-09 09:00"),
              _task("e3", "IN_REVIEW", "2025-10-09 10:00")]
    res = _processor().process([_rec(e, offset=i) for i, e in enumerate(events)],
                               lambda _c, _r: None)
    topics = [o.topic for o in res.outputs]
    assert topics.count(TOPICS.case_activity) == 3
    assert topics.count(TOPICS.case_state) == 1
    acts = [get_codec().decode_record(o.value) for o in res.outputs
            if o.topic == TOPICS.case_activity]
    assert [a["version"] for a in acts] == [1, 2, 3]
    assert acts[0]["source_timestamp"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_provisional_deadlines_are_counted_and_the_last_event_named() -> None:
    known = accepted()                                   # 2025: in chinesecalendar
    unknown = accepted("acc-2027", at="2027-03-01 10:00", case_id="C-2027")
    later = datetime(2027, 6, 1, tzinfo=UTC)  # 2027 is not yet in the official schedule
    res = _processor(later).process([_rec(known, offset=0), _rec(unknown, offset=1)],
                               lambda _c, _r: None)
    assert res.provisional_states == 1
    states = {s["case_id"]: s for s in (get_codec().decode_record(o.value)
                                        for o in res.outputs if o.topic == TOPICS.case_state)}
    assert states["C-2027"]["due_provisional"] and not states["C-1"]["due_provisional"]
    assert states["C-1"]["last_event_id"] == "acc-1"
    metrics = WorkerMetrics()
    metrics.count(res.tallies, res.provisional_states)
    assert metrics.registry.get_sample_value("onewindow_deadlines_provisional_total") == 1


def test_invalid_and_conflicting_records_are_dead_lettered_every_time() -> None:
    """domain.md section 2: the rules come before the duplicate check, so an invalid
    record sent again is dead-lettered again, never ignored as a duplicate; a
    conflicting record stays a conflict (the first in partition order wins)."""
    good = _task("e2", "RECEIVED", "2025-10-09 09:00")
    conflict = dict(good, status="IN_REVIEW")
    bad = dict(_task("e3", "IN_REVIEW", "2025-10-09 10:00"), task_id="")
    records = [_rec(accepted(), offset=0), _rec(good, offset=1)]
    records += [_rec(r, offset=2 + i) for i, r in enumerate([bad, bad, conflict, conflict])]
    res = _processor().process(records, lambda _c, _r: None)
    assert [(t.result, t.reason) for t in res.tallies[2:]] == [
        (DEAD_LETTERED, "INVALID_FIELD"), (DEAD_LETTERED, "INVALID_FIELD"),
        (DEAD_LETTERED, "EVENT_ID_CONFLICT"), (DEAD_LETTERED, "EVENT_ID_CONFLICT")]


def _dead_letters(res: Any) -> list[dict[str, Any]]:
    return [get_codec().decode_record(o.value) for o in res.outputs
            if o.topic == TOPICS.dead_letters]


def test_a_record_on_another_partition_than_its_key_is_dead_lettered() -> None:
    """domain.md section 2, WRONG_PARTITION: the partition of a record must be
    partition_for(key, partitions) (interfaces.md, Kafka: partitioning)."""
    home = partition_for(b"C-1", 3)
    wrong = (home + 1) % 3
    acc = accepted()
    good = _task("e2", "RECEIVED", "2025-10-09 09:00")
    moved = _task("e3", "IN_REVIEW", "2025-10-09 10:00")
    records = [_rec(acc, offset=0, partition=home),
               _rec(moved, offset=0, partition=wrong),
               _rec(good, offset=1, partition=home),
               _rec(moved, offset=1, partition=wrong)]  # again: dead-lettered again
    res = _processor(partitions=3).process(records, lambda _c, _r: None)
    assert [(x.result, x.reason) for x in res.tallies] == [
        (APPLIED, None), (DEAD_LETTERED, "WRONG_PARTITION"), (APPLIED, None),
        (DEAD_LETTERED, "WRONG_PARTITION")]
    dead = _dead_letters(res)
    assert [(d["source_partition"], d["reason"]) for d in dead] == [
        (wrong, "WRONG_PARTITION")] * 2
    assert f"partition {home} of 3" in dead[0]["detail"]
    assert dead[0]["original"] == get_codec().encode(moved) and dead[0]["key"] == b"C-1"
    assert CaseState.from_bytes(res.states["C-1"][0]) == folded([acc, good])
    # Without a partition count (a caller not reading the partitioned topics) no check.
    res = _processor().process(records, lambda _c, _r: None)
    assert [x.result for x in res.tallies] == [APPLIED, APPLIED, APPLIED, DUPLICATE]


def test_the_order_of_the_checks_around_the_partition() -> None:
    """Decode, the event's rules and the key rule come first; the partition comes before
    the fold (a duplicate or a conflict on the wrong partition is WRONG_PARTITION)."""
    home = partition_for(b"C-1", 3)
    wrong = (home + 1) % 3
    good = _task("e2", "RECEIVED", "2025-10-09 09:00")
    spoof = _task("e3", "IN_REVIEW", "2025-10-09 10:00", dept="gaj")
    records = [
        _rec(accepted(), offset=0, partition=home),
        _rec(good, offset=1, partition=home),
        _rec(None, offset=0, value=b"not avro", key=b"C-1", partition=wrong),
        _rec(spoof, offset=1, topic_dept="scjgj", partition=wrong),
        _rec(good, offset=2, key=b"C-2", partition=wrong),  # key is not the case_id
        _rec(good, offset=3, partition=wrong),                # a duplicate, elsewhere
        _rec(dict(good, status="APPROVED"), offset=4, partition=wrong),  # a conflict
    ]
    res = _processor(partitions=3).process(records, lambda _c, _r: None)
    assert [x.reason for x in res.tallies[2:]] == [
        "UNDECODABLE", "DEPARTMENT_MISMATCH", "INVALID_FIELD", "WRONG_PARTITION",
        "WRONG_PARTITION"]


def test_only_the_counter_accepts_or_withdraws() -> None:
    """UNAUTHORISED with the registry's roles: zwfw is the counter, scjgj is not."""
    acc = accepted()
    by_dept = dict(accepted("acc-2"), department="scjgj")
    withdraw = {"type": "CaseWithdrawn", "event_id": "w1", "case_id": "C-1",
                "department": "gaj", "occurred_at": t("2025-10-09 09:00"), "reason": None}
    res = _processor().process([_rec(acc, offset=0), _rec(by_dept, offset=1),
                                _rec(withdraw, offset=2)], lambda _c, _r: None)
    assert [(x.result, x.reason, x.department) for x in res.tallies] == [
        (APPLIED, None, "zwfw"), (DEAD_LETTERED, "UNAUTHORISED", "scjgj"),
        (DEAD_LETTERED, "UNAUTHORISED", "gaj")]
    metrics = WorkerMetrics()
    metrics.count(res.tallies)
    assert metrics.registry.get_sample_value("onewindow_events_dead_lettered_total", {
        "department": "scjgj", "type": "CaseAccepted", "reason": "UNAUTHORISED"}) == 1


def test_out_of_role_updates_are_applied_marked_and_counted() -> None:
    """domain.md section 3: applied (version, timeline, marked), not counted towards the
    task, and counted in onewindow_task_updates_out_of_role_total{department}."""
    acc = accepted()  # T1 belongs to scjgj, T2 to zjj
    own = _task("e2", "IN_REVIEW", "2025-10-09 09:00")
    foreign = _task("e3", "APPROVED", "2025-10-09 10:00", dept="gaj")
    proc = _processor()
    store: dict[str, bytes] = {}
    acts: list[dict[str, Any]] = []
    metrics = WorkerMetrics()
    for i, batch in enumerate([[own, foreign], [foreign]]):  # the second is a replay
        res = proc.process([_rec(e, offset=2 * i + j) for j, e in enumerate(batch)],
                           lambda c, _r: store.get(c))
        store.update({c: v for c, (v, _r) in res.states.items()})
        acts += [get_codec().decode_record(o.value) for o in res.outputs
                 if o.topic == TOPICS.case_activity]
        metrics.count(res.tallies)
    assert [(a["event_id"], a["version"], a["out_of_role"]) for a in acts] == [
        ("e2", 1, False), ("e3", 2, True), ("e3", 2, True)]
    value = metrics.registry.get_sample_value
    assert value("onewindow_task_updates_out_of_role_total", {"department": "gaj"}) == 1
    assert value("onewindow_task_updates_out_of_role_total", {"department": "scjgj"}) is None
    # The acceptance record arrives last: it makes scjgj the owner of T1 and leaves the
    # state right; the activity already sent is not rewritten.
    res = proc.process([_rec(acc, offset=9)], lambda c, _r: store.get(c))
    state = [get_codec().decode_record(o.value) for o in res.outputs
             if o.topic == TOPICS.case_state][0]
    assert state["version"] == 3
    assert {tk["task_id"]: tk["status"] for tk in state["tasks"]} == {"T1": "IN_REVIEW",
                                                                       "T2": "PENDING"}
