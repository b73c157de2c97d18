"""The case fold: domain.md section 3.

:class:`CaseState` is what a stream worker keeps per case (in RocksDB), so it is small
and cheap to serialise: it holds only what the rules need, not the events.

* ``seen``: ``event_id -> content fingerprint`` of every applied event (de-duplication,
  ``EVENT_ID_CONFLICT``, and ``version = len(seen)``);
* the acceptance record: ``[occurred_at_ms, event_id]`` of the earliest CaseAccepted
  and the fields of that one only;
* the earliest CaseWithdrawn's ``occurred_at_ms``;
* per task: the department of its first event and its events as sorted
  ``[occurred_at_ms, rank, event_id, department]`` entries (the task order key, then
  who sent it: "who may change a task" is decided when the state is read, from the
  acceptance record of that moment, so it is a function of the set of events too).
  A state written before entries carried their department (three elements) reads
  them as sent by the task's first department;
* once the case is closed, the deadline it closed with (``closed_with``, written by
  :func:`settle`, read by :func:`project`): the one part of the state that depends on
  something besides the events, the calendar (domain.md section 4: "closed cases keep
  the deadline they closed with"; docs/state-rules.md "The calendar is a parameter of
  the fold").

Everything is held as JSON-native values (lists, str, int), so :meth:`CaseState.to_bytes`
is one JSON encode (ASCII, sorted keys, no spaces: measured faster than non-ASCII output,
about 1 KB for the 9-event worked case) and :meth:`CaseState.from_bytes` one
``json.loads``. JSON rather than marshal/pickle: readable in any Python version and by
any tool, and safe to load. The bytes are canonical: the same set of applied events
gives the same bytes whatever their order or repetitions (with :func:`settle` run after
them with one calendar, or never).

Times are kept at millisecond precision, the precision of the wire (Avro
``timestamp-millis``); finer digits of a JSON-form timestamp are truncated.

Bounds per case (issue 13, the project's choice: `onewindow.domain.limits`,
docs/state-rules.md "Bounds per case"): the state grows with the events of its case, so
:meth:`CaseState.apply` refuses (``Outcome.TOO_LARGE``, a dead letter ``TOO_LARGE``) a new
event that would make the case hold more than ``MAX_CASE_EVENTS`` events,
``MAX_CASE_TASKS`` tasks with updates, or ``MAX_CASE_FOLD_BYTES`` of state besides its
acceptance record (:meth:`CaseState.limit_breach` says which). The state stays a pure
function of the set of applied events; which events are in that set at the boundary
follows their arrival order (the first ones win, like ``EVENT_ID_CONFLICT``).

:func:`project` turns a state into the case view (a plain dict) given a calendar;
:func:`settle` does the same and records, in a closed case's state, the deadline it
closed with (the worker settles every state it writes).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from onewindow.domain.calendar import WorkingCalendar
from onewindow.domain.clock import from_ms, to_ms
from onewindow.domain.deadline import (
    Deadline,
    compute_deadline,
    deadline_key,
    local_date,
    pause_intervals,
)
from onewindow.domain.events import (
    ALL_FIELDS,
    CASE_ACCEPTED,
    CASE_WITHDRAWN,
    CERTIFICATE_ISSUED,
    MATERIAL_SUBMITTED,
    RANK_STATUS,
    STATUS_RANK,
    TASK_UPDATED,
    TERMINAL_STATUSES,
)
from onewindow.domain.limits import MAX_CASE_EVENTS, MAX_CASE_FOLD_BYTES, MAX_CASE_TASKS
from onewindow.domain.protection import ID_HASH, ID_MASKED, PROTECTED_FIELDS
from onewindow.errors import OneWindowError

__all__ = [
    "CaseMismatchError",
    "CaseState",
    "Outcome",
    "VIEW_KEYS",
    "bytes_fingerprint",
    "event_fingerprint",
    "fold",
    "project",
    "settle",
]

_FORMAT = 1  # first element of the serialised state, bumped on incompatible change

#: The keys of a projected case view, in order.
VIEW_KEYS: tuple[str, ...] = (
    "case_id", "status", "version", "service_code", "service_name", "case_kind", "channel",
    "window_id", "applicant", "promise", "accepted_at", "due_date", "due_at",
    "due_provisional", "paused_since", "closed_at", "tasks",
)


class Outcome(StrEnum):
    APPLIED = "APPLIED"
    DUPLICATE = "DUPLICATE"  # same event_id, same content: ignored, counted
    EVENT_ID_CONFLICT = "EVENT_ID_CONFLICT"  # same event_id, other content: dead-lettered
    TOO_LARGE = "TOO_LARGE"  # a new event past a bound of its case: dead-lettered


class CaseMismatchError(OneWindowError, ValueError):
    """An event was applied to the state of another case (a routing bug)."""


# ------------------------------------------------------------------ fingerprint


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$ts": to_ms(value)}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value) if isinstance(value, tuple) else sorted(value)
    return {"$repr": repr(value)}


#: the state's JSON (a tree of lists, dicts, str and int: no cycle to look for)
_STATE_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False)
_CANONICAL = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_json_default
)


def _json_len(text: str) -> int:
    """len(_STATE_ENCODER.encode(text)): a printable ASCII string without a quote or a
    backslash is itself in quotes; any other is encoded."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return len(text) + 2
    return len(_STATE_ENCODER.encode(text))


