"""What the gateway answers for each event of a request, before and after the broker
(pure: no I/O, no clock of its own; ``gateway.service`` drives it).

Per event, in request order (docs/gateway.md has the table):

1. :func:`prepare`: the JSON form to an event (``codec.from_json``: ``INVALID_FIELD``
   naming the field), then every source-checkable rule of domain.md section 2 with the
   caller as the owner of the topic (``DEPARTMENT_MISMATCH`` for an event naming another
   department, ``UNAUTHORISED``, ``TOO_LARGE`` ...: :func:`onewindow.inputs.prepare_record`,
   the SDK's own checks). A rejected event is never sent and never remembered: it is
   checked again, and rejected again, each time it comes (section 2: "an invalid record
   is dead-lettered every time it arrives").
2. :func:`plan`: an event whose key (department, ``case_id``, ``event_id``: the scope
   the stream worker de-duplicates in, "checked within its case") came earlier in the
   same request is ``duplicate`` with the same content, else ``rejected``
   ``EVENT_ID_CONFLICT`` (the first wins). One the gateway published recently
   (:class:`AnswerCache`, or still in flight) is ``rejected`` ``EVENT_ID_CONFLICT`` when
   its content differs; with the same content it is not sent again, and its answer is
   ``accepted`` when this request is the one that published it (a retry: the same events
   in the same order, :func:`request_digest`), ``duplicate`` otherwise. Every other event
   is sent, and ``accepted`` once the broker has acknowledged it.

So a retried request gets the answers it got the first time and publishes nothing twice,
for as long as its events are remembered (:class:`AnswerCache`: the most recent
``max_entries`` accepted events, each for ``ttl`` seconds). Past that, a resent event is
published again; the stream worker ignores it as a duplicate (domain.md section 2).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cachetools import TTLCache

from gateway.parsing import RawEvent
from onewindow.codec import Codec
from onewindow.domain.case import event_fingerprint
from onewindow.domain.protection import scrub
from onewindow.domain.validation import DEPARTMENT_MISMATCH, EVENT_ID_CONFLICT, Rejection
from onewindow.errors import DecodeError
from onewindow.inputs import InputRecord, prepare_record

__all__ = ["ACCEPTED", "DUPLICATE", "REJECTED", "Answer", "AnswerCache", "EventKey", "Known",
           "Plan", "Ready", "Send", "Wait", "plan", "prepare", "request_digest"]

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"
Status = Literal["accepted", "duplicate", "rejected"]

#: (department, case_id, event_id): the scope an event id is unique in (domain.md 1, 2)
EventKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer for one event: ``status``, and for ``rejected`` a reason code of
    domain.md section 2 with a detail naming the field (ID numbers masked)."""

    index: int
    status: Status
    event_id: str | None = None
    reason: str | None = None
    detail: str | None = None
    line: int | None = None

    def __reduce__(self) -> tuple[type[Answer], tuple[Any, ...]]:
        # pickled as its fields (gateway.checking: the default of a frozen dataclass with
        # slots looks its fields up on every pickling)
        return Answer, (self.index, self.status, self.event_id, self.reason, self.detail,
                        self.line)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status}
        for name in ("line", "event_id", "reason", "detail"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class Ready:
    """An event that passed every rule: its key, content fingerprint
    (:func:`onewindow.domain.case.event_fingerprint`, as the stream worker compares) and
    the record to send."""

    index: int
    key: EventKey
    fingerprint: str
    record: InputRecord
    line: int | None = None

    def __reduce__(self) -> tuple[type[Ready], tuple[Any, ...]]:
        return Ready, (self.index, self.key, self.fingerprint, self.record, self.line)

    @property
    def event_id(self) -> str:
        return self.key[2]


@dataclass(frozen=True, slots=True)
class Known:
    """What the gateway remembers of a published event: its fingerprint, the request
    that published it (:func:`request_digest`) and whether the broker's acknowledgement
    is still awaited."""

    fingerprint: str
    request: bytes
    pending: bool = False


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``ready``; ``accepted`` once acknowledged."""

    ready: Ready


@dataclass(frozen=True, slots=True)
class Wait:
    """The same event is in flight for an earlier request (or an earlier try of this one):
    wait for its acknowledgement, then answer ``status``."""

    index: int
    key: EventKey
    status: Status
    line: int | None = None


Step = Answer | Send | Wait


@dataclass(frozen=True)
class Plan:
    """One step per event, in request order."""

    steps: tuple[Step, ...]

    @property
    def sends(self) -> list[Ready]:
        return [s.ready for s in self.steps if isinstance(s, Send)]

    @property
    def waits(self) -> list[Wait]:
        return [s for s in self.steps if isinstance(s, Wait)]


def _event_id_of(value: Any) -> str | None:
    """The ``event_id`` of an event that could not be read, when it has a usable one."""
    event_id = value.get("event_id") if isinstance(value, dict) else None
    return event_id if isinstance(event_id, str) and 0 < len(event_id) <= 64 else None


def _rejected(raw: RawEvent, reason: str, detail: str) -> Answer:
    # the detail may quote the request: never an ID number in an answer or a log
    return Answer(raw.index, REJECTED, _event_id_of(raw.value), reason, scrub(detail),
                  raw.line)


def prepare(raws: Iterable[RawEvent], *, department: str, departments: Collection[str],
            counters: Collection[str], now: datetime, codec: Codec,
            uscc_exceptions: Collection[str] = frozenset()) -> list[Ready | Answer]:
    """Each event read and checked against the rules, as sent by ``department`` (the
    authenticated caller, the owner of the topic it goes to): a :class:`Ready` or its
    ``rejected`` :class:`Answer`. ``now``: the clock of ``FUTURE_TIMESTAMP``;
    ``uscc_exceptions``: the operator's known-valid USCCs failing their check character
    (`onewindow.uscc_exceptions`: what the worker accepts, the gateway accepts)."""
    out: list[Ready | Answer] = []
    for raw in raws:
        if raw.error is not None:
            out.append(_rejected(raw, raw.error.reason, raw.error.detail))
            continue
        try:
            event = codec.from_json(raw.value)
        except DecodeError as exc:
            out.append(_rejected(raw, exc.reason, str(exc)))
            continue
        prepared = prepare_record(event, owner=department, departments=departments,
                                  counters=counters, now=now, codec=codec,
                                  uscc_exceptions=uscc_exceptions)
        if isinstance(prepared, Rejection):
            detail = prepared.detail
            if prepared.reason == DEPARTMENT_MISMATCH:  # no topic in the caller's picture
                detail = f"department: {event.get('department')!r} is not {department!r}, " \
                         "the department of the key"
            out.append(_rejected(raw, prepared.reason, detail))
            continue
        key = (department, str(event["case_id"]), str(event["event_id"]))
        out.append(Ready(raw.index, key, event_fingerprint(event), prepared, raw.line))
    return out


def request_digest(department: str, items: Iterable[Ready | Answer],
                   raws: Iterable[RawEvent]) -> bytes:
    """What identifies a request for its retries (16 bytes): the caller and, in order,
    each event's key and fingerprint, or for an event that was rejected its JSON as sent.
    The same events resent as an array or as JSON lines, with other white space or key
    order, are the same request."""
    h = hashlib.blake2b(department.encode(), digest_size=16)
    values = {r.index: r for r in raws}
    for item in items:
        if isinstance(item, Ready):
            h.update(b"\x00R" + "\x1f".join((*item.key, item.fingerprint)).encode())
        else:
            raw = values.get(item.index)
            text = json.dumps(raw.value, sort_keys=True, ensure_ascii=False) \
                if raw is not None and raw.error is None else repr(raw.error if raw else None)
            h.update(b"\x00X" + text.encode("utf-8", "surrogatepass"))
    return h.digest()


def plan(items: Iterable[Ready | Answer], *, request: bytes,
         known: Callable[[EventKey], Known | None]) -> Plan:
    """The step for each prepared event (module docstring): ``request`` is this request's
    :func:`request_digest`, ``known`` looks an event up among those published recently
    or in flight."""
    steps: list[Step] = []
    here: dict[EventKey, str] = {}
    for item in items:
        if isinstance(item, Answer):
            steps.append(item)
            continue
        event_id = item.event_id
        earlier = here.get(item.key)
        if earlier is not None:
            steps.append(Answer(item.index, DUPLICATE, event_id, line=item.line)
                         if earlier == item.fingerprint else
                         Answer(item.index, REJECTED, event_id, EVENT_ID_CONFLICT,
                                f"event_id: {event_id!r} of case {item.key[1]!r} comes "
                                "earlier in this request with other content", item.line))
            continue
        here[item.key] = item.fingerprint
        seen = known(item.key)
        if seen is None:
            steps.append(Send(item))
        elif seen.fingerprint != item.fingerprint:
            steps.append(Answer(item.index, REJECTED, event_id, EVENT_ID_CONFLICT,
                                f"event_id: {event_id!r} of case {item.key[1]!r} was "
                                "published before with other content", item.line))
        else:
            status: Status = ACCEPTED if seen.request == request else DUPLICATE
            steps.append(Wait(item.index, item.key, status, item.line) if seen.pending
                         else Answer(item.index, status, event_id, line=item.line))
    return Plan(tuple(steps))


class AnswerCache:
    """The events the gateway published recently: :class:`Known` by :data:`EventKey`,
    at most ``max_entries`` (the least recently used go first), each for ``ttl`` seconds
    after it was acknowledged (``cachetools.TTLCache``; ``clock`` in seconds, monotonic).
    About 0.6 KB an entry (docs/gateway.md: measured): 100,000 entries are some 60 MB.

    A dict and a deque of our own would put in 1 µs instead of 3.7 and look up in 0.3
    instead of 1.4 (measured, docs/benchmarks.md "The ingestion gateway"): some 4 µs of
    the gateway's 75 per event. Not worth a cache of our own beside a maintained one."""

    def __init__(self, max_entries: int, ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: TTLCache[EventKey, Known] = TTLCache(max_entries, ttl, timer=clock)

    def get(self, key: EventKey) -> Known | None:
        return self._entries.get(key)

    def put(self, key: EventKey, known: Known) -> None:
        self._entries[key] = known

    def __len__(self) -> int:
        self._entries.expire()
        return len(self._entries)
