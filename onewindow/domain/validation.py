"""Validation of input events: the dead-letter rules of domain.md section 2.

:func:`validate` takes a decoded event (a plain ``dict``, docs/architecture.md) and
returns ``None`` when it may be applied, else a :class:`Rejection` carrying one
reason code and a human-readable detail that names the offending field.

``UNDECODABLE`` and ``UNKNOWN_SCHEMA`` are produced by the codec, ``EVENT_ID_CONFLICT``
by the case fold (:meth:`onewindow.domain.case.CaseState.apply`), ``WRONG_PARTITION`` by
the stream worker (it needs the record's partition: ``stream_apps.case_processor``);
they are listed here so every reason code has one home.

When a record breaks several rules, the first in this order is reported:
``UNKNOWN_DEPARTMENT``, ``DEPARTMENT_MISMATCH``, ``UNAUTHORISED``, ``TOO_LARGE``,
``INVALID_ID_NUMBER``, ``INVALID_FIELD``, ``FUTURE_TIMESTAMP``. That is the order of the table in section 2,
except that ``UNAUTHORISED`` comes right after the two department rules: it is about
who sent the record, not what it says, and it is only meaningful once the sender is
known to be registered and to be the topic's owner (a spoofed or unknown department is
reported as such first: the role of a department that did not send it says nothing);
an unauthorised CaseAccepted is refused whatever its content, so its content is not
reviewed (an ``INVALID_ID_NUMBER`` would suggest that fixing the number makes it
acceptable). A field that a check needs but that is missing or of the wrong type is
``INVALID_FIELD`` (for instance a ``holder`` that is not a mapping cannot be checked for
its id number). ``TOO_LARGE`` comes right after the sender's rules and before any review
of the content (the departments of the declared tasks included): an oversized record is
not read further. The record's own size (256 KiB) is checked by the worker before it
decodes anything (:func:`check_record_size`), so it comes before every other reason.

Known exceptions (section 2, after the table): a ``USCC`` failing its check character is
accepted when its normalised form (section 5, :func:`onewindow.domain.normalise.
normalise_number`) is in ``uscc_exceptions``, the operator's list
(``ONEWINDOW_USCC_EXCEPTIONS_FILE``, `onewindow.uscc_exceptions`); a resident ID has no
such list. :func:`uscc_exception_used` tells a caller that an event it accepted needed the
list, so that it counts the acceptance (the stream worker's
``onewindow_uscc_exceptions_accepted_total``).

Limits (section 2, ``TOO_LARGE`` and the plausible dates) are the constants of
:mod:`onewindow.domain.limits`, re-exported here; characters are counted as Python ``str`` length (code points). Where the
section is silent, the project bounds every other free string too (``MAX_CODE_CHARS``)
and the event's size as JSON (``MAX_JSON_BYTES``), so that the outputs a valid event
makes are bounded (``stream_apps.case_processor`` documents the bound).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from onewindow.domain.events import (
    CASE_ACCEPTED,
    CASE_WITHDRAWN,
    CERTIFICATE_ISSUED,
    EVENT_TYPES,
    MATERIAL_SUBMITTED,
    TASK_UPDATED,
    CaseKind,
    Channel,
    Form,
    IdType,
    PartyKind,
    PromiseUnit,
    TaskStatus,
)
from onewindow.domain.identifiers import is_valid_resident_id, is_valid_uscc
from onewindow.domain.limits import (
    EARLIEST_OCCURRED_AT,
    MAX_CODE_CHARS,
    MAX_DECLARED_FIELDS,
    MAX_DECLARED_VALUE_CHARS,
    MAX_JSON_BYTES,
    MAX_PROMISE,
    MAX_TASKS,
    MAX_TEXT_CHARS,
    event_oversize,
    record_oversize,
)
from onewindow.domain.normalise import normalise_number

__all__ = [
    "ALL_REASONS",
    "DEPARTMENT_MISMATCH",
    "EVENT_ID_CONFLICT",
    "FUTURE_TIMESTAMP",
    "FUTURE_TOLERANCE",
    "INVALID_FIELD",
    "INVALID_ID_NUMBER",
    "OUTPUT_FAILED",
    "Rejection",
    "UNDECODABLE",
    "UNKNOWN_DEPARTMENT",
    "UNKNOWN_SCHEMA",
    "UNAUTHORISED",
    "COUNTER_ONLY_TYPES",
    "TOO_LARGE",
    "WRONG_PARTITION",
    "accepts",
    "check_record_size",
    "uscc_exception_used",
    "validate",
]

UNDECODABLE = "UNDECODABLE"
UNKNOWN_SCHEMA = "UNKNOWN_SCHEMA"
UNKNOWN_DEPARTMENT = "UNKNOWN_DEPARTMENT"
DEPARTMENT_MISMATCH = "DEPARTMENT_MISMATCH"
INVALID_ID_NUMBER = "INVALID_ID_NUMBER"
INVALID_FIELD = "INVALID_FIELD"
FUTURE_TIMESTAMP = "FUTURE_TIMESTAMP"
EVENT_ID_CONFLICT = "EVENT_ID_CONFLICT"
UNAUTHORISED = "UNAUTHORISED"
WRONG_PARTITION = "WRONG_PARTITION"
TOO_LARGE = "TOO_LARGE"
#: a valid record whose outputs could not be published (section 2, after the table):
#: given by the stream worker (``stream_apps.case_processor``), never by :func:`validate`.
OUTPUT_FAILED = "OUTPUT_FAILED"
#: Every dead-letter reason code, in the order of the table of section 2, then
#: ``OUTPUT_FAILED`` (the paragraph after it).
ALL_REASONS: tuple[str, ...] = (
    UNDECODABLE, UNKNOWN_SCHEMA, UNKNOWN_DEPARTMENT, DEPARTMENT_MISMATCH, INVALID_ID_NUMBER,
    INVALID_FIELD, FUTURE_TIMESTAMP, EVENT_ID_CONFLICT, UNAUTHORISED, TOO_LARGE,
    WRONG_PARTITION, OUTPUT_FAILED,
)

#: The event types only a department of role ``counter`` may publish (section 2,
#: ``UNAUTHORISED``): accepting a case and withdrawing it.
COUNTER_ONLY_TYPES: frozenset[str] = frozenset({CASE_ACCEPTED, CASE_WITHDRAWN})

#: ``occurred_at`` may be at most this far ahead of the processing clock.
FUTURE_TOLERANCE = timedelta(minutes=10)

_CASE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_DEPARTMENT = re.compile(r"[a-z0-9-]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")

_CASE_KINDS = frozenset(CaseKind)
_CHANNELS = frozenset(Channel)
_PARTY_KINDS = frozenset(PartyKind)
_ID_TYPES = frozenset(IdType)
_UNITS = frozenset(PromiseUnit)
_FORMS = frozenset(Form)
_WIRE_STATUSES = frozenset(s for s in TaskStatus if s != TaskStatus.PENDING)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event is dead-lettered: a reason code of section 2 and a detail."""

    reason: str
    detail: str


