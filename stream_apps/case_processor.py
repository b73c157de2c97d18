"""The case-state step, free of Faust: records in, table writes and output records out.

The Faust agent (`stream_apps.app`) is a thin shell around `CaseProcessor.process`:
it hands over a batch of raw records and a way to read the table, then writes what
comes back. Keeping the step here lets the same code run in tests, in the benchmark
and in the batch rebuild, and keeps every rule in the pure domain.

Every consumed record ends as exactly one of: applied, ignored as a duplicate, or
dead-lettered with a reason (domain.md section 2).

The step is lean (issue 15, docs/benchmarks.md "The pure step"): each record is decoded
once; the rules are asked first of `onewindow.domain.validation.accepts` (a yes without a
detail; only a record it does not accept is reviewed by `validate`, which gives the
reason); the protected event is encoded once, canonically
(`onewindow.security.protected_form`), and those bytes are both its content fingerprint
(`onewindow.domain.case.bytes_fingerprint`) and the ``event`` of its CaseActivity record
(v3: no JSON copy of the event); outcomes are counted in place (``BatchResult.counts``),
with no object per record.

The checks, in order: decode (``UNDECODABLE``, ``UNKNOWN_SCHEMA``); the event's rules
(`onewindow.domain.validation.validate`, with the topic's owner and the counter
departments); the record key must be the ``case_id`` (``INVALID_FIELD``); the record
must be on the partition its key belongs to (``WRONG_PARTITION``,
`onewindow.topics.partition_for`); then the fold (duplicate, ``EVENT_ID_CONFLICT``).
The partition comes after what the event says and after its key (a key that is not the
case_id is wrong wherever it lies, and the partition is a function of the key) and before
the fold, which would read and write the state of the wrong partition's store. Before all
of them, a record over 256 KiB is ``TOO_LARGE`` undecoded
(`onewindow.domain.validation.check_record_size`).

Sizes (issue 13): no valid record can make an output over ``MAX_OUTPUT_BYTES`` (1,000,000
bytes: librdkafka's and aiokafka's default record limit, which `OutputProducer` sets
explicitly, under the broker's 1 MiB). The bound, from the limits of
`onewindow.domain.limits`:

* CaseActivity: its ``event`` is the protected event in Avro
  (`onewindow.security.protected_form`), whose strings are at most the record's 256 KiB
  as UTF-8 (scrubbing never lengthens text: a mask has the length of the normalised
  number it replaces, in one-byte characters), plus the keyed hashes of protection: 64
  hex characters for the party and for the document number, and the map of declared
  values' hashes, which repeats their keys (64 of at most 256 characters, 1 KiB each as
  UTF-8) with 32 characters each, under 70 KB. The other fields are short: under 350 KB.
* CaseState (Avro, UTF-8 strings): the acceptance record's strings are at most the
  record's 256 KiB, plus one entry per task (at most 100 declared, plus at most
  ``MAX_CASE_TASKS`` named by updates, each id at most ``MAX_CODE_CHARS``).
* The fold state (the table's value and its changelog record, ASCII JSON): the acceptance
  record is at most ``MAX_ACCEPTANCE_BYTES`` (its strings at most ``MAX_JSON_BYTES``);
  each further applied event adds at most ~5 KB (its event id twice, fingerprint, task
  entry and a new task id, all escaped), ~100 bytes usually. This grows with the events
  of a case, which no per-record rule bounds, so the fold bounds the case
  (`CaseState.limit_breach`: ``MAX_CASE_EVENTS``, ``MAX_CASE_TASKS``,
  ``MAX_CASE_FOLD_BYTES`` besides the acceptance record): a further event is dead-lettered
  ``TOO_LARGE`` and the state is at most ``MAX_FOLD_STATE_BYTES`` (900,064). CaseState
  is no larger than the fold state but for a few KB (each string of the state is in the
  fold state escaped, each task has an entry there), so under 1 MB too
  (docs/state-rules.md "Bounds per case").
* DeadLetter: the original bytes, which may be as large as the broker accepted, so
  `_dead` keeps at most what fits (`_fit_dead_letter`) and says so in the detail.

A record whose activity would still be over the limit is dead-lettered ``OUTPUT_FAILED``
before it is applied (never expected: a safety net), and `OutputProducer` dead-letters
``OUTPUT_FAILED`` a record whose output the client or the broker refuses for good
(`output_failed`, through `OutRecord.source`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from onewindow.codec import Codec
from onewindow.domain.calendar import WorkingCalendar
from onewindow.domain.case import (
    CaseState,
    Outcome,
    bytes_fingerprint,
    event_fingerprint,
    settle,
)
from onewindow.domain.clock import to_ms
from onewindow.domain.limits import MAX_RECORD_BYTES
from onewindow.domain.validation import (
    EVENT_ID_CONFLICT,
    INVALID_FIELD,
    OUTPUT_FAILED,
    TOO_LARGE,
    WRONG_PARTITION,
    accepts,
    check_record_size,
    uscc_exception_used,
    validate,
)
from onewindow.errors import DecodeError
from onewindow.security.id_protection import IdProtector
from onewindow.security.protected_form import encode_protected
from onewindow.topics import Topics, partition_for
from stream_apps.records import MAX_OUTPUT_BYTES, InRecord, OutRecord

APPLIED = "applied"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"

#: Room in a dead letter for all but its original and key: the detail (at most 2,000
#: characters, 8,000 bytes), the topic, the department and Avro's framing; generous.
_DEAD_LETTER_ROOM = 16 * 1024
#: Longest record key a dead letter keeps (a key is a case_id, at most 64 characters).
_DEAD_LETTER_KEY = 1024
#: Fold states kept as objects between batches (`CaseProcessor._recent`): the cases of the
#: last batch or two (some 10 KB each: about 5 MiB full; 2,048 made 20 MiB, filled as a
#: worker met new cases, its memory growing for many minutes, docs/benchmarks.md).
_RECENT_STATES = 512
#: Longest ``event`` an activity may carry; the rest of the record is small.
_MAX_EVENT_BYTES = MAX_OUTPUT_BYTES - 64 * 1024

#: What happened to a record, the key of ``BatchResult.counts``: ``(department of its
#: topic, event type, APPLIED | DUPLICATE | DEAD_LETTERED, reason or None, out_of_role,
#: uscc_exception)``.
OutcomeKey = tuple[str, str, str, "str | None", bool, bool]


@dataclass(slots=True)
class Tally:
    """What happened to one record (``BatchResult.tallies``, built on demand)."""

    department: str
    event_type: str
    result: str
    reason: str | None = None
    #: an applied TaskUpdated from another department than its task's owner (section 3)
    out_of_role: bool = False
    #: an applied event accepted only through the operator's USCC exceptions (section 2)
    uscc_exception: bool = False


@dataclass
class BatchResult:
    #: case_id -> the new encoded fold state, and the record that last changed it
    states: dict[str, tuple[bytes, InRecord]] = field(default_factory=dict)
    #: output records in the order they were produced
    outputs: list[OutRecord] = field(default_factory=list)
    #: records per outcome (`OutcomeKey`), counted in place: what the metrics need
    counts: dict[OutcomeKey, int] = field(default_factory=dict)
    #: the outcome of each record, in order: the key counted, kept (not a new object)
    outcomes: list[OutcomeKey] = field(default_factory=list)
    #: case states emitted whose deadline is provisional (a date outside every known
    #: holiday schedule was consulted: domain.md section 4 wants a metric for it)
    provisional_states: int = 0
    #: records of the calendar-check topic (`Topics.calendar_checks`), in order: the shell
    #: runs each after the batch (`stream_apps.calendar_checks`)
    checks: list[InRecord] = field(default_factory=list)

    @property
    def tallies(self) -> list[Tally]:
        """What happened to each record, in order (tests, diagnostics: built when asked)."""
        return [Tally(*key) for key in self.outcomes]

    def count(self, key: OutcomeKey) -> None:
        """One record's outcome."""
        self.counts[key] = self.counts.get(key, 0) + 1
        self.outcomes.append(key)


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
    dead-letter topic keeps the original bytes. ``uscc_exceptions``: the operator's list
    of known-valid USCCs failing their check character (`onewindow.uscc_exceptions`).
    Records of the calendar-check topic are not events: they are handed back in
    ``BatchResult.checks``.
    """

    def __init__(self, *, codec: Codec, topics: Topics, departments: Iterable[str],
                 counters: Iterable[str], calendar: WorkingCalendar, ids: IdProtector,
                 partitions: int | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 uscc_exceptions: Iterable[str] = ()) -> None:
        self.codec = codec
        self.topics = topics
        self.departments = frozenset(departments)
        self.counters = frozenset(counters)
        self.calendar = calendar
        self.ids = ids
        self.partitions = partitions
        self.clock = clock
        self.uscc_exceptions = frozenset(uscc_exceptions)
        #: the output topics and the control topic (`Topics` computes a name each time)
        self._checks_topic = topics.calendar_checks
        self._activity_topic = topics.case_activity
        self._state_topic = topics.case_state
        #: the department owning each topic seen (a handful of topics, every record)
        self._owners: dict[str, str] = {}
        #: the outputs, written by the codec's writers for records built here
        self._write_state = codec.writer("CaseState")
        self._write_activity = codec.writer("CaseActivity")
        #: case_id -> (the bytes a state was last written as, that state), the most recent
        #: ``_RECENT_STATES``: a case's next batch starts from the object, not from
        #: decoding its bytes, when the store still holds those bytes (taken out while a
        #: batch uses it, so a batch that fails half way leaves nothing stale here)
        self._recent: dict[str, tuple[bytes, CaseState]] = {}
        #: a key's partition (murmur2 in Python: once per case, not per event)
        self._home = lru_cache(maxsize=4096)(
            lambda key: partition_for(key, partitions))  # type: ignore[arg-type]

    def process(self, records: Iterable[InRecord],
                load: Callable[[str, InRecord], bytes | None]) -> BatchResult:
        """`load(case_id, record)` reads the stored fold state of a case; the record is the
        one being processed, so a partitioned store knows where to look."""
        result = BatchResult()
        now = self.clock()
        live: dict[str, CaseState] = {}
        changed: dict[str, tuple[InRecord, str]] = {}
        checks = self._checks_topic
        for rec in records:
            if rec.topic == checks:
                result.checks.append(rec)
                continue
            self._one(rec, now, load, live, changed, result)
        recent = self._recent
        for case_id, (rec, event_id) in changed.items():
            state = live[case_id]
            # settled first: a closed case's state records the deadline it closed with
            record = self._state_record(state, rec, event_id, result)
            data = state.to_bytes()
            result.states[case_id] = (data, rec)
            result.outputs.append(record)
            recent[case_id] = (data, state)
            if len(recent) > _RECENT_STATES:
                del recent[next(iter(recent))]
        return result

    def _one(self, rec: InRecord, now: datetime, load: Callable[[str, InRecord], bytes | None],
             live: dict[str, CaseState], changed: dict[str, tuple[InRecord, str]],
             result: BatchResult) -> None:
        owner = self._owners.get(rec.topic)
        if owner is None:
            owner = self._owners[rec.topic] = self.topics.department_of(rec.topic) or "unknown"
        value = rec.value
        size = len(value or b"") + len(rec.key or b"")
        too_large = check_record_size(size) if size > MAX_RECORD_BYTES else None
        if too_large is not None:
            self._dead(rec, too_large.reason, too_large.detail, owner, "unknown", result)
            return
        try:
            if value is None:
                raise DecodeError("UNDECODABLE", "record has no value (tombstone)")
            plain = self.codec.decode(value)
        except DecodeError as exc:
            self._dead(rec, exc.reason, str(exc), owner, "unknown", result)
            return
        etype: str = plain["type"]
        if not accepts(plain, topic_department=owner, departments=self.departments, now=now,
                       counters=self.counters, record_bytes=len(value)):
            rejection = validate(plain, topic_department=owner, departments=self.departments,
                                 now=now, counters=self.counters, record_bytes=len(value),
                                 uscc_exceptions=self.uscc_exceptions)
            if rejection is not None:
                self._dead(rec, rejection.reason, rejection.detail, owner, etype, result)
                return
        case_id: str = plain["case_id"]
        key = case_id.encode("utf-8")
        if rec.key != key:
            self._dead(rec, INVALID_FIELD,
                       f"record key {rec.key!r} must be the event's case_id {case_id!r}",
                       owner, etype, result)
            return
        if self.partitions is not None:
            home = self._home(key)
            if rec.partition != home:
                self._dead(rec, WRONG_PARTITION,
                           f"key {rec.key!r} belongs to partition {home} of "
                           f"{self.partitions}, found on partition {rec.partition}",
                           owner, etype, result)
                return
        # The checks needed the plaintext (check digits); from here on only the protected
        # form exists: the fold, its fingerprint (the keyed hash is deterministic, so equal
        # events stay equal and different numbers different), the table and the outputs.
        event = self.ids.protect_event(plain)
        # Its canonical encoding: the fingerprint and the activity's ``event`` at once.
        payload = encode_protected(self.codec, event)
        if len(payload) > _MAX_EVENT_BYTES:
            # the limits make this impossible (module docstring): a safety net, before
            # the fold, so that the state does not advance for a record with no output
            self._dead(rec, OUTPUT_FAILED, f"its activity record would be over "
                       f"{MAX_OUTPUT_BYTES} bytes", owner, etype, result)
            return
        state = live.get(case_id)
        if state is None:
            raw = load(case_id, rec)
            kept = self._recent.pop(case_id, None)
            if raw is None:
                state = CaseState(case_id)
            elif kept is not None and kept[0] == raw:
                state = kept[1]  # the store holds what this object was written as
            else:
                state = CaseState.from_bytes(raw)
            live[case_id] = state
        fingerprint = bytes_fingerprint(payload)
        outcome = state.apply(event, fingerprint)
        if outcome is Outcome.EVENT_ID_CONFLICT and _same_as_stored(state, event, plain):
            outcome = Outcome.DUPLICATE
        if outcome is Outcome.EVENT_ID_CONFLICT:
            self._dead(rec, EVENT_ID_CONFLICT,
                       f"event_id {event['event_id']!r} was applied before in case "
                       f"{case_id!r} with different content", owner, etype, result)
            return
        if outcome is Outcome.TOO_LARGE:  # a bound of its case (docs/state-rules.md)
            self._dead(rec, TOO_LARGE, state.limit_breach(event, fingerprint)
                       or "a bound of its case", owner, etype, result)
            return
        # A duplicate re-emits its activity and the current state: after a crash the
        # state may have been saved while the outputs were not, and the sinks upsert.
        event_id: str = event["event_id"]
        changed[case_id] = (rec, event_id)
        out_of_role = state.is_out_of_role(event)
        result.outputs.append(self._activity_record(event, state, rec, out_of_role,
                                                    payload=payload))
        if outcome is Outcome.APPLIED:
            result.count((owner, etype, APPLIED, None, out_of_role,
                          bool(self.uscc_exceptions)
                          and uscc_exception_used(plain, self.uscc_exceptions)))
        else:
            result.count((owner, etype, DUPLICATE, None, False, False))

    def _dead(self, rec: InRecord, reason: str, detail: str, department: str, etype: str,
              result: BatchResult) -> None:
        result.outputs.append(self._dead_letter(rec, reason, detail, department))
        result.count((department, etype, DEAD_LETTERED, reason, False, False))

    def _dead_letter(self, rec: InRecord, reason: str, detail: str,
                     department: str) -> OutRecord:
        key, original, cut = _fit_dead_letter(rec.key, rec.value or b"")
        value = self.codec.encode_record("DeadLetter", {
            "original": original,
            "key": key,
            "source_topic": rec.topic,
            "source_partition": rec.partition,
            "source_offset": rec.offset,
            "reason": reason,
            "detail": detail[:2000 - len(cut)] + cut,
            "department": department,
            "dead_lettered_at": self.clock(),
        })
        return OutRecord(self.topics.dead_letters, key, value)

    def output_failed(self, rec: InRecord, detail: str) -> tuple[OutRecord, Tally]:
        """The ``OUTPUT_FAILED`` dead letter of a valid record whose output the client or
        the broker refused for good (`stream_apps.output.OutputProducer`), and its tally.
        Its other outputs may have been published; its fold state was written."""
        owner = self.topics.department_of(rec.topic) or "unknown"
        try:
            etype = str(self.codec.decode(rec.value or b"").get("type", "unknown"))
        except DecodeError:
            etype = "unknown"
        return (self._dead_letter(rec, OUTPUT_FAILED, detail, owner),
                Tally(owner, etype, DEAD_LETTERED, OUTPUT_FAILED))

    def _activity_record(self, event: Mapping[str, Any], state: CaseState,
                         rec: InRecord, out_of_role: bool = False, *,
                         payload: bytes) -> OutRecord:
        """The CaseActivity of an applied (or duplicate) event: v3, the protected event in
        ``event``, no ``event_json``."""
        value = self._write_activity({
            "case_id": event["case_id"],
            "event_id": event["event_id"],
            "event_type": event["type"],
            "department": event["department"],
            "occurred_at": event["occurred_at"],
            "version": state.version,
            "task_id": event.get("task_id"),
            "status": event.get("status"),
            "material_id": event.get("material_id") or event.get("certificate_id"),
            "event_json": None,
            "source_topic": rec.topic,
            "source_partition": rec.partition,
            "source_offset": rec.offset,
            "source_timestamp": _source_ms(rec),  # ms: the writer takes them as they are
            "out_of_role": out_of_role,
            "event": payload,
        })
        return OutRecord(self._activity_topic, rec.key, value, source=rec)

    def _state_record(self, state: CaseState, rec: InRecord, event_id: str | None,
                      result: BatchResult) -> OutRecord:
        """The CaseState record of ``state``, settled (`onewindow.domain.case.settle`)."""
        return self.view_record(settle(state, self.calendar), rec.key,
                                source_timestamp=_source_ms(rec),
                                last_event_id=event_id, result=result, source=rec)

    def view_record(self, view: dict[str, Any], key: bytes | None, *,
                    source_timestamp: datetime | int | None, last_event_id: str | None,
                    result: BatchResult, source: InRecord | None = None) -> OutRecord:
        """The CaseState record of a projected view (`onewindow.domain.case.project`),
        keyed ``key``; counts a provisional deadline in ``result``. ``source_timestamp``:
        a datetime or milliseconds since the epoch."""
        view["source_timestamp"] = source_timestamp
        view["last_event_id"] = last_event_id
        applicant = view["applicant"]
        if applicant is not None and applicant["id_number"] is not None:
            # a state stored by a worker that kept the acceptance record plain
            view.update(self.ids.protect_event(
                {k: view[k] for k in ("applicant", "service_name", "tasks")}))
        if view["due_provisional"]:
            result.provisional_states += 1
        return OutRecord(self._state_topic, key, self._write_state(view), source=source)


def _same_as_stored(state: CaseState, event: Mapping[str, Any],
                    plain: Mapping[str, Any]) -> bool:
    """Whether an event whose fingerprint differs from the one stored for its id is the
    same event all the same, stored by an older worker: one that fingerprinted the
    canonical JSON of the protected form, or earlier of the plain form
    (`onewindow.domain.case.event_fingerprint`; docs/state-rules.md, "Fingerprint").
    Only asked on a mismatch, so a worker pays for it only for conflicts."""
    stored = state.seen.get(str(event["event_id"]))
    return stored is not None and stored in (event_fingerprint(event),
                                             event_fingerprint(plain))


#: the milliseconds a datetime holds (years 1 to 9999)
_MIN_MS = to_ms(datetime.min.replace(tzinfo=UTC))
_MAX_MS = to_ms(datetime.max.replace(tzinfo=UTC))


def _source_ms(rec: InRecord) -> int | None:
    """The record's Kafka timestamp (ms) as the outputs' ``source_timestamp``: ``None`` when
    it has none, or when it is outside what a datetime holds (years 1 to 9999). Kafka takes
    any 64-bit CreateTime by default, and a producer that writes microseconds for
    milliseconds (or ``Long.MAX_VALUE``) must not stop the worker: the rules use the
    event's own ``occurred_at``, this is only where the record came from. Milliseconds:
    fastavro's writer takes them as they are."""
    ms = rec.timestamp_ms
    return ms if ms is not None and _MIN_MS <= ms <= _MAX_MS else None


def _fit_dead_letter(key: bytes | None, original: bytes) -> tuple[bytes | None, bytes, str]:
    """``(key, original, note)`` of a dead letter that fits ``MAX_OUTPUT_BYTES``: the
    record as consumed when it fits (every record under the broker's limit but the last
    ~20 KB of it), else its first bytes, with a note for the detail naming the whole
    record's size and SHA-256. The key counts twice (the record's key and a field)."""
    if key is not None and len(key) > _DEAD_LETTER_KEY:
        key = key[:_DEAD_LETTER_KEY]
    room = MAX_OUTPUT_BYTES - _DEAD_LETTER_ROOM - 2 * len(key or b"")
    if len(original) <= room:
        return key, original, ""
    digest = hashlib.sha256(original).hexdigest()
    return key, original[:room], (f" [original cut to its first {room} of {len(original)} "
                                  f"bytes, sha256 {digest}]")
