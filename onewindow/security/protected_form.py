"""The protected form of an event on the wire: one canonical Avro encoding of it, and the
event of a ``CaseActivity`` record read back (docs/privacy.md, issue 15).

The case-state worker folds each event in its protected form
(:func:`onewindow.domain.protection.protect_event`: ID numbers as keyed hash + mask, free
text scrubbed). :func:`encode_protected` writes that form as Avro single-object bytes:

* a TaskUpdated or CaseWithdrawn holds no ID number field, so its protected form has the
  shape of the event: it is written with the event's own (latest) input schema;
* a CaseAccepted, MaterialSubmitted or CertificateIssued is written with its ``Protected*``
  schema (``schemas/avro/Protected<Type>.v1.avsc``, namespace ``onewindow.output``: the
  party's ``id_number`` replaced by ``id_hash`` and ``id_masked``, the hashes of a
  document number and of declared values beside them).

The encoding is **canonical**: it is written by the codec's compiled writer
(`Codec.writer`, byte for byte what fastavro writes: every array in one block, every
number in its shortest form) with maps (``declared_fields``, ``declared_fields_hash``) in
key order, always with the latest schema. So two events have the same bytes exactly when
their protected forms are equal, with what ``event_fingerprint`` counted as equal (a
``None`` field and an absent one, timestamps to the millisecond, mapping keys in any
order; a property test holds the two together), and the worker fingerprints these bytes
(`onewindow.domain.case.bytes_fingerprint`), which it writes anyway as
``CaseActivity.event``, instead of building a canonical JSON text of the event. A plain
event (a caller that does not protect) is written canonically with its input schema.

:func:`decode_protected` reads such bytes back into the protected event (``type`` the
event type, the dict :func:`~onewindow.domain.protection.protect_event` gave);
:func:`activity_event` and :func:`activity_event_json` read the event of a
``CaseActivity`` record of any version (v3 ``event``, or the ``event_json`` of v1 and
v2), in its dict form (the materials router, the sink's material rows) or its JSON form
(the sink's timeline, which stores a redacted copy: :func:`protected_json`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from onewindow.codec import Codec
from onewindow.domain.events import (
    CASE_ACCEPTED,
    CASE_WITHDRAWN,
    CERTIFICATE_ISSUED,
    MATERIAL_SUBMITTED,
    TASK_UPDATED,
)
from onewindow.domain.protection import DECLARED_HASH, ID_HASH, NUMBER_HASH, NUMBER_MASKED
from onewindow.errors import DecodeError
from onewindow.security.id_protection import event_from_json

__all__ = [
    "PROTECTED_SCHEMAS",
    "activity_event",
    "activity_event_json",
    "decode_protected",
    "encode_protected",
    "protected_json",
]

_PREFIX = "Protected"
#: The party of each event type that has one (its ID number is what protection replaces).
_PARTY = {CASE_ACCEPTED: "applicant", MATERIAL_SUBMITTED: "holder",
          CERTIFICATE_ISSUED: "holder"}
#: The record name of each event type's protected form.
PROTECTED_SCHEMAS: Mapping[str, str] = {
    CASE_ACCEPTED: _PREFIX + CASE_ACCEPTED,
    MATERIAL_SUBMITTED: _PREFIX + MATERIAL_SUBMITTED,
    CERTIFICATE_ISSUED: _PREFIX + CERTIFICATE_ISSUED,
    TASK_UPDATED: TASK_UPDATED,
    CASE_WITHDRAWN: CASE_WITHDRAWN,
}
_EVENT_OF = {name: etype for etype, name in PROTECTED_SCHEMAS.items()}
#: Fields of a protected form that are absent, not null, when they do not apply.
_ABSENT_WHEN_NONE = (NUMBER_HASH, NUMBER_MASKED, DECLARED_HASH)


def _schema_of(event: Mapping[str, Any]) -> str:
    """The record an event is written with: its protected form's, or, for a plain event
    with a party (``id_number``: a caller that does not protect), its input schema."""
    etype = event["type"]
    party = _PARTY.get(etype)
    if party is not None and ID_HASH not in (event.get(party) or {}):
        return etype  # type: ignore[no-any-return]
    return PROTECTED_SCHEMAS[etype]


def encode_protected(codec: Codec, event: Mapping[str, Any]) -> bytes:
    """The canonical Avro single-object encoding of a protected event (module docstring):
    ``event -> bytes``. An event that is not protected (its party still has ``id_number``)
    is written canonically with its input schema. For the events the worker protects
    (decoded by the codec, then protected): it writes with `Codec.writer`, which does not
    check; an event of another shape raises a plain Python error (``KeyError`` for an
    unknown type)."""
    # maps in key order: the bytes do not depend on the order they came in
    return codec.writer(_schema_of(event), sorted_maps=True)(event)


def decode_protected(codec: Codec, data: bytes) -> dict[str, Any]:
    """An event from :func:`encode_protected`'s bytes: the dict it encoded, with ``type``
    the event type (the hashes that did not apply absent, ``document_number`` absent when
    it was replaced by its mask). Raises ``DecodeError`` for bytes that are not an event
    (protected, or plain in its input schema)."""
    record = codec.decode_record(data)
    name = record["type"]
    etype = _EVENT_OF.get(name)
    if etype is None:
        if name not in codec.event_types:
            raise DecodeError("UNKNOWN_SCHEMA", f"{name} is not an event")
        return record  # an event as its input schema has it (not protected, or no party)
    record["type"] = etype
    if etype in (MATERIAL_SUBMITTED, CERTIFICATE_ISSUED):
        if record.get(NUMBER_MASKED) is not None:
            del record["document_number"]
        for name in _ABSENT_WHEN_NONE:
            if record.get(name) is None:
                del record[name]
    return record


def activity_event(codec: Codec, activity: Mapping[str, Any]) -> dict[str, Any]:
    """The event of a decoded ``CaseActivity`` record, in its dict form: protected (v3, and
    v1/v2 records of a worker that protected events) or plain (a record written before):
    :func:`decode_protected` of ``event``, else `event_from_json` of ``event_json``.
    Raises ``DecodeError`` (``ValueError``) for a record that carries neither."""
    data = activity.get("event")
    if data is not None:
        return decode_protected(codec, data)
    text = activity.get("event_json")
    if text is None:
        raise DecodeError("UNDECODABLE", "the activity record carries no event")
    return event_from_json(codec, json.loads(text))


def protected_json(codec: Codec, event: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form (interfaces.md: timestamps ``+08:00``, null fields omitted) of a
    protected event in its dict form: the object the ``event_json`` of CaseActivity v1 and
    v2 carried for the same event."""
    return {"type": event["type"], **codec.record_to_json(_schema_of(event),
                                                          event)}  # type: ignore[arg-type]


def activity_event_json(codec: Codec, activity: Mapping[str, Any]) -> dict[str, Any]:
    """The event of a decoded ``CaseActivity`` record in its JSON form (interfaces.md;
    protected, or plain for a record written before the stream apps protected events):
    the ``event_json`` of v1 and v2 records, :func:`protected_json` of ``event`` in v3
    (the same object)."""
    if activity.get("event") is not None:
        return protected_json(codec, activity_event(codec, activity))
    text = activity.get("event_json")
    if text is None:
        raise DecodeError("UNDECODABLE", "the activity record carries no event")
    return json.loads(text)  # type: ignore[no-any-return]
