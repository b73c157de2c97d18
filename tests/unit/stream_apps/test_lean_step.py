"""The lean case-state step (issue 15) against a reference built the way the step was
built before it: every record through `validate`, the protected event fingerprinted as
canonical JSON (`event_fingerprint`), folded, its JSON form protected for the timeline.
Same outcomes, same reasons, same activities (as JSON), same case states; and what the
lean step adds (states kept between batches, counts in place) changes none of it."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.domain.case import CaseState, Outcome, event_fingerprint, fold, settle
from onewindow.domain.validation import validate
from onewindow.errors import DecodeError
from onewindow.security.id_protection import IdProtector
from onewindow.security.protected_form import activity_event_json
from onewindow.topics import Topics, partition_for
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from stream_apps.case_processor import (
    APPLIED,
    DEAD_LETTERED,
    DUPLICATE,
    CaseProcessor,
)
from stream_apps.metrics import WorkerMetrics
from stream_apps.records import InRecord
from tests.privacy_support import privacy_events

CODEC = get_codec()
TOPICS = Topics("lean.")
IDS = IdProtector("unit-test-id-hash-key-0123456789abcdef")
REGISTRY = load_registry()
CALENDAR = load_calendar()
NOW = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)
PARTITIONS = 3


def _processor() -> CaseProcessor:
    return CaseProcessor(codec=CODEC, topics=TOPICS, departments=REGISTRY.codes,
                         counters=REGISTRY.counter_codes, calendar=CALENDAR, ids=IDS,
                         partitions=PARTITIONS, clock=lambda: NOW)


def _record(event: dict[str, Any], offset: int, **change: Any) -> InRecord:
    key = event["case_id"].encode()
    fields = {"topic": TOPICS.input(event["department"]),
              "partition": partition_for(key, PARTITIONS), "offset": offset, "key": key,
              "value": CODEC.encode(event), "timestamp_ms": 1_760_000_000_000 + offset}
    return InRecord(**{**fields, **change})


def _stream(seed: int) -> list[InRecord]:
    """Scenario traffic and the privacy case, with re-sends, conflicting re-sends, events
    that break a rule, records on the wrong partition or with the wrong key, and bytes
    that do not decode, in an order that keeps each case's events mostly together."""
    rnd = random.Random(seed)
    cases = list(ScenarioGenerator(ScenarioConfig(seed=seed)).cases(rnd.randint(3, 6)))
    cases.append(privacy_events(f"GZPRIV{seed:04d}"))
    events = [e for c in cases for e in c]
    stream: list[InRecord] = []
    for event in events:
        roll = rnd.random()
        if roll < 0.08:  # the same event again, later
            events.append(event)
        elif roll < 0.12 and event["type"] == "TaskUpdated":  # the same id, other content
            events.append(dict(event, status="REJECTED" if event["status"] != "REJECTED"
                               else "APPROVED"))
        elif roll < 0.15:
            events.append(dict(event, occurred_at=NOW + timedelta(hours=1)))  # future
        elif roll < 0.17:
            events.append(dict(event, department="gaj" if event["department"] != "gaj"
                               else "zjj"))  # on another department's topic
    for i, event in enumerate(events):
        roll = rnd.random()
        if roll < 0.02:
            stream.append(_record(event, i, partition=(partition_for(
                event["case_id"].encode(), PARTITIONS) + 1) % PARTITIONS))
        elif roll < 0.04:
            stream.append(_record(event, i, key=b"another-case"))
        elif roll < 0.05:
            stream.append(_record(event, i, value=CODEC.encode(event)[:-2]))
        else:
            stream.append(_record(event, i))
    return stream


def _reference(stream: list[InRecord]) -> tuple[list[tuple[str, str | None]],
                                                 list[tuple[str, int, dict[str, Any]]],
                                                 dict[str, dict[str, Any]]]:
    """``(outcome of each record, (event_id, version, JSON form) of each activity, the
    final view of each case)``, the way the step worked before issue 15."""
    outcomes: list[tuple[str, str | None]] = []
    activities: list[tuple[str, int, dict[str, Any]]] = []
    states: dict[str, CaseState] = {}
    for rec in stream:
        owner = TOPICS.department_of(rec.topic)
        try:
            plain = CODEC.decode(rec.value or b"")
        except DecodeError as exc:
            outcomes.append((DEAD_LETTERED, exc.reason))
            continue
        rejection = validate(plain, topic_department=owner, departments=REGISTRY.codes,
                             now=NOW, counters=REGISTRY.counter_codes,
                             record_bytes=len(rec.value or b""))
        if rejection is not None:
            outcomes.append((DEAD_LETTERED, rejection.reason))
            continue
        if rec.key != plain["case_id"].encode():
            outcomes.append((DEAD_LETTERED, "INVALID_FIELD"))
            continue
        if rec.partition != partition_for(rec.key, PARTITIONS):
            outcomes.append((DEAD_LETTERED, "WRONG_PARTITION"))
            continue
        event = IDS.protect_event(plain)
        state = states.setdefault(plain["case_id"], CaseState(plain["case_id"]))
        outcome = state.apply(event, event_fingerprint(event))
        if outcome is Outcome.EVENT_ID_CONFLICT:
            outcomes.append((DEAD_LETTERED, "EVENT_ID_CONFLICT"))
            continue
        assert outcome is not Outcome.TOO_LARGE
        outcomes.append((APPLIED if outcome is Outcome.APPLIED else DUPLICATE, None))
        activities.append((event["event_id"], state.version,
                           IDS.protect_event(CODEC.to_json(plain))))
    return outcomes, activities, {c: settle(s, CALENDAR) for c, s in states.items()}


