"""Calendar checks: when the working-day calendar changes, the case-state worker
re-publishes the deadline of every open case it moves (domain.md section 4: "the
deadline and SLA of every case that is not closed are recomputed and re-published at
once, without waiting for the case's next event; closed cases keep the deadline they
closed with").

**Trigger.** A *check* is a record on partition ``p`` of the control topic
``<prefix>onewindow.calendar-checks`` (`onewindow.topics.Topics.calendar_checks`,
co-partitioned with the inputs). The case-state agent consumes it with the department
topics, so the check of partition ``p`` runs on the one worker that owns ``p``, in the
agent, between two batches of ``p``'s events: it is never a second writer of a case's
state. Checks are published

* by every case-state worker when it starts, one per partition (`check_records`, reason
  ``start``): a changed override file or a newer ``chinesecalendar`` takes effect on
  restart;
* by ``onewindow recompute-deadlines`` (`stream_apps.commands`, reason ``command``),
  after the operator changed the override file, without a restart: the owning worker
  first reloads the file when its content changed (`onewindow.calendar_source.
  CalendarFile`), then checks. A worker whose reload fails keeps the calendar it has and
  logs the error.

**What is compared.** Each table partition keeps, under the reserved key
``@calendar:<p>`` (never a case id: ``@`` is outside ``[0-9A-Za-z_-]``), the calendar its
open cases were last published with: a `onewindow.domain.calendar.CalendarSnapshot` (every
answer over the years the calendar knows, with its SHA-256 digest), plus which check wrote
it. The key lives in the partition's RocksDB store and its changelog, so it moves with
the partition on a rebalance and survives the loss of the local store. A check compares
the worker's snapshot with the stored one; equal digests end the check (one key read).

**Recompute.** Otherwise every case of the partition is read from the table and projected
with the new calendar; a case that is not closed and whose ``due_date``, ``due_at`` or
``due_provisional`` differ from its projection under the stored (old) calendar is
re-published as a CaseState (`onewindow.domain.deadline.deadline_moved`). Without a
stored snapshot (the first check of a partition, or of a worker from before this
feature), the old calendar is unknown and every open case is re-published. A closed case
is never re-published: its fold state keeps the deadline it closed with
(`onewindow.domain.case.settle`); one stored before states kept it records it now, from
the old calendar (or the current one when none is stored), and is written back. The SLA
status is computed at read time from these fields by the counter (restart it, or it keeps
its own calendar: docs/operations.md).

**The re-published record** keeps the case's ``version`` (the number of applied events:
domain.md section 3; a recompute applies no event). The sink's upsert keeps a row when the
stored version is lower *or equal* (`sinks.unit_of_work`: on a tie the later record wins,
as a compacted topic keeps the later one), so the new deadline replaces the old one, and
the case's records stay in order because every record of a case goes through the one
output producer, on one partition. ``last_event_id`` is null (no event made it) and
``source_timestamp`` is the check record's timestamp.

**Crash safety.** The snapshot is written last, after every re-published record was
queued, and the check record's offset is committed only once those records and the
table's changelog are on the broker (`stream_apps.output`). A worker that dies before
that consumes the check again; if its snapshot reached the store but not its records,
the stored snapshot names that very check record (topic, partition, offset), so the check
knows it is a replay and re-publishes every open case again. A rebalance in the middle
(between two chunks of cases) ends the check without writing the snapshot: the
partition's new owner consumes the uncommitted check itself.

**Cost.** One key read per partition when nothing changed; otherwise a read and one or
two projections per case of the partition, in chunks of :data:`CHUNK` cases with the event
loop let go between them, so heartbeats and the commit loop go on (measured in
docs/operations.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Protocol

from confluent_kafka import KafkaError, Producer

from onewindow.calendar_source import (
    CHINESECALENDAR_VERSION,
    CalendarFile,
    describe,
    load_calendar,
)
from onewindow.config import Settings
from onewindow.domain.calendar import CalendarSnapshot, WorkingCalendar
from onewindow.domain.case import CaseState, project, settle
from onewindow.domain.clock import from_ms
from onewindow.domain.deadline import deadline_moved
from onewindow.errors import ConfigError, DeliveryError
from onewindow.security.kafka_auth import STREAM, producer_config
from onewindow.topics import Topics
from stream_apps.case_processor import BatchResult, CaseProcessor
from stream_apps.records import InRecord, OutRecord

__all__ = [
    "CHUNK",
    "RESERVED_PREFIX",
    "CalendarCheck",
    "CalendarChecker",
    "check_records",
    "marker_key",
    "request_checks",
    "run_check",
    "snapshot_of",
]

log = logging.getLogger(__name__)

#: Table keys starting with this are not cases (a case_id is ``[0-9A-Za-z_-]{1,64}``).
RESERVED_PREFIX = "@"
#: Cases recomputed between two yields to the event loop.
CHUNK = 500
_CHECK_KEY = b"calendar-check"
_MARKER_FORMAT = 1
REASONS = ("start", "command")


def marker_key(partition: int) -> str:
    """The reserved table key of partition ``partition``'s calendar snapshot."""
    return f"{RESERVED_PREFIX}calendar:{partition}"