class _Invalid(Exception):  # noqa: N818 - internal control flow only
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)


def _bad(field: str, why: str) -> _Invalid:
    return _Invalid(INVALID_FIELD, f"{field}: {why}")


# ---------------------------------------------------------------------- field checks


def _get(ev: Mapping[str, Any], field: str, path: str, *, required: bool = True) -> Any:
    value = ev.get(field)
    if value is None and required:
        raise _bad(path, "missing")
    return value


def _str(ev: Mapping[str, Any], field: str, path: str, *, required: bool = True,
         nonempty: bool = False, max_len: int | None = None) -> str | None:
    value = _get(ev, field, path, required=required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(path, f"expected a string, got {type(value).__name__}")
    if nonempty and not value:
        raise _bad(path, "must not be empty")
    if max_len is not None and len(value) > max_len:
        raise _bad(path, f"longer than {max_len} characters")
    return value


def _enum(ev: Mapping[str, Any], field: str, path: str, allowed: frozenset[str]) -> str:
    value = _get(ev, field, path)
    if not isinstance(value, str) or value not in allowed:
        raise _bad(path, f"{value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def _int(ev: Mapping[str, Any], field: str, path: str, *, minimum: int = 0) -> int:
    value = _get(ev, field, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(path, f"expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise _bad(path, f"{value} is below {minimum}")
    return value


def _mapping(ev: Mapping[str, Any], field: str, path: str) -> Mapping[str, Any]:
    value = _get(ev, field, path)
    if not isinstance(value, Mapping):
        raise _bad(path, f"expected an object, got {type(value).__name__}")
    return value


def _party(ev: Mapping[str, Any], field: str, *, with_kind: bool) -> Mapping[str, Any]:
    party = _mapping(ev, field, field)
    if with_kind:
        _enum(party, "kind", f"{field}.kind", _PARTY_KINDS)
    _enum(party, "id_type", f"{field}.id_type", _ID_TYPES)
    _str(party, "id_number", f"{field}.id_number", nonempty=True)
    _str(party, "name", f"{field}.name")
    return party


def _sha256(ev: Mapping[str, Any]) -> None:
    value = _get(ev, "sha256", "sha256")
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise _bad("sha256", "expected 64 lowercase hexadecimal characters")


def _declared_fields(ev: Mapping[str, Any]) -> None:
    fields = _mapping(ev, "declared_fields", "declared_fields")
    for key, value in fields.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise _bad(f"declared_fields[{key!r}]", "keys and values must be strings")


def _check_common(ev: Mapping[str, Any]) -> None:
    _str(ev, "event_id", "event_id", nonempty=True, max_len=64)
    case_id = _get(ev, "case_id", "case_id")
    if not isinstance(case_id, str) or not _CASE_ID.fullmatch(case_id):
        raise _bad("case_id", "expected 1..64 characters of [0-9A-Za-z_-]")
    occurred_at = _get(ev, "occurred_at", "occurred_at")
    if not isinstance(occurred_at, datetime) or occurred_at.utcoffset() is None:
        raise _bad("occurred_at", "expected a timezone-aware datetime")
    if occurred_at < EARLIEST_OCCURRED_AT:
        raise _bad("occurred_at", f"{occurred_at.isoformat()} is before 2000-01-01")


def _check_accepted(ev: Mapping[str, Any]) -> None:
    _str(ev, "service_code", "service_code", nonempty=True)
    _str(ev, "service_name", "service_name")
    _enum(ev, "case_kind", "case_kind", _CASE_KINDS)
    _enum(ev, "channel", "channel", _CHANNELS)
    _str(ev, "window_id", "window_id", required=False)
    _party(ev, "applicant", with_kind=True)
    promise = _mapping(ev, "promise", "promise")
    unit = _enum(promise, "unit", "promise.unit", _UNITS)
    amount = _int(promise, "amount", "promise.amount")
    if amount > MAX_PROMISE[unit]:
        raise _bad("promise.amount", f"{amount} {unit} is beyond any plausible promise")
    tasks = _get(ev, "tasks", "tasks")
    if not isinstance(tasks, list | tuple):
        raise _bad("tasks", f"expected a list, got {type(tasks).__name__}")
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        path = f"tasks[{i}]"
        if not isinstance(task, Mapping):
            raise _bad(path, "expected an object")
        task_id = _str(task, "task_id", f"{path}.task_id", nonempty=True)
        if task_id in seen:
            raise _bad(f"{path}.task_id", f"{task_id!r} declared twice")
        seen.add(task_id)  # type: ignore[arg-type]
        _str(task, "department", f"{path}.department", nonempty=True)
        _str(task, "name", f"{path}.name")


def _check_task_updated(ev: Mapping[str, Any]) -> None:
    _str(ev, "task_id", "task_id", nonempty=True)
    _enum(ev, "status", "status", _WIRE_STATUSES)
    _str(ev, "officer", "officer", required=False)
    _str(ev, "note", "note", required=False)


def _check_material(ev: Mapping[str, Any]) -> None:
    _str(ev, "material_id", "material_id", nonempty=True)
    _str(ev, "material_type", "material_type", nonempty=True)
    _str(ev, "name", "name")
    _party(ev, "holder", with_kind=False)
    _str(ev, "document_number", "document_number", required=False)
    _sha256(ev)
    _int(ev, "pages", "pages")
    _int(ev, "size_bytes", "size_bytes")
    _enum(ev, "form", "form", _FORMS)
    _declared_fields(ev)
    _str(ev, "task_id", "task_id", required=False)


def _check_certificate(ev: Mapping[str, Any]) -> None:
    _str(ev, "task_id", "task_id", nonempty=True)
    _str(ev, "certificate_id", "certificate_id", nonempty=True)
    _str(ev, "certificate_type", "certificate_type", nonempty=True)
    _str(ev, "document_number", "document_number")
    _party(ev, "holder", with_kind=False)
    _sha256(ev)
    _declared_fields(ev)
    valid_until = ev.get("valid_until")
    if valid_until is not None and (
        not isinstance(valid_until, date) or isinstance(valid_until, datetime)
    ):
        raise _bad("valid_until", "expected a date")


def _check_withdrawn(ev: Mapping[str, Any]) -> None:
    _str(ev, "reason", "reason", required=False)


_CHECKS = {
    CASE_ACCEPTED: _check_accepted,
    TASK_UPDATED: _check_task_updated,
    MATERIAL_SUBMITTED: _check_material,
    CERTIFICATE_ISSUED: _check_certificate,
    CASE_WITHDRAWN: _check_withdrawn,
}


def _check_task_departments(ev: Mapping[str, Any], departments: Collection[str]) -> None:
    """A declared task's department must be registered too: nobody could ever decide it."""
    tasks = ev.get("tasks")
    if not isinstance(tasks, list | tuple):
        return  # reported as INVALID_FIELD by the field checks
    for i, task in enumerate(tasks):
        dept = task.get("department") if isinstance(task, Mapping) else None
        if isinstance(dept, str) and dept not in departments:
            raise _Invalid(UNKNOWN_DEPARTMENT, f"tasks[{i}].department: {dept!r} is not registered")


def _excepted_uscc(party: Any, exceptions: Collection[str]) -> bool:
    """A party whose USCC fails its check but is on the operator's list."""
    if not isinstance(party, Mapping) or party.get("id_type") != IdType.USCC:
        return False
    id_number = party.get("id_number")
    return isinstance(id_number, str) and bool(exceptions) \
        and not is_valid_uscc(id_number) and normalise_number(id_number) in exceptions


def _check_id_number(ev: Mapping[str, Any], field: str, exceptions: Collection[str]) -> None:
    party = ev.get(field)
    if not isinstance(party, Mapping):
        return  # reported as INVALID_FIELD by the field checks
    id_type, id_number = party.get("id_type"), party.get("id_number")
    if not isinstance(id_number, str):
        return
    if id_type == IdType.RESIDENT_ID and not is_valid_resident_id(id_number):
        raise _Invalid(INVALID_ID_NUMBER,
                       f"{field}.id_number: fails the GB 11643 check digit")
    if id_type == IdType.USCC and not is_valid_uscc(id_number) \
            and not _excepted_uscc(party, exceptions):
        raise _Invalid(INVALID_ID_NUMBER,
                       f"{field}.id_number: fails the GB 32100 check character")


def uscc_exception_used(event: Mapping[str, Any], uscc_exceptions: Collection[str]) -> bool:
    """Whether a valid event was accepted only through the operator's list of known USCC
    exceptions (module docstring): its applicant (CaseAccepted) or holder
    (MaterialSubmitted, CertificateIssued) is a ``USCC`` failing the GB 32100 check
    character whose normalised form is in ``uscc_exceptions``. ``False`` for any other
    event, and for an empty list."""
    if not uscc_exceptions or not isinstance(event, Mapping):
        return False
    etype = event.get("type")
    field = "applicant" if etype == CASE_ACCEPTED else \
        "holder" if etype in (MATERIAL_SUBMITTED, CERTIFICATE_ISSUED) else None
    return field is not None and _excepted_uscc(event.get(field), uscc_exceptions)


def check_record_size(size: int) -> Rejection | None:
    """``TOO_LARGE`` for a record (key and value bytes as consumed or about to be
    published) over ``MAX_RECORD_BYTES``, else ``None``. Checked before decoding."""
    detail = record_oversize(size)
    return None if detail is None else Rejection(TOO_LARGE, detail)


# ---------------------------------------------------------------------------- entry


def validate(
    event: Mapping[str, Any],
    *,
    topic_department: str | None,
    departments: Collection[str],
    now: datetime,
    counters: Collection[str] | None = None,
    record_bytes: int | None = None,
    uscc_exceptions: Collection[str] = frozenset(),
) -> Rejection | None:
    """The dead-letter verdict for a decoded event, or ``None`` when it may be applied.

    ``topic_department`` is the department owning the topic the record was read from
    (``None`` when it did not come from a department topic, e.g. the HTTP gateway
    before routing: then ``DEPARTMENT_MISMATCH`` is not checked). ``departments`` is
    the registry's set of codes; ``now`` the processing clock (timezone-aware).
    ``counters`` is the set of codes whose registered role is ``counter``
    (``onewindow.departments.Registry.counter_codes``): a CaseAccepted or CaseWithdrawn
    from any other department is ``UNAUTHORISED`` (section 2). ``None`` skips that rule,
    for a caller that does not know the roles (a producer's early warning); the stream
    worker, which enforces the rules, always passes it. ``record_bytes``: the size of the
    record it was decoded from, if known (it spares a walk of the event's strings:
    `onewindow.domain.limits.event_oversize`). ``uscc_exceptions``: the operator's list
    of known-valid USCCs failing their check character, normalised (section 5); an
    applicant or holder on it is not ``INVALID_ID_NUMBER``. The order of the checks is in
    the module docstring.
    """
    try:
        _validate(event, topic_department, departments, now, counters, record_bytes,
                  uscc_exceptions)
    except _Invalid as exc:
        return exc.rejection
    return None


def _validate(event: Mapping[str, Any], topic_department: str | None,
              departments: Collection[str], now: datetime,
              counters: Collection[str] | None, record_bytes: int | None,
              uscc_exceptions: Collection[str]) -> None:
    if not isinstance(event, Mapping):
        raise _bad("event", "expected an object")
    etype = event.get("type")
    if etype not in EVENT_TYPES:
        raise _bad("type", f"{etype!r} is not an event type")
    department = _str(event, "department", "department", nonempty=True)
    if department not in departments:
        raise _Invalid(UNKNOWN_DEPARTMENT, f"department: {department!r} is not registered")
    if not _DEPARTMENT.fullmatch(department):  # type: ignore[arg-type]
        raise _bad("department", "expected [a-z0-9-]+")
    if topic_department is not None and department != topic_department:
        raise _Invalid(
            DEPARTMENT_MISMATCH,
            f"department: {department!r} published on the topic of {topic_department!r}",
        )
    if counters is not None and etype in COUNTER_ONLY_TYPES and department not in counters:
        raise _Invalid(
            UNAUTHORISED,
            f"department: {department!r} may not publish {etype}: its role is not counter",
        )
    oversize = event_oversize(event, etype, record_bytes)
    if oversize is not None:
        raise _Invalid(TOO_LARGE, oversize)
    if etype == CASE_ACCEPTED:
        _check_task_departments(event, departments)
        _check_id_number(event, "applicant", uscc_exceptions)
    elif etype in (MATERIAL_SUBMITTED, CERTIFICATE_ISSUED):
        _check_id_number(event, "holder", uscc_exceptions)
    _check_common(event)
    _CHECKS[etype](event)
    occurred_at: datetime = event["occurred_at"]
    if occurred_at > now + FUTURE_TOLERANCE:
        raise _Invalid(
            FUTURE_TIMESTAMP,
            f"occurred_at: {occurred_at.isoformat()} is more than 10 minutes after "
            f"{now.isoformat()}",
        )


# ------------------------------------------------------------------- the fast acceptance

# Where the worker spends its time per event (issue 15): :func:`validate` walks a decoded
# event field by field through small helpers that build the detail of a rejection as they
# go. Nearly every record is valid, so the worker first asks :func:`accepts`, which only
# says yes or "ask validate": no detail, no helper per field, the answers about ID numbers
# and codes that recur in every event of a case cached.


#: Entries of the caches below: the numbers and ids of the cases a worker has in flight
#: (a few MiB at most).
_CACHE_ENTRIES = 4096


@lru_cache(maxsize=_CACHE_ENTRIES)
def _id_number_ok(id_type: str, id_number: str) -> bool:
    """An ID number of a type that has a check passes it (normalised, section 5); any other
    type is not checked. A USCC on the operator's list is left to :func:`validate`."""
    if id_type == IdType.RESIDENT_ID:
        return is_valid_resident_id(id_number)
    if id_type == IdType.USCC:
        return is_valid_uscc(id_number)
    return True


@lru_cache(maxsize=_CACHE_ENTRIES)
def _case_id_ok(case_id: str) -> bool:
    return _CASE_ID.fullmatch(case_id) is not None


@lru_cache(maxsize=4096)
def _department_ok(code: str) -> bool:
    return _DEPARTMENT.fullmatch(code) is not None


def _code(value: Any, *, nonempty: bool = True) -> bool:
    """A required code or identifier: a string, not empty, at most ``MAX_CODE_CHARS``."""
    return type(value) is str and (bool(value) or not nonempty) and len(value) <= MAX_CODE_CHARS


def _text(value: Any, *, optional: bool = False) -> bool:
    """A name, note or reason: a string of at most ``MAX_TEXT_CHARS`` (or None if optional)."""
    if value is None:
        return optional
    return type(value) is str and len(value) <= MAX_TEXT_CHARS


def _party_ok(party: Any, *, with_kind: bool) -> bool:
    if type(party) is not dict:
        return False
    id_type, id_number = party.get("id_type"), party.get("id_number")
    return ((not with_kind or party.get("kind") in _PARTY_KINDS) and id_type in _ID_TYPES
            and _code(id_number) and _text(party.get("name"))
            and _id_number_ok(id_type, id_number))


def _declared_ok(fields: Any) -> bool:
    if type(fields) is not dict or len(fields) > MAX_DECLARED_FIELDS:
        return False
    for key, value in fields.items():
        if type(key) is not str or len(key) > MAX_CODE_CHARS or type(value) is not str \
                or len(value) > MAX_DECLARED_VALUE_CHARS:
            return False
    return True


def _sha256_ok(value: Any) -> bool:
    return type(value) is str and _SHA256.fullmatch(value) is not None


def _count_ok(value: Any) -> bool:
    return type(value) is int and value >= 0


def _accepted_ok(ev: Mapping[str, Any], departments: Collection[str]) -> bool:
    promise, tasks = ev["promise"], ev["tasks"]
    if not (_code(ev["service_code"]) and _text(ev["service_name"])
            and ev["case_kind"] in _CASE_KINDS and ev["channel"] in _CHANNELS
            and (ev.get("window_id") is None or _code(ev["window_id"], nonempty=False))
            and _party_ok(ev["applicant"], with_kind=True)
            and type(promise) is dict and promise.get("unit") in _UNITS
            and type(tasks) is list and len(tasks) <= MAX_TASKS):
        return False
    amount = promise.get("amount")
    if type(amount) is not int or not 0 <= amount <= MAX_PROMISE[promise["unit"]]:
        return False
    seen: set[str] = set()
    for task in tasks:
        if type(task) is not dict:
            return False
        task_id, dept = task.get("task_id"), task.get("department")
        if not (_code(task_id) and task_id not in seen and type(dept) is str and dept
                and dept in departments and _text(task.get("name"))):
            return False
        seen.add(task_id)
    return True


def _task_updated_ok(ev: Mapping[str, Any], _departments: Collection[str]) -> bool:
    return (_code(ev["task_id"]) and ev["status"] in _WIRE_STATUSES
            and _text(ev.get("officer"), optional=True) and _text(ev.get("note"), optional=True))


def _material_ok(ev: Mapping[str, Any], _departments: Collection[str]) -> bool:
    number, task_id = ev.get("document_number"), ev.get("task_id")
    return (_code(ev["material_id"]) and _code(ev["material_type"]) and _text(ev["name"])
            and _party_ok(ev["holder"], with_kind=False)
            and (number is None or _code(number, nonempty=False))
            and _sha256_ok(ev["sha256"]) and _count_ok(ev["pages"])
            and _count_ok(ev["size_bytes"]) and ev["form"] in _FORMS
            and _declared_ok(ev["declared_fields"])
            and (task_id is None or _code(task_id, nonempty=False)))


def _certificate_ok(ev: Mapping[str, Any], _departments: Collection[str]) -> bool:
    valid_until = ev.get("valid_until")
    return (_code(ev["task_id"]) and _code(ev["certificate_id"])
            and _code(ev["certificate_type"]) and _code(ev["document_number"], nonempty=False)
            and _party_ok(ev["holder"], with_kind=False) and _sha256_ok(ev["sha256"])
            and _declared_ok(ev["declared_fields"])
            and (valid_until is None or type(valid_until) is date))


def _withdrawn_ok(ev: Mapping[str, Any], _departments: Collection[str]) -> bool:
    return _text(ev.get("reason"), optional=True)


_ACCEPTS = {
    CASE_ACCEPTED: _accepted_ok,
    TASK_UPDATED: _task_updated_ok,
    MATERIAL_SUBMITTED: _material_ok,
    CERTIFICATE_ISSUED: _certificate_ok,
    CASE_WITHDRAWN: _withdrawn_ok,
}


def accepts(
    event: Mapping[str, Any],
    *,
    topic_department: str | None,
    departments: Collection[str],
    now: datetime,
    counters: Collection[str] | None = None,
    record_bytes: int | None = None,
) -> bool:
    """``True`` only when :func:`validate` with the same arguments returns ``None``: the
    event may be applied. ``False`` says nothing: ask :func:`validate` for the verdict
    (and its reason and detail), which decides alone whatever is unusual. Pure.

    The rules are those of :func:`validate` (domain.md section 2, the order does not matter
    for a yes), checked without building a detail and with the answers that recur in the
    events of a case (an ID number's check character, a case id's format) cached, so the
    stream worker pays for the field by field review only for the records it rejects. It
    is made for an event as the codec decodes it (every field of its type present, with
    its schema's Python type: ``str``, ``int``, ``dict``, ``list``, UTC ``datetime``); an
    event of any other shape (a string subclass, a ``datetime`` in another zone, a mapping
    that is not a ``dict``) is "ask :func:`validate`", never an error. Without
    ``record_bytes``, or for a record over 64 KiB, it always asks (the size of such an
    event as JSON needs the walk of `onewindow.domain.limits.event_oversize`). A USCC on
    the operator's list of exceptions is asked too (rare: :func:`validate` takes the list).
    """
    try:
        return _accepts(event, topic_department, departments, now, counters, record_bytes)
    except (KeyError, TypeError, AttributeError):  # a field missing, a value of another type
        return False


def _accepts(event: Mapping[str, Any], topic_department: str | None,
             departments: Collection[str], now: datetime,
             counters: Collection[str] | None, record_bytes: int | None) -> bool:
    check = _ACCEPTS.get(event.get("type"))  # type: ignore[arg-type]
    if check is None or record_bytes is None or record_bytes * 8 > MAX_JSON_BYTES:
        return False
    department = event["department"]
    if type(department) is not str or not department or department not in departments \
            or not _department_ok(department):
        return False
    if topic_department is not None and department != topic_department:
        return False
    if counters is not None and event["type"] in COUNTER_ONLY_TYPES \
            and department not in counters:
        return False
    event_id, case_id, occurred_at = event["event_id"], event["case_id"], event["occurred_at"]
    if type(event_id) is not str or not event_id or len(event_id) > 64:
        return False
    if type(case_id) is not str or not _case_id_ok(case_id):
        return False
    if type(occurred_at) is not datetime or occurred_at.tzinfo is not UTC \
            or occurred_at < EARLIEST_OCCURRED_AT or occurred_at > now + FUTURE_TOLERANCE:
        return False
    return check(event, departments)