def _samples(metrics: WorkerMetrics) -> dict[tuple[str, tuple[Any, ...]], float]:
    return {(x.name, tuple(sorted(x.labels.items()))): x.value
            for family in metrics.registry.collect() for x in family.samples
            if x.name.startswith(("onewindow_events", "onewindow_deadlines_provisional",
                                  "onewindow_task_updates"))
            and not x.name.endswith("_created")}


def _lean(stream: list[InRecord], batch: int, *, lose_writes: bool = False
          ) -> tuple[list[Any], list[Any], dict[str, dict[str, Any]], Counter[Any],
                     tuple[WorkerMetrics, WorkerMetrics]]:
    processor = _processor()
    store: dict[str, bytes] = {}
    outcomes, activities, views = [], [], {}
    counts: Counter[Any] = Counter()
    in_place, one_by_one = WorkerMetrics(), WorkerMetrics()
    for n, i in enumerate(range(0, len(stream), batch)):
        result = processor.process(stream[i:i + batch], lambda c, _r: store.get(c))
        if not (lose_writes and n % 3 == 1):  # a batch whose table writes were lost
            store.update({c: data for c, (data, _r) in result.states.items()})
        outcomes += [(t.result, t.reason) for t in result.tallies]
        counts.update(result.counts)
        in_place.count_batch(result)
        one_by_one.count(result.tallies, result.provisional_states)
        for out in result.outputs:
            record = CODEC.decode_record(out.value)
            if out.topic == TOPICS.case_activity:
                activities.append((record["event_id"], record["version"],
                                   activity_event_json(CODEC, record)))
            elif out.topic == TOPICS.case_state:
                views[record["case_id"]] = record
    return outcomes, activities, views, counts, (in_place, one_by_one)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), batch=st.sampled_from([1, 7, 50, 1000]))
def test_the_lean_step_gives_what_the_step_gave(seed: int, batch: int) -> None:
    stream = _stream(seed)
    want_outcomes, want_activities, want_views = _reference(stream)
    outcomes, activities, views, counts, metrics = _lean(stream, batch)
    assert outcomes == want_outcomes
    assert activities == want_activities
    assert set(views) == set(want_views)
    for case_id, view in want_views.items():
        assert {k: v for k, v in views[case_id].items() if k in view} == view, case_id
    # counted in place: the same numbers as one record at a time
    assert sum(counts.values()) == len(stream)
    for (result, reason), n in Counter(outcomes).items():
        assert sum(v for k, v in counts.items() if (k[2], k[3]) == (result, reason)) == n
    in_place, one_by_one = metrics
    assert _samples(in_place) == _samples(one_by_one)
    assert sum(v for (name, _labels), v in _samples(in_place).items()
               if name == "onewindow_events_applied_total") == outcomes.count((APPLIED, None))


def test_a_batch_whose_table_writes_were_lost_is_folded_again_from_the_table() -> None:
    """The step keeps the states it wrote as objects for the next batch, but only while
    the table holds what it wrote: when a batch's writes were lost (the shell failed
    before storing them), the next batch starts from the bytes the table has."""
    stream = _stream(7)
    _outcomes, _activities, kept, _counts, _m = _lean(stream, 10, lose_writes=True)
    # the same batches folded by a step that keeps nothing between batches
    store: dict[str, bytes] = {}
    views: dict[str, dict[str, Any]] = {}
    for n, i in enumerate(range(0, len(stream), 10)):
        result = _processor().process(stream[i:i + 10], lambda c, _r: store.get(c))
        if n % 3 != 1:
            store.update({c: data for c, (data, _r) in result.states.items()})
        for out in result.outputs:
            if out.topic == TOPICS.case_state:
                record = CODEC.decode_record(out.value)
                views[record["case_id"]] = record
    assert kept == views
    assert kept != _lean(stream, 10)[2]  # the lost writes lost events: a real difference


def test_a_state_folded_by_an_older_worker_still_knows_its_events() -> None:
    """States stored before issue 15 hold fingerprints of the canonical JSON: a re-sent
    event is still a duplicate, a changed one still a conflict."""
    events = privacy_events("GZPRIVOLD1")
    legacy = fold([IDS.protect_event(e) for e in events[:3]])
    store = {"GZPRIVOLD1": legacy.to_bytes()}
    changed = dict(events[1], note="另一条备注")
    result = _processor().process([_record(events[1], 0), _record(changed, 1),
                                   _record(events[3], 2)], lambda c, _r: store.get(c))
    assert [(t.result, t.reason) for t in result.tallies] == [
        (DUPLICATE, None), (DEAD_LETTERED, "EVENT_ID_CONFLICT"), (APPLIED, None)]
