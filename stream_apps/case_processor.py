"""The case-state step, free of Faust: records in, table writes and output records out.

The Faust agent (`stream_apps.app`) is a thin shell around `CaseProcessor.process`:
it hands over a batch of raw records and a way to read the table, then writes what
comes back. Keeping the step here lets the same code run in tests, in the benchmark
and in the batch rebuild, and keeps every rule in the pure domain.

Every consumed record ends as exactly one of: applied, ignored as a duplicate, or
dead-lettered with a reason (domain.md section 2).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from onewindow.codec import Codec
from onewindow.domain.calendar import WorkingCalendar
from onewindow.domain.case import CaseState, Outcome, event_fingerprint, project
from onewindow.domain.clock import from_ms
from onewindow.domain.validation import validate
from onewindow.errors import DecodeError
from onewindow.topics import Topics
from stream_apps.records import InRecord, OutRecord

APPLIED = "applied"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"


@dataclass(slots=True)
class Tally:
    """What happened to one record, for metrics."""

    department: str
    event_type: str
    result: str
    reason: str | None = None


@dataclass
class BatchResult:
    #: case_id -> the new encoded fold state, and the record that last changed it
    states: dict[str, tuple[bytes, InRecord]] = field(default_factory=dict)
    #: output records in the order they were produced
    outputs: list[OutRecord] = field(default_factory=list)
    tallies: list[Tally] = field(default_factory=list)
    #: case states emitted whose deadline is provisional (a date outside every known
    #: holiday schedule was consulted: domain.md section 4 wants a metric for it)
    provisional_states: int = 0


class CaseProcessor:
    """Decode, validate, de-duplicate and fold a batch of input records."""

    def __init__(self, *, codec: Codec, topics: Topics, departments: Iterable[str],
                 calendar: WorkingCalendar,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.codec = codec
        self.topics = topics
        self.departments = frozenset(departments)
        self.calendar = calendar
        self.clock = clock

    def process(self, records: Iterable[InRecord],
                load: Callable[[str, InRecord], bytes | None]) -> BatchResult:
        """`load(case_id, record)` reads the stored fold state of a case; the record is the
        one being processed, so a partitioned store knows where to look."""
        result = BatchResult()
        now = self.clock()
        live: dict[str, CaseState] = {}
        changed: dict[str, tuple[InRecord, str]] = {}
        for rec in records:
            self._one(rec, now, load, live, changed, result)
        for case_id, (rec, event_id) in changed.items():
            state = live[case_id]
            result.states[case_id] = (state.to_bytes(), rec)
            result.outputs.append(self._state_record(state, rec, event_id, result))
        return result

    def _one(self, rec: InRecord, now: datetime, load: Callable[[str, InRecord], bytes | None],
             live: dict[str, CaseState], changed: dict[str, tuple[InRecord, str]],
             result: BatchResult) -> None:
        owner = self.topics.department_of(rec.topic) or "unknown"
        try:
            if rec.value is None:
                raise DecodeError("UNDECODABLE", "record has no value (tombstone)")
            event = self.codec.decode(rec.value)
        except DecodeError as exc:
            self._dead(rec, exc.reason, str(exc), owner, "unknown", result)
            return
        etype = str(event.get("type", "unknown"))
        rejection = validate(event, topic_department=owner, departments=self.departments,
                             now=now)
        if rejection is not None:
            self._dead(rec, rejection.reason, rejection.detail, owner, etype, result)
            return
        case_id = event["case_id"]
        if rec.key != case_id.encode("utf-8"):
            self._dead(rec, "INVALID_FIELD",
                       f"record key {rec.key!r} must be the event's case_id {case_id!r}",
                       owner, etype, result)
            return
        state = live.get(case_id)
        if state is None:
            raw = load(case_id, rec)
            state = CaseState.from_bytes(raw) if raw is not None else CaseState(case_id)
            live[case_id] = state
        outcome = state.apply(event, event_fingerprint(event))
        if outcome is Outcome.EVENT_ID_CONFLICT:
            self._dead(rec, "EVENT_ID_CONFLICT",
                       f"event_id {event['event_id']!r} was applied before in case "
                       f"{case_id!r} with different content", owner, etype, result)
            return
        # A duplicate re-emits its activity and the current state: after a crash the
        # state may have been saved while the outputs were not, and the sinks upsert.
        changed[case_id] = (rec, event["event_id"])
        result.outputs.append(self._activity_record(event, state, rec))
        result.tallies.append(Tally(owner, etype, APPLIED if outcome is Outcome.APPLIED
                                    else DUPLICATE))

    def _dead(self, rec: InRecord, reason: str, detail: str, department: str, etype: str,
              result: BatchResult) -> None:
        value = self.codec.encode_record("DeadLetter", {
            "original": rec.value or b"",
            "key": rec.key,
            "source_topic": rec.topic,
            "source_partition": rec.partition,
            "source_offset": rec.offset,
            "reason": reason,
            "detail": detail[:2000],
            "department": department,
            "dead_lettered_at": self.clock(),
        })
        result.outputs.append(OutRecord(self.topics.dead_letters, rec.key, value))
        result.tallies.append(Tally(department, etype, DEAD_LETTERED, reason))

    def _activity_record(self, event: Mapping[str, Any], state: CaseState,
                         rec: InRecord) -> OutRecord:
        value = self.codec.encode_record("CaseActivity", {
            "case_id": event["case_id"],
            "event_id": event["event_id"],
            "event_type": event["type"],
            "department": event["department"],
            "occurred_at": event["occurred_at"],
            "version": state.version,
            "task_id": event.get("task_id"),
            "status": event.get("status"),
            "material_id": event.get("material_id") or event.get("certificate_id"),
            "event_json": json.dumps(self.codec.to_json(event), ensure_ascii=False,
                                     separators=(",", ":")),
            "source_topic": rec.topic,
            "source_partition": rec.partition,
            "source_offset": rec.offset,
            "source_timestamp": from_ms(rec.timestamp_ms),
        })
        return OutRecord(self.topics.case_activity, rec.key, value)

    def _state_record(self, state: CaseState, rec: InRecord, event_id: str,
                      result: BatchResult) -> OutRecord:
        view = project(state, self.calendar)
        view["source_timestamp"] = from_ms(rec.timestamp_ms)
        view["last_event_id"] = event_id
        if view["due_provisional"]:
            result.provisional_states += 1
        return OutRecord(self.topics.case_state, rec.key,
                         self.codec.encode_record("CaseState", view))
