"""The case-state step, free of Faust: records in, table writes and output records out.

The Faust agent (`stream_apps.app`) is a thin shell around `CaseProcessor.process`:
it hands over a batch of raw records and a way to read the table, then writes what
comes back. Keeping the step here lets the same code run in tests, in the benchmark
and in the batch rebuild, and keeps every rule in the pure domain.

Every consumed record ends as exactly one of: applied, ignored as a duplicate, or
dead-lettered with a reason (domain.md section 2).

The checks, in order: decode (``UNDECODABLE``, ``UNKNOWN_SCHEMA``); the event's rules
(`onewindow.domain.validation.validate`, with the topic's owner and the counter
departments); the record key must be the ``case_id`` (``INVALID_FIELD``); the record
must be on the partition its key belongs to (``WRONG_PARTITION``,
`onewindow.topics.partition_for`); then the fold (duplicate, ``EVENT_ID_CONFLICT``).
The partition comes after what the event says and after its key (a key that is not the
case_id is wrong wherever it lies, and the partition is a function of the key) and before
the fold, which would read and write the state of the wrong partition's store.
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
from onewindow.domain.validation import INVALID_FIELD, WRONG_PARTITION, validate
from onewindow.errors import DecodeError
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics, partition_for
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
    #: an applied TaskUpdated from another department than its task's owner (section 3)
    out_of_role: bool = False


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
    """Decode, validate, de-duplicate and fold a batch of input records.

    ``departments``: the registered codes; ``counters``: those whose role is ``counter``
    (`Registry.counter_codes`, for ``UNAUTHORISED``); ``partitions``: the partition count
    of the (co-partitioned) input topics, for ``WRONG_PARTITION``, or ``None`` where the
    records do not come from those topics as partitioned (then it is not checked).
    ``ids``: the keyed hash of ID numbers (``Settings.id_hash_key``): right after the
    checks, every event is replaced by its protected form
    (`onewindow.domain.protection.protect_event`), so the fold, the table, its changelog
    and every output carry ID numbers only as the keyed hash and the mask; only the
    dead-letter topic keeps the original bytes.
    """

    def __init__(self, *, codec: Codec, topics: Topics, departments: Iterable[str],
                 counters: Iterable[str], calendar: WorkingCalendar, ids: IdProtector,
                 partitions: int | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.codec = codec
        self.topics = topics
        self.departments = frozenset(departments)
        self.counters = frozenset(counters)
        self.calendar = calendar
        self.ids = ids
        self.partitions = partitions
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
                             now=now, counters=self.counters)
        if rejection is not None:
            self._dead(rec, rejection.reason, rejection.detail, owner, etype, result)
            return
        case_id = event["case_id"]
        key = case_id.encode("utf-8")
        if rec.key != key:
            self._dead(rec, INVALID_FIELD,
                       f"record key {rec.key!r} must be the event's case_id {case_id!r}",
                       owner, etype, result)
            return
        if self.partitions is not None:
            home = partition_for(key, self.partitions)
            if rec.partition != home:
                self._dead(rec, WRONG_PARTITION,
                           f"key {rec.key!r} belongs to partition {home} of "
                           f"{self.partitions}, found on partition {rec.partition}",
                           owner, etype, result)
                return
        # The checks needed the plaintext (check digits); from here on only the protected
        # form exists: the fold, its fingerprint (the keyed hash is deterministic, so equal
        # events stay equal and different numbers different), the table and the outputs.
        plain, event = event, self.ids.protect_event(event)
        state = live.get(case_id)
        if state is None:
            raw = load(case_id, rec)
            state = CaseState.from_bytes(raw) if raw is not None else CaseState(case_id)
            live[case_id] = state
        outcome = state.apply(event, event_fingerprint(event))
        if (outcome is Outcome.EVENT_ID_CONFLICT
                and state.seen.get(str(event["event_id"])) == event_fingerprint(plain)):
            # stored by a worker that fingerprinted the plain form: the same event
            outcome = Outcome.DUPLICATE
        if outcome is Outcome.EVENT_ID_CONFLICT:
            self._dead(rec, "EVENT_ID_CONFLICT",
                       f"event_id {event['event_id']!r} was applied before in case "
                       f"{case_id!r} with different content", owner, etype, result)
            return
        # A duplicate re-emits its activity and the current state: after a crash the
        # state may have been saved while the outputs were not, and the sinks upsert.
        changed[case_id] = (rec, event["event_id"])
        out_of_role = state.is_out_of_role(event)
        result.outputs.append(self._activity_record(event, state, rec, out_of_role,
                                                    event_json=self._event_json(plain)))
        applied = outcome is Outcome.APPLIED
        result.tallies.append(Tally(owner, etype, APPLIED if applied else DUPLICATE,
                                    out_of_role=applied and out_of_role))

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

    def _event_json(self, plain: dict[str, Any]) -> str:
        """The JSON form of an event, protected (`onewindow.domain.protection`)."""
        return json.dumps(self.ids.protect_event(self.codec.to_json(plain)),
                          ensure_ascii=False, separators=(",", ":"))

    def _activity_record(self, event: Mapping[str, Any], state: CaseState,
                         rec: InRecord, out_of_role: bool = False, *,
                         event_json: str) -> OutRecord:
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
            "event_json": event_json,
            "source_topic": rec.topic,
            "source_partition": rec.partition,
            "source_offset": rec.offset,
            "source_timestamp": from_ms(rec.timestamp_ms),
            "out_of_role": out_of_role,
        })
        return OutRecord(self.topics.case_activity, rec.key, value)

    def _state_record(self, state: CaseState, rec: InRecord, event_id: str,
                      result: BatchResult) -> OutRecord:
        view = project(state, self.calendar)
        view["source_timestamp"] = from_ms(rec.timestamp_ms)
        view["last_event_id"] = event_id
        applicant = view["applicant"]
        if applicant is not None and applicant["id_number"] is not None:
            # a state stored by a worker that kept the acceptance record plain
            view.update(self.ids.protect_event(
                {k: view[k] for k in ("applicant", "service_name", "tasks")}))
        if view["due_provisional"]:
            result.provisional_states += 1
        return OutRecord(self.topics.case_state, rec.key,
                         self.codec.encode_record("CaseState", view))