def snapshot_of(calendar: WorkingCalendar) -> CalendarSnapshot:
    """The calendar's snapshot: its own (`ChineseWorkingCalendar.snapshot`), else over
    its ``years`` (`SetCalendar`), else empty (a calendar that knows no year)."""
    own = getattr(calendar, "snapshot", None)
    if own is not None:
        return own()  # type: ignore[no-any-return]
    return CalendarSnapshot.of(calendar, getattr(calendar, "years", ()))


def check_records(topics: Topics, partitions: int, *, reason: str, digest: str,
                  requested_by: str, now: datetime | None = None) -> list[OutRecord]:
    """One check record per partition of the control topic (JSON: ``reason``, the
    requester's calendar ``digest``, ``requested_by``, ``requested_at``)."""
    if reason not in REASONS:
        raise ValueError(f"reason {reason!r} is not one of {REASONS}")
    value = json.dumps({"type": "CalendarCheck", "reason": reason, "digest": digest,
                        "requested_by": requested_by,
                        "requested_at": (now or datetime.now(UTC)).isoformat()},
                       separators=(",", ":")).encode()
    return [OutRecord(topics.calendar_checks, _CHECK_KEY, value, partition=p)
            for p in range(partitions)]


def _request(rec: InRecord) -> dict[str, Any]:
    """The check record's JSON, or ``{}`` for one that is not (a check all the same)."""
    try:
        doc = json.loads(rec.value or b"")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


@dataclass
class CalendarCheck:
    """One check of one partition, begun (`CalendarChecker.begin`)."""

    record: InRecord
    #: the snapshot stored by the partition's last completed check, if any
    stored: CalendarSnapshot | None
    #: the worker's calendar now
    current: CalendarSnapshot
    #: the stored snapshot was written by this very record: a replay after a crash
    replay: bool
    #: what the requester saw (its digest, who it was), for the log
    request: dict[str, Any]
    republished: int = 0

    @property
    def partition(self) -> int:
        return self.record.partition

    @property
    def needed(self) -> bool:
        """Whether the partition's cases must be recomputed."""
        return self.replay or self.stored is None or self.stored.digest != self.current.digest

    @property
    def position(self) -> list[Any]:
        return [self.record.topic, self.record.partition, self.record.offset]