def event_fingerprint(event: Mapping[str, Any]) -> str:
    """A stable content hash of an event (blake2b-128, 32 hex characters).

    Canonical over the wire forms: only the fields of the event's type count (keys a
    codec might add are ignored); a top-level field that is absent equals one that is
    ``None``; timestamps count as UTC epoch milliseconds whatever their offset, dates
    as ISO strings; mapping keys are sorted; list order counts.
    """
    fields = ALL_FIELDS.get(event.get("type"))  # type: ignore[arg-type]
    if fields is None:
        body = {str(k): v for k, v in event.items() if v is not None}
    else:
        # a protected event's hashes (onewindow.domain.protection) count like the
        # fields they stand for
        body = {k: v for k, v in event.items()
                if v is not None and (k in fields or k in PROTECTED_FIELDS)}
    text = _CANONICAL.encode(body)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def bytes_fingerprint(canonical: bytes) -> str:
    """The content hash of an event given as a canonical encoding of it: ``bytes -> str``,
    blake2b-128 as 32 hex characters, like :func:`event_fingerprint`.

    Canonical: two events have the same encoding exactly when :func:`event_fingerprint`
    counts them as the same content. The case-state worker passes the canonical Avro
    encoding of the protected event (`onewindow.security.protected_form`), which it writes
    anyway, so it hashes bytes that exist instead of building a canonical JSON text per
    event (issue 15). The two hashes differ for one event: a state folded with one is
    compared with the other only where a caller says so (the worker falls back to
    :func:`event_fingerprint` when a stored fingerprint does not match:
    docs/state-rules.md, "Fingerprint").
    """
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


# -------------------------------------------------------------------- the state


def _applicant_record(applicant: Mapping[str, Any]) -> list[Any]:
    """``[kind, id_type, id_number, name]``; a protected applicant (its number replaced
    by ``id_hash`` and ``id_masked``: onewindow.domain.protection) adds those two after
    ``id_number``, which is then None."""
    record = [applicant.get("kind"), applicant.get("id_type"), applicant.get("id_number"),
              applicant.get("name")]
    if applicant.get(ID_HASH) is not None:
        record += [applicant.get(ID_HASH), applicant.get(ID_MASKED)]
    return record


def _acceptance_record(ev: Mapping[str, Any]) -> list[Any]:
    applicant = ev.get("applicant")
    promise = ev.get("promise")
    return [
        ev.get("service_code"),
        ev.get("service_name"),
        ev.get("case_kind"),
        ev.get("channel"),
        ev.get("window_id"),
        None if applicant is None else _applicant_record(applicant),
        None if promise is None else [promise.get("amount"), promise.get("unit")],
        [[t.get("task_id"), t.get("department"), t.get("name")] for t in ev.get("tasks") or ()],
    ]


