"""The limits of domain.md section 2: ``TOO_LARGE`` and the plausible dates.

Every bound on an input event's size or dates is a constant here, in one place;
`onewindow.domain.validation` applies the per-record ones, `onewindow.domain.case` and
`onewindow.domain.material_index` the per-case and per-document ones. Pure standard library.

Section 2, ``TOO_LARGE``: "the record is over 256 KiB, or it breaks a size limit: more
than 100 tasks, more than 64 ``declared_fields`` or a value over 2,000 characters, a
``note``, ``reason`` or name over 4,000 characters". Section 2, after the table: "an
``occurred_at`` before 2000-01-01, or a promise over 3,660 days or 87,840 hours, is
``INVALID_FIELD``". Characters are counted as Python ``str`` length (code points).

Two more bounds are the project's choice where the section is silent, so that what a
valid event makes the worker write stays well under Kafka's 1 MB record
(``stream_apps.case_processor`` gives the arithmetic): every other free string is at most
``MAX_CODE_CHARS`` and the event's strings at most ``MAX_JSON_BYTES`` as JSON.

What grows with the events of a case or with the materials of an index key is bounded
here too (issue 13; the project's choice, docs/state-rules.md "Bounds per case" and
docs/materials.md "Bounds"): no rule of one record bounds it, and each is one Kafka
record (the fold state and its changelog, CaseState; an index bucket).

* Per case (`onewindow.domain.case.CaseState.limit_breach`): at most ``MAX_CASE_EVENTS``
  applied events, ``MAX_CASE_TASKS`` tasks with an update, and ``MAX_CASE_FOLD_BYTES``
  of fold state besides the acceptance record, whose own room
  (``MAX_ACCEPTANCE_BYTES``) is reserved, like that of the deadline a closed case keeps
  (``MAX_CLOSED_WITH_BYTES``): a further event is ``TOO_LARGE``. So the fold
  state is at most ``MAX_FOLD_STATE_BYTES``, and CaseState (Avro, never larger than the
  fold state by more than a few KB) under 1 MB.
* Per index key (`onewindow.domain.material_index.key_admits`): at most
  ``MAX_MATERIALS_PER_KEY`` materials (the default of ``ONEWINDOW_MATERIALS_MAX_PER_KEY``);
  a further material is compared, not held, and counted. They are stored in buckets of
  at most ``MAX_MATERIALS_PER_BUCKET`` materials and ``MAX_BUCKET_BYTES``
  (`onewindow.domain.material_index.bucket_admits`), as many as the key needs. A
  declared value longer than ``MAX_INDEXED_VALUE_CHARS`` is held as its digest
  (`onewindow.domain.material_index.indexed`), so one entry is small.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

from onewindow.domain.events import (
    CASE_ACCEPTED,
    CASE_WITHDRAWN,
    CERTIFICATE_ISSUED,
    MATERIAL_SUBMITTED,
    TASK_UPDATED,
)

__all__ = [
    "EARLIEST_OCCURRED_AT",
    "MAX_ACCEPTANCE_BYTES",
    "MAX_BUCKET_BYTES",
    "MAX_CASE_EVENTS",
    "MAX_CASE_FOLD_BYTES",
    "MAX_CASE_TASKS",
    "MAX_CLOSED_WITH_BYTES",
    "MAX_CODE_CHARS",
    "MAX_DECLARED_FIELDS",
    "MAX_DECLARED_VALUE_CHARS",
    "MAX_FOLD_STATE_BYTES",
    "MAX_INDEXED_VALUE_CHARS",
    "MAX_JSON_BYTES",
    "MAX_MATERIALS_PER_BUCKET",
    "MAX_MATERIALS_PER_KEY",
    "MAX_PROMISE",
    "MAX_RECORD_BYTES",
    "MAX_TASKS",
    "MAX_TEXT_CHARS",
    "event_oversize",
    "record_oversize",
]

# ------------------------------------------------------- TOO_LARGE (section 2)

#: A record's bytes (key and value as consumed), checked before decoding.
MAX_RECORD_BYTES = 256 * 1024
MAX_TASKS = 100
MAX_DECLARED_FIELDS = 64
MAX_DECLARED_VALUE_CHARS = 2_000
#: ``note``, ``reason``, ``officer`` (a person's name) and every ``name``
#: (``service_name``, ``applicant.name``, ``holder.name``, ``tasks[].name``, a
#: material's ``name``).
MAX_TEXT_CHARS = 4_000
#: The project's choice where section 2 is silent: every other free string (codes,
#: identifiers, ID and document numbers, ``declared_fields`` keys, ``window_id``). The
#: task ids of every update are kept in the case's fold state, so they must be short.
MAX_CODE_CHARS = 256
#: The project's choice too: the event's strings written as JSON with every non-ASCII
#: character escaped (the larger of the two JSON forms the worker writes: the fold state
#: is ASCII JSON, the activity's copy UTF-8 JSON). A NUL is 6 bytes there (``\u0000``), so
#: 256 KiB of control characters would be 1.5 MiB of JSON, over Kafka's 1 MB record.
MAX_JSON_BYTES = 512 * 1024

# ---------------------------------- per case: what the fold keeps (the project's choice)

#: Most applied events one case holds (its ``version``). A further new event of the case
#: is ``TOO_LARGE``. A city's largest joint case (100 tasks, each a handful of updates,
#: its materials) stays far below; every applied event is a timeline row.
MAX_CASE_EVENTS = 2_000
#: Most tasks with at least one applied TaskUpdated one case holds, declared or not (an
#: update of an undeclared task creates it, domain.md section 3). A TaskUpdated that would
#: add one more is ``TOO_LARGE``; the acceptance record declares at most ``MAX_TASKS``
#: more, so a case has at most ``MAX_CASE_TASKS + MAX_TASKS`` tasks.
MAX_CASE_TASKS = 500
#: Room the acceptance record takes in the fold state (``CaseState.to_bytes``, ASCII
#: JSON), at most: its strings are at most ``MAX_JSON_BYTES`` as that JSON, plus the
#: applicant's keyed hash and mask and the punctuation of 100 tasks (tests pin the
#: largest valid acceptance under it). Reserved: no other event can take it.
MAX_ACCEPTANCE_BYTES = 560_000
#: Most bytes of the fold state besides the acceptance record (the applied event ids and
#: fingerprints, each task's entries): an event that would pass it is ``TOO_LARGE``. A
#: usual event adds ~100 bytes, the largest ~5 KB (64-character event ids and
#: 256-character task ids of characters JSON escapes).
MAX_CASE_FOLD_BYTES = 340_000
#: Room the deadline a closed case keeps takes in the fold state (``CaseState.closed_with``,
#: `onewindow.domain.case.settle`), at most: ``,[due_at_ms,false,"<16 hex>"]``, 43 bytes
#: for a ``due_at`` up to year 9999. Reserved, outside ``MAX_CASE_FOLD_BYTES``: a case
#: that closes is never pushed over by it.
MAX_CLOSED_WITH_BYTES = 64
#: The largest fold state (the table's value and its changelog record), under Kafka's
#: 1,000,000-byte record with room for the key and CaseState's few more bytes.
MAX_FOLD_STATE_BYTES = MAX_ACCEPTANCE_BYTES + MAX_CASE_FOLD_BYTES + MAX_CLOSED_WITH_BYTES

# ---------------------------- per index key: what a bucket holds (the project's choice)

#: Most materials one index key (``sha:``, ``doc:``, ``hold:``) holds, all its buckets
#: together (issue 15; docs/materials.md "Bounds": a company's document handed in with
#: every application for years stays under it; a key past it is a flood no department's
#: data makes, such as one file every holder shares).
MAX_MATERIALS_PER_KEY = 10_000
#: Most materials one stored bucket of a key holds (one table value and changelog record;
#: a key fills as many as it needs).
MAX_MATERIALS_PER_BUCKET = 1_500
#: Most bytes of one bucket (its materials' JSON lines, one table value and changelog
#: record), under Kafka's 1,000,000-byte record with room for the key.
MAX_BUCKET_BYTES = 900_000
#: A normalised declared value longer than this (characters) is held in an index as its
#: digest: the rules of domain.md section 5 only compare values for equality, and NFKC
#: can make one 2,000-character value 36,000 characters (U+FDFA is 18 letters).
MAX_INDEXED_VALUE_CHARS = 64

# ------------------------------- dates are plausible or refused (section 2): INVALID_FIELD

#: ``occurred_at`` earlier than this (2000-01-01, Asia/Shanghai) is ``INVALID_FIELD``.
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=timezone(timedelta(hours=8)))
#: Largest promised amount accepted per unit: 3,660 days, 87,840 hours (ten years and
#: more). A larger promise is surely a typo and would make the deadline computation walk
#: decades of dates, so it is ``INVALID_FIELD``.
MAX_PROMISE: Mapping[str, int] = {"WORKING_DAY": 3_660, "NATURAL_DAY": 3_660, "HOUR": 87_840}


# ------------------------------------------------------------------------ checks

#: Per type: the free-text fields (``MAX_TEXT_CHARS``), the other free strings
#: (``MAX_CODE_CHARS``) and the party whose ``name`` and ``id_number`` are bounded.
_TEXT_FIELDS: Mapping[str, tuple[str, ...]] = {
    CASE_ACCEPTED: ("service_name",), TASK_UPDATED: ("note", "officer"),
    MATERIAL_SUBMITTED: ("name",), CERTIFICATE_ISSUED: (), CASE_WITHDRAWN: ("reason",),
}
_CODE_FIELDS: Mapping[str, tuple[str, ...]] = {
    CASE_ACCEPTED: ("service_code", "window_id"), TASK_UPDATED: ("task_id",),
    MATERIAL_SUBMITTED: ("material_id", "material_type", "document_number", "task_id"),
    CERTIFICATE_ISSUED: ("task_id", "certificate_id", "certificate_type", "document_number"),
    CASE_WITHDRAWN: (),
}
_PARTY_FIELD: Mapping[str, str] = {
    CASE_ACCEPTED: "applicant", MATERIAL_SUBMITTED: "holder", CERTIFICATE_ISSUED: "holder",
}
#: Most bytes one character takes in ASCII JSON (an astral character: two ``\uXXXX``).
_MAX_ESCAPED_PER_CHAR = 12


class _TooLarge(Exception):  # noqa: N818 - internal control flow only
    pass


def _too_long(ev: Mapping[str, Any], field: str, path: str, limit: int) -> None:
    value = ev.get(field)
    if isinstance(value, str) and len(value) > limit:
        raise _TooLarge(f"{path}: {len(value)} characters, over {limit}")


_SCALARS = frozenset({int, bool, float, type(None), datetime, date})


def _strings(ev: Mapping[str, Any]) -> list[str]:
    """Every string of a decoded event: values, mapping keys, list items."""
    out: list[str] = []
    stack: list[Any] = [ev]
    while stack:
        value = stack.pop()
        kind = type(value)  # exact types first: isinstance of an ABC is slow, and hot here
        if kind is str or (kind not in _SCALARS and isinstance(value, str)):
            out.append(value)
        elif kind is dict or (kind not in _SCALARS and isinstance(value, Mapping)):
            for k, v in value.items():
                if isinstance(k, str):
                    out.append(k)
                stack.append(v)
        elif kind is list or kind is tuple or (kind not in _SCALARS
                                               and isinstance(value, list | tuple)):
            stack.extend(value)
    return out


def _json_bytes(strings: list[str]) -> int:
    """Bytes of ``strings`` as ASCII JSON string literals (quotes included), or 0 when a
    cheap bound shows they cannot be over ``MAX_JSON_BYTES`` (every ordinary event)."""
    if sum(map(len, strings)) * _MAX_ESCAPED_PER_CHAR + 2 * len(strings) <= MAX_JSON_BYTES:
        return 0
    return sum(len(json.dumps(s)) for s in strings)


def event_oversize(ev: Mapping[str, Any], etype: str,
                   record_bytes: int | None = None) -> str | None:
    """Why a decoded event of type ``etype`` is ``TOO_LARGE`` (the first limit it breaks,
    naming the field), or ``None``. A field of the wrong type is skipped here: the field
    checks of `onewindow.domain.validation` report it as ``INVALID_FIELD``.

    ``record_bytes``: the size of the Avro record it was decoded from, when known. Each
    UTF-8 byte of a string is at most 6 bytes of ASCII JSON and each string's length
    prefix (at least a byte) pays for its two quotes; what Avro does not carry as strings
    (field names, enum symbols, ``type``) is under 6 KB for the largest event (100 tasks).
    So a record of at most ``MAX_JSON_BYTES / 8`` bytes (64 KiB) makes at most ~400 KB:
    the walk is skipped."""
    try:
        _check_sizes(ev, etype, record_bytes)
    except _TooLarge as exc:
        return str(exc)
    return None


def _check_sizes(ev: Mapping[str, Any], etype: str, record_bytes: int | None) -> None:
    for field in _TEXT_FIELDS[etype]:
        _too_long(ev, field, field, MAX_TEXT_CHARS)
    for field in _CODE_FIELDS[etype]:
        _too_long(ev, field, field, MAX_CODE_CHARS)
    party_field = _PARTY_FIELD.get(etype)
    party = ev.get(party_field) if party_field else None
    if isinstance(party, Mapping):
        _too_long(party, "name", f"{party_field}.name", MAX_TEXT_CHARS)
        _too_long(party, "id_number", f"{party_field}.id_number", MAX_CODE_CHARS)
    tasks = ev.get("tasks") if etype == CASE_ACCEPTED else None
    if isinstance(tasks, list | tuple):
        if len(tasks) > MAX_TASKS:
            raise _TooLarge(f"tasks: {len(tasks)} tasks, over {MAX_TASKS}")
        for i, t in enumerate(tasks):
            if isinstance(t, Mapping):
                _too_long(t, "task_id", f"tasks[{i}].task_id", MAX_CODE_CHARS)
                _too_long(t, "name", f"tasks[{i}].name", MAX_TEXT_CHARS)
    fields = ev.get("declared_fields")
    if isinstance(fields, Mapping):
        if len(fields) > MAX_DECLARED_FIELDS:
            raise _TooLarge(f"declared_fields: {len(fields)} fields, "
                                      f"over {MAX_DECLARED_FIELDS}")
        for key, value in fields.items():
            if isinstance(key, str) and len(key) > MAX_CODE_CHARS:
                raise _TooLarge(f"declared_fields: a key of {len(key)} "
                                          f"characters, over {MAX_CODE_CHARS}")
            if isinstance(value, str) and len(value) > MAX_DECLARED_VALUE_CHARS:
                raise _TooLarge(f"declared_fields[{key!r}]: {len(value)} "
                                          f"characters, over {MAX_DECLARED_VALUE_CHARS}")
    if record_bytes is not None and record_bytes * 8 <= MAX_JSON_BYTES:
        return
    size = _json_bytes(_strings(ev))
    if size > MAX_JSON_BYTES:
        raise _TooLarge(f"event: its strings are {size} bytes as JSON, "
                                  f"over {MAX_JSON_BYTES}")


def record_oversize(size: int) -> str | None:
    """Why a record of ``size`` bytes (key and value, as consumed or about to be
    published) is ``TOO_LARGE``, or ``None`` when it is not over ``MAX_RECORD_BYTES``."""
    if size > MAX_RECORD_BYTES:
        return f"record: {size} bytes, over {MAX_RECORD_BYTES} (256 KiB)"
    return None