class CalendarChecker:
    """The checks of one case-state worker, free of Faust: `begin`, `recompute` chunk
    by chunk, `finish` (see the module docstring). ``calendar_file``: where the worker's
    calendar comes from, reloaded on each check when its content changed; ``None`` keeps
    ``processor.calendar`` as it is."""

    def __init__(self, processor: CaseProcessor, calendar_file: CalendarFile | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.processor = processor
        self.calendar_file = calendar_file
        self.clock = clock
        #: the last reload error, if the file is broken now (the metric's label)
        self.reload_error: str | None = None

    def reload(self) -> bool:
        """Reload the override file when it changed; ``True`` when the calendar changed.
        A broken file keeps the current calendar (logged, ``reload_error``)."""
        if self.calendar_file is None:
            return False
        try:
            changed = self.calendar_file.reload()
        except ConfigError as exc:
            self.reload_error = str(exc)
            log.error("calendar check: keeping the current calendar, the override file "
                      "cannot be loaded: %s", exc)
            return False
        self.reload_error = None
        if changed:
            self.processor.calendar = self.calendar_file.calendar
            log.info("calendar check: reloaded %s: %s", self.calendar_file.path,
                     describe(snapshot_of(self.processor.calendar)))
        return changed

    def begin(self, rec: InRecord,
              load: Callable[[str, InRecord], bytes | None]) -> CalendarCheck:
        """Reload the calendar if its file changed, read the partition's stored snapshot
        (``load(key, rec)`` under the check record, so the partitioned store reads the
        check's partition) and compare."""
        self.reload()
        current = snapshot_of(self.processor.calendar)
        stored, replay = None, False
        raw = load(marker_key(rec.partition), rec)
        if raw is not None:
            try:
                doc = json.loads(raw)
                stored = CalendarSnapshot.from_dict(doc["snapshot"])
                replay = doc.get("by") == [rec.topic, rec.partition, rec.offset]
            except (ValueError, KeyError, TypeError):
                log.warning("calendar check: partition %d: unreadable stored snapshot; "
                            "re-publishing every open case", rec.partition)
        request = _request(rec)
        if request.get("digest") not in (None, current.digest):
            log.warning("calendar check: partition %d: asked by %s whose calendar is %s, "
                        "this worker's is %s: is the same override file (and "
                        "chinesecalendar) deployed everywhere?", rec.partition,
                        request.get("requested_by", "?"), str(request["digest"])[:12],
                        current.digest[:12])
        return CalendarCheck(rec, stored, current, replay, request)

    def recompute(self, check: CalendarCheck, case_ids: Iterable[str],
                  load: Callable[[str, InRecord], bytes | None]) -> BatchResult:
        """The CaseState records of the cases among ``case_ids`` that the check
        re-publishes (``outputs``; ``provisional_states`` counted), and the fold states to
        store (``states``): a closed case whose state does not record the deadline it
        closed with (stored before `onewindow.domain.case.settle` recorded it) records it
        now, as computed with the stored (old) calendar, the one the partition's cases
        were last published with (the current one when none is stored), so that a late
        event of the case does not move it to the new calendar."""
        result = BatchResult()
        processor = self.processor
        rec = check.record
        stamp = from_ms(rec.timestamp_ms) if rec.timestamp_ms else None
        old = None if check.replay else check.stored
        for case_id in case_ids:
            raw = load(case_id, rec)
            if raw is None:
                continue
            state = CaseState.from_bytes(raw)
            after = project(state, processor.calendar)
            if after["closed_at"] is not None:  # keeps the deadline it closed with
                if state.closed_with is None:
                    settle(state, processor.calendar if check.stored is None
                           else check.stored)
                    if state.closed_with is not None:
                        result.states[case_id] = (state.to_bytes(), rec)
                continue
            before = None if old is None else project(state, old)
            if deadline_moved(before, after):
                result.outputs.append(processor.view_record(
                    after, case_id.encode("utf-8"), source_timestamp=stamp,
                    last_event_id=None, result=result))
        check.republished += len(result.outputs)
        return result

    def finish(self, check: CalendarCheck) -> tuple[str, bytes]:
        """The reserved key and value to store once every re-published record is queued:
        the snapshot, the check that wrote it, when, and how many cases it re-published."""
        doc = {"format": _MARKER_FORMAT, "snapshot": check.current.to_dict(),
               "by": check.position, "checked_at": self.clock().isoformat(),
               "republished": check.republished,
               "chinesecalendar": CHINESECALENDAR_VERSION,
               "reason": check.request.get("reason")}
        return marker_key(check.partition), json.dumps(doc, separators=(",", ":")).encode()


class CheckAccess(Protocol):
    """What a check needs of the table (`stream_apps.faust_context.TableAccess`)."""

    def load(self, key: str, rec: InRecord) -> bytes | None: ...

    def store(self, changed: dict[str, tuple[bytes, InRecord]]) -> None: ...

    def case_ids(self, rec: InRecord) -> Iterable[str]: ...


def _chunks(items: Iterable[str], n: int) -> Iterator[list[str]]:
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


async def run_check(checker: CalendarChecker, rec: InRecord, access: CheckAccess,
                    send: Callable[[BatchResult], None],
                    still_owner: Callable[[], bool],
                    on_done: Callable[[CalendarCheck, str], None] | None = None,
                    pause: Callable[[], Awaitable[None]] = lambda: asyncio.sleep(0),
                    chunk: int = CHUNK) -> CalendarCheck:
    """Run the check of ``rec`` (a record of the control topic) to its end: compare,
    re-publish through ``send`` (a `BatchResult` whose ``outputs`` are the chunk's
    CaseState records) chunk by chunk (yielding to the loop with ``pause``
    between chunks), then store the snapshot. ``still_owner()`` is asked after each
    pause: ``False`` (the partition was revoked, a rebalance began) ends the check with
    nothing stored. ``on_done(check, outcome)``: ``unchanged``, ``recomputed`` or
    ``abandoned``."""
    check = checker.begin(rec, access.load)
    if not check.needed:
        log.debug("calendar check: partition %d unchanged (%s)", rec.partition,
                  check.current.digest[:12])
        if on_done is not None:
            on_done(check, "unchanged")
        return check
    why = ("a replay of an interrupted check" if check.replay else
           "no calendar stored yet" if check.stored is None else
           f"{len(check.current.changed_dates(check.stored))} dates changed")
    log.info("calendar check: partition %d: %s -> %s (%s); re-publishing the deadlines "
             "it moves", rec.partition,
             check.stored.digest[:12] if check.stored else "none", check.current.digest[:12],
             why)
    for ids in _chunks(access.case_ids(rec), chunk):
        done = checker.recompute(check, ids, access.load)
        if done.states:  # closed cases recording the deadline they closed with
            access.store(done.states)
        send(done)
        await pause()
        if not still_owner():
            log.info("calendar check: partition %d left this worker mid-check; its new "
                     "owner checks it again", rec.partition)
            if on_done is not None:
                on_done(check, "abandoned")
            return check
    key, value = checker.finish(check)
    access.store({key: (value, rec)})
    log.info("calendar check: partition %d now on calendar %s: %d open cases re-published",
             rec.partition, check.current.digest[:12], check.republished)
    if on_done is not None:
        on_done(check, "recomputed")
    return check


def request_checks(settings: Settings, *, timeout: float = 30.0) -> tuple[CalendarSnapshot, str]:
    """``onewindow recompute-deadlines``: load the override file
    (``settings.calendar_override_file``; a bad file raises ConfigError before anything is
    sent), then publish one check per partition (reason ``command``) as the stream
    principal and wait up to ``timeout`` seconds for the acknowledgements (DeliveryError
    otherwise). Returns the calendar's snapshot and the topic written."""
    snapshot = load_calendar(settings.calendar_override_file).snapshot()
    topics = Topics(settings.topic_prefix)
    failures: list[str] = []
    client_errors: list[str] = []

    def delivered(err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            failures.append(err.str())

    conf = {**producer_config(settings, STREAM), "client.id": "onewindow-recompute-deadlines",
            "acks": "all", "enable.idempotence": True,
            "message.timeout.ms": max(1, round(timeout * 1000)),
            "error_cb": lambda err: client_errors.append(err.str())}
    producer = Producer(conf)
    records = check_records(topics, settings.partitions, reason="command",
                            digest=snapshot.digest,
                            requested_by="onewindow recompute-deadlines")
    for out in records:
        producer.produce(out.topic, out.value, out.key, partition=out.partition,
                         on_delivery=delivered)
    remaining = producer.flush(timeout + 5)
    if remaining or failures:
        why = (failures or client_errors or ["no acknowledgement"])[-1]
        raise DeliveryError(f"{remaining or len(failures)} of {len(records)} calendar checks "
                            f"not delivered to {topics.calendar_checks} on "
                            f"{settings.kafka_bootstrap} within {timeout:g}s: {why}")
    return snapshot, topics.calendar_checks