def _plain(value: Any) -> Any:
    """StrEnum members to plain str, so states compare and serialise alike."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


class CaseState:
    """The fold state of one case. Apply events with :meth:`apply`; read it with
    :func:`project`."""

    __slots__ = ("_rest", "acc", "acc_key", "case_id", "closed_with", "seen", "tasks",
                 "withdrawn_ms")

    def __init__(self, case_id: str | None = None) -> None:
        self.case_id: str | None = case_id
        #: event_id -> fingerprint of every applied event.
        self.seen: dict[str, str] = {}
        #: [occurred_at_ms, event_id] of the acceptance record, and its fields.
        self.acc_key: list[Any] | None = None
        self.acc: list[Any] | None = None
        #: occurred_at_ms of the earliest CaseWithdrawn.
        self.withdrawn_ms: int | None = None
        #: task_id -> [department of its first event,
        #:             sorted [[ms, rank, event_id, department], ...]].
        self.tasks: dict[str, list[Any]] = {}
        #: The deadline the case closed with, while it is closed and its promise is in
        #: working days: ``[due_at_ms | None, due_provisional, deadline_key]``
        #: (`onewindow.domain.deadline.deadline_key`). Set and cleared by :func:`settle`
        #: only, never by :meth:`apply`; its room is reserved (``MAX_CLOSED_WITH_BYTES``),
        #: outside the bytes bound, like the acceptance record's.
        self.closed_with: list[Any] | None = None
        #: len(to_bytes()) without the acceptance record (both nulls) and without
        #: ``closed_with``, kept as events are applied; None until first needed. Not
        #: state: derived, never serialised.
        self._rest: int | None = None

    # ------------------------------------------------------------------ fold

    @property
    def version(self) -> int:
        return len(self.seen)

    def apply(self, event: Mapping[str, Any], fingerprint: str | None = None) -> Outcome:
        """Apply a validated event. ``fingerprint`` defaults to :func:`event_fingerprint`.

        The same ``event_id`` again is a ``DUPLICATE`` if its content is the same,
        else an ``EVENT_ID_CONFLICT``; neither changes the state (the first wins). A new
        event past a bound of its case (:meth:`limit_breach`) is ``TOO_LARGE`` and does
        not change the state either.
        """
        case_id = event["case_id"]
        if self.case_id is None:
            self.case_id = str(case_id)
            self._rest = None
        elif case_id != self.case_id:
            raise CaseMismatchError(
                f"event {event.get('event_id')!r} of case {case_id!r} "
                f"applied to case {self.case_id!r}"
            )
        event_id = str(event["event_id"])
        if fingerprint is None:
            fingerprint = event_fingerprint(event)
        known = self.seen.get(event_id)
        if known is not None:
            return Outcome.DUPLICATE if known == fingerprint else Outcome.EVENT_ID_CONFLICT
        breach, growth = self._breach(event, event_id, fingerprint)
        if breach is not None:
            return Outcome.TOO_LARGE

        etype = event["type"]
        ms = to_ms(event["occurred_at"])
        if etype == TASK_UPDATED:
            department = str(event["department"])
            entry = [ms, STATUS_RANK[event["status"]], event_id, department]
            task_id = str(event["task_id"])
            task = self.tasks.get(task_id)
            if task is None:
                self.tasks[task_id] = [department, [entry]]
            else:
                events = task[1]
                i = bisect.bisect_left(events, entry)
                events.insert(i, entry)
                if i == 0:
                    task[0] = department
        elif etype == CASE_ACCEPTED:
            key = [ms, event_id]
            if self.acc_key is None or key < self.acc_key:
                self.acc_key = key
                self.acc = _plain(_acceptance_record(event))
        elif etype == CASE_WITHDRAWN:
            if self.withdrawn_ms is None or ms < self.withdrawn_ms:
                self.withdrawn_ms = ms
        elif etype not in (MATERIAL_SUBMITTED, CERTIFICATE_ISSUED):
            raise OneWindowError(f"unknown event type {etype!r}")
        self.seen[event_id] = fingerprint
        self._rest += growth  # type: ignore[operator]  # set by _breach
        return Outcome.APPLIED

    # ----------------------------------------------------------- bounds per case

    def limit_breach(self, event: Mapping[str, Any], fingerprint: str | None = None
                     ) -> str | None:
        """Why applying ``event`` (validated, of this case) would break a bound of its case,
        or ``None``: ``event -> str | None``, the detail of its ``TOO_LARGE`` dead letter.

        The bounds (`onewindow.domain.limits`, the project's choice where domain.md is
        silent): at most ``MAX_CASE_EVENTS`` applied events; at most ``MAX_CASE_TASKS``
        tasks with a TaskUpdated (one more is refused: the update of a task with none
        yet); at most ``MAX_CASE_FOLD_BYTES`` of :meth:`to_bytes` besides the acceptance
        record (``acc`` and ``acc_key``, whose room is reserved: a CaseAccepted is only
        refused when its event id does not fit). An event already applied (a duplicate, a
        conflict) breaks none: it does not grow the state. Pure; the state is unchanged.
        """
        event_id = str(event["event_id"])
        if event_id in self.seen:
            return None
        if fingerprint is None:
            fingerprint = event_fingerprint(event)
        return self._breach(event, event_id, fingerprint)[0]

    def _breach(self, event: Mapping[str, Any], event_id: str, fingerprint: str
                ) -> tuple[str | None, int]:
        """``(why it breaks a bound or None, bytes it adds to the state besides the
        acceptance record)`` of a new event: the growth is exact (the property tests
        compare it with :meth:`to_bytes`)."""
        case = self.case_id if self.case_id is not None else str(event["case_id"])
        if len(self.seen) >= MAX_CASE_EVENTS:
            return (f"case {case!r} has reached {MAX_CASE_EVENTS} applied events, the most "
                    f"one case may hold", 0)
        # the seen entry: "event_id":"fingerprint", and a comma after the first
        growth = _json_len(event_id) + _json_len(fingerprint) + 1 + (1 if self.seen else 0)
        etype = event["type"]
        if etype == TASK_UPDATED:
            task_id = str(event["task_id"])
            department = str(event["department"])
            ms = to_ms(event["occurred_at"])
            entry = [ms, STATUS_RANK[event["status"]], event_id, department]
            # [ms,rank,"event_id","department"]
            entry_len = (len(str(ms)) + len(str(entry[1])) + _json_len(event_id)
                         + _json_len(department) + 5)
            task = self.tasks.get(task_id)
            if task is None:
                if len(self.tasks) >= MAX_CASE_TASKS:
                    return (f"case {case!r} has reached {MAX_CASE_TASKS} tasks with updates; "
                            f"task {task_id!r} would be one more", 0)
                # "task_id":["department",[entry]], and a comma after the first
                growth += (_json_len(task_id) + _json_len(department) + entry_len + 6
                           + (1 if self.tasks else 0))
            else:
                growth += entry_len + 1
                if bisect.bisect_left(task[1], entry) == 0:  # the task's new first event
                    growth += _json_len(department) - _json_len(task[0])
        elif etype == CASE_WITHDRAWN:
            ms = to_ms(event["occurred_at"])
            if self.withdrawn_ms is None or ms < self.withdrawn_ms:
                growth += len(str(ms)) - len(_STATE_ENCODER.encode(self.withdrawn_ms))
        size = self._rest_bytes() + growth
        if size > MAX_CASE_FOLD_BYTES:
            return (f"case {case!r} has reached its size: its state would be {size} bytes "
                    f"besides the acceptance record, over {MAX_CASE_FOLD_BYTES}", growth)
        return None, growth

    def _rest_bytes(self) -> int:
        """len(:meth:`to_bytes`) with the acceptance record (``acc_key``, ``acc``) null and
        without ``closed_with``."""
        if self._rest is None:
            if self.seen or self.tasks or self.withdrawn_ms is not None:
                self._rest = len(_STATE_ENCODER.encode([_FORMAT, self.case_id, self.seen, None,
                                                        None, self.withdrawn_ms, self.tasks]))
            else:  # a new case: [1,"case_id",{},null,null,null,{}]
                self._rest = len(_STATE_ENCODER.encode(self.case_id)) + 25
        return self._rest

    # ------------------------------------------------------- who owns a task

    def task_owner(self, task_id: str) -> str | None:
        """The department a task belongs to (domain.md section 3, "Who may change a task").

        ``str -> str | None``: the department the acceptance record declares for it, else
        the department of the task's first event in the order
        ``(occurred_at, rank(status), event_id)``; ``None`` for a task the state does not
        know. It can change as events arrive (an earlier CaseAccepted, an earlier update).
        """
        if self.acc is not None:
            for declared_id, department, _name in self.acc[7]:
                if declared_id == task_id:
                    return department  # type: ignore[no-any-return]
        task = self.tasks.get(task_id)
        return None if task is None else task[0]  # type: ignore[no-any-return]

    def is_out_of_role(self, event: Mapping[str, Any]) -> bool:
        """Whether a TaskUpdated is from another department than its task's owner, as
        of this state (section 3): ``event -> bool``, ``False`` for every other type.

        Such an update is applied (``version``, timeline) but does not count towards the
        task's status, its pauses or ``closed_at``. Asked right after :meth:`apply`, it
        is the timeline's mark of the event as applied then; a CaseAccepted with an
        earlier acceptance record applied later can change the owner.
        """
        if event.get("type") != TASK_UPDATED:
            return False
        owner = self.task_owner(str(event["task_id"]))
        return owner is not None and owner != event["department"]

    # --------------------------------------------------------- serialisation

    def to_bytes(self) -> bytes:
        """Compact canonical JSON (UTF-8) of the state: ``[1, case_id, seen, acc_key, acc,
        withdrawn_ms, tasks]``, and ``closed_with`` as an eighth element when it is set
        (so the state of a case that is not closed has the bytes it always had)."""
        doc = [
            _FORMAT,
            self.case_id,
            self.seen,
            self.acc_key,
            self.acc,
            self.withdrawn_ms,
            self.tasks,
        ]
        if self.closed_with is not None:
            doc.append(self.closed_with)
        return _STATE_ENCODER.encode(doc).encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> CaseState:
        """The state :meth:`to_bytes` wrote; a state of seven elements (written before
        ``closed_with`` existed, or of a case not closed) has none. Raises OneWindowError
        for anything else."""
        doc = json.loads(data)
        if not isinstance(doc, list) or len(doc) not in (7, 8) or doc[0] != _FORMAT:
            raise OneWindowError("not a serialised CaseState of a known format")
        state = cls.__new__(cls)
        (_, state.case_id, state.seen, state.acc_key, state.acc, state.withdrawn_ms,
         state.tasks) = doc[:7]
        state.closed_with = doc[7] if len(doc) == 8 else None
        state._rest = None
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CaseState):
            return NotImplemented
        return (
            self.case_id == other.case_id
            and self.seen == other.seen
            and self.acc_key == other.acc_key
            and self.acc == other.acc
            and self.withdrawn_ms == other.withdrawn_ms
            and self.tasks == other.tasks
            and self.closed_with == other.closed_with
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CaseState(case_id={self.case_id!r}, version={self.version})"


def fold(events: Iterable[Mapping[str, Any]], state: CaseState | None = None) -> CaseState:
    """Apply events in order (to a new state unless one is given) and return the state."""
    state = CaseState() if state is None else state
    for event in events:
        state.apply(event)
    return state


# ------------------------------------------------------------------- projection


def _case_status(has_acc: bool, withdrawn: bool, statuses: list[str]) -> str:
    if withdrawn:
        return "WITHDRAWN"
    if not has_acc:
        return "PENDING_ACCEPTANCE"
    if not statuses:
        return "ACCEPTED"
    if all(s in TERMINAL_STATUSES for s in statuses):
        live = {s for s in statuses if s != "WITHDRAWN"}
        if not live:
            return "WITHDRAWN"
        if live == {"APPROVED"}:
            return "APPROVED"
        if live == {"REJECTED"}:
            return "REJECTED"
        return "PARTIALLY_APPROVED"
    if "SUPPLEMENT_REQUESTED" in statuses:
        return "SUPPLEMENT_REQUIRED"
    if "SUSPENDED" in statuses:
        return "SUSPENDED"
    if any(STATUS_RANK[s] > 1 for s in statuses):
        return "IN_PROGRESS"
    return "ACCEPTED"


def project(state: CaseState, calendar: WorkingCalendar) -> dict[str, Any]:
    """The case view of section 3 and 4: exactly the keys of :data:`VIEW_KEYS`.

    Timestamps are UTC datetimes, ``due_date`` a date; ``tasks`` is sorted by
    ``task_id``, each ``{task_id, department, name, status, updated_at}``. ``applicant``
    is ``{kind, id_type, id_number, name}``, plus ``id_hash`` and ``id_masked`` (and
    ``id_number`` None) when the acceptance record was protected (the stream apps').

    The deadline (``due_date``, ``due_at``, ``due_provisional``) is computed with
    ``calendar``, but for a closed case whose state recorded the deadline it closed with
    (:func:`settle`) from the same inputs (its ``deadline_key``): that one is kept
    (section 4, "closed cases keep the deadline they closed with"). Pure: the state is
    not changed.
    """
    return _project(state, calendar, record=False)


def settle(state: CaseState, calendar: WorkingCalendar) -> dict[str, Any]:
    """:func:`project`, and record in the state the deadline a closed case keeps:
    ``(state, calendar) -> view``, changing ``state.closed_with`` only.

    Domain.md section 4: "closed cases keep the deadline they closed with". When the
    view is closed (``closed_at`` set) with a ``WORKING_DAY`` promise, the state keeps
    ``[due_at_ms | None, due_provisional, deadline_key]``: as it is when it was recorded
    from the same inputs (so a later calendar changes nothing), else the deadline just
    computed with ``calendar`` (the case has just closed, or a late event changed what
    its deadline is computed from: its acceptance, promise or paused dates, which no
    calendar decides). Otherwise (not closed, re-opened by a late event, another unit)
    it keeps none, and the deadline follows the calendar again. Closing depends only on
    the events, so with one calendar the state stays a function of the set of applied
    events; the calendar a closed case was settled with is the deliberate exception
    (docs/state-rules.md, "The calendar is a parameter of the fold").

    The case-state worker settles every state before it writes and publishes it
    (`stream_apps.case_processor`), a duplicate's included.
    """
    return _project(state, calendar, record=True)


@lru_cache(maxsize=4096)
def _deadline_of(calendar: WorkingCalendar, accepted_at: datetime, amount: int, unit: str,
                 closed: tuple[tuple[datetime, datetime], ...],
                 opens: tuple[datetime, ...]) -> Deadline:
    return compute_deadline(accepted_at, amount, unit, closed, opens, calendar)


def _deadline(accepted_at: datetime, amount: int, unit: str,
              closed: list[tuple[datetime, datetime]], opens: list[datetime],
              calendar: WorkingCalendar) -> Deadline:
    """`compute_deadline`, remembered: a case is projected again on every batch that
    changes it (the worker settles each state it writes), nearly always with the same
    acceptance, promise and pauses. Every calendar of the project answers the same for a
    date as long as it lives (a changed calendar is a new object:
    `onewindow.calendar_source.CalendarFile`), so it is part of the key; one that cannot
    be a key (unhashable) is asked every time. Pure; the same result."""
    try:
        return _deadline_of(calendar, accepted_at, amount, unit, tuple(closed), tuple(opens))
    except TypeError:  # an unhashable calendar
        return compute_deadline(accepted_at, amount, unit, closed, opens, calendar)


def _project(state: CaseState, calendar: WorkingCalendar, *, record: bool) -> dict[str, Any]:
    acc = state.acc
    declared: dict[str, tuple[Any, Any]] = {}
    if acc is not None:
        for task_id, department, name in acc[7]:
            declared.setdefault(task_id, (department, name))

    tasks: list[dict[str, Any]] = []
    statuses: list[str] = []
    closed_pauses: list[tuple[datetime, datetime]] = []
    open_starts: list[datetime] = []
    final_ms: int | None = None
    for task_id in sorted(declared.keys() | state.tasks.keys()):
        entry = state.tasks.get(task_id)
        if task_id in declared:
            department, name = declared[task_id]
        else:
            department, name = entry[0], None  # type: ignore[index]
        # Only the owner's events count towards status, pauses and closed_at (section 3,
        # "Who may change a task"); a three-element entry is from the first department.
        events = [] if entry is None else [
            e for e in entry[1] if (e[3] if len(e) > 3 else entry[0]) == department]
        if not events:
            status, updated_at = "PENDING", None
        else:
            last = events[-1]
            status, updated_at = RANK_STATUS[last[1]], from_ms(last[0])
            if final_ms is None or last[0] > final_ms:
                final_ms = last[0]
            closed, open_start = pause_intervals((e[0], RANK_STATUS[e[1]]) for e in events)
            closed_pauses.extend((from_ms(s), from_ms(e)) for s, e in closed)
            if open_start is not None:
                open_starts.append(from_ms(open_start))
        statuses.append(status)
        tasks.append({"task_id": task_id, "department": department, "name": name,
                      "status": status, "updated_at": updated_at})

    withdrawn = state.withdrawn_ms is not None
    status = _case_status(acc is not None, withdrawn, statuses)
    if withdrawn:
        closed_at: datetime | None = from_ms(state.withdrawn_ms)  # type: ignore[arg-type]
    elif acc is not None and statuses and all(s in TERMINAL_STATUSES for s in statuses):
        closed_at = from_ms(final_ms)  # type: ignore[arg-type]
    else:
        closed_at = None

    accepted_at = None if state.acc_key is None else from_ms(state.acc_key[0])
    promise = None if acc is None or acc[6] is None else {"amount": acc[6][0], "unit": acc[6][1]}
    due_date = due_at = None
    due_provisional = False
    paused_since = min(open_starts) if open_starts else None
    closed_with = None
    if accepted_at is not None and promise is not None:
        key = None if closed_at is None else deadline_key(
            accepted_at, promise["amount"], promise["unit"], closed_pauses, open_starts)
        kept = state.closed_with
        if key is not None and kept is not None and kept[2] == key:
            closed_with = kept  # the deadline it closed with, whatever the calendar now
            due_at = None if kept[0] is None else from_ms(kept[0])
            due_date = None if due_at is None else local_date(due_at)
            due_provisional = bool(kept[1])
        else:
            deadline = _deadline(accepted_at, promise["amount"], promise["unit"],
                                 closed_pauses, open_starts, calendar)
            due_date, due_at = deadline.due_date, deadline.due_at
            due_provisional = deadline.due_provisional
            if key is not None:
                closed_with = [to_ms(due_at), due_provisional, key]
    if record:
        state.closed_with = closed_with
    applicant = None
    if acc is not None and acc[5] is not None:
        kind, id_type, id_number, name, *protected = acc[5]
        applicant = {"kind": kind, "id_type": id_type, "id_number": id_number, "name": name}
        if protected:
            applicant[ID_HASH], applicant[ID_MASKED] = protected
    return {
        "case_id": state.case_id,
        "status": status,
        "version": state.version,
        "service_code": None if acc is None else acc[0],
        "service_name": None if acc is None else acc[1],
        "case_kind": None if acc is None else acc[2],
        "channel": None if acc is None else acc[3],
        "window_id": None if acc is None else acc[4],
        "applicant": applicant,
        "promise": promise,
        "accepted_at": accepted_at,
        "due_date": due_date,
        "due_at": due_at,
        "due_provisional": due_provisional,
        "paused_since": paused_since,
        "closed_at": closed_at,
        "tasks": tasks,
    }
