"""Output records to read-model rows, and a batch of them with the consumed offsets.

Pure apart from the codec: an output-topic record (already decoded) goes in, row dicts
come out. No ID number reaches the database in plaintext: the stream apps emit them
already hashed and masked (docs/privacy.md), and those are stored as they come, never
hashed twice; a record written before they did (plain ``id_number``) and a dead letter's
original are hashed and masked here (onewindow.security.id_protection, the same key).
:class:`Batch` keeps, per key, the row the
unit of work must write (the newest case version, the first timeline entry, material,
link and dead letter) and the next offset of every partition the batch read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from onewindow.codec import Codec
from onewindow.domain.identifiers import mask_id
from onewindow.domain.materials import (
    CERTIFICATE_ISSUED,
    MATERIAL_SUBMITTED,
    material_from_event,
)
from onewindow.domain.normalise import display_value, normalise_number
from onewindow.domain.protection import NUMBER_HASH, NUMBER_MASKED
from onewindow.errors import DecodeError
from onewindow.security.id_protection import IdProtector, event_from_json, is_protected
from onewindow.security.protected_form import activity_event, protected_json

__all__ = ["Batch", "RowMaker", "clean"]

MATERIAL_EVENTS = (MATERIAL_SUBMITTED, CERTIFICATE_ISSUED)


def clean(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL: replace it, so no record can poison a batch."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _cleaned(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with :func:`clean` applied to every value (the row itself when no value
    holds a NUL, the usual case: one check of each string, no copy)."""
    for v in row.values():
        if isinstance(v, str) and "\x00" in v:
            return {k: clean(v) for k, v in row.items()}
    return row


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


@dataclass
class Batch:
    """Rows to write in one transaction, deduplicated by key, plus the offsets read."""

    #: case_id -> (case row, task rows): the highest version; on a tie the later record
    cases: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=dict)
    timeline: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    materials: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    dead_letters: dict[tuple[str, int, int], dict[str, Any]] = field(default_factory=dict)
    #: (topic, partition) -> next offset to read
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    #: (topic label, Kafka timestamp of the input record, occurred_at or None, case_id of a
    #: case-state record or None), per record, for the latency metrics
    stamps: list[tuple[str, datetime | None, datetime | None, str | None]] = field(
        default_factory=list)
    records: int = 0

    def add_case(self, row: dict[str, Any], tasks: list[dict[str, Any]]) -> None:
        known = self.cases.get(row["case_id"])
        if known is None or known[0]["version"] <= row["version"]:
            self.cases[row["case_id"]] = (row, tasks)

    def add_timeline(self, row: dict[str, Any]) -> None:
        self.timeline.setdefault((row["case_id"], row["event_id"]), row)

    def add_material(self, row: dict[str, Any]) -> None:
        self.materials.setdefault(row["material_id"], row)

    def add_link(self, row: dict[str, Any]) -> None:
        self.links.setdefault((row["material_a"], row["material_b"]), row)

    def add_dead_letter(self, row: dict[str, Any]) -> None:
        key = (row["source_topic"], row["source_partition"], row["source_offset"])
        self.dead_letters.setdefault(key, row)

    def consumed(self, topic: str, partition: int, offset: int) -> None:
        key = (topic, partition)
        self.offsets[key] = max(self.offsets.get(key, 0), offset + 1)
        self.records += 1

    def __len__(self) -> int:
        return self.records


class RowMaker:
    """Turns decoded output records into rows (one per process; holds the hash key)."""

    def __init__(self, codec: Codec, protector: IdProtector) -> None:
        self.codec = codec
        self.protector = protector

    # ------------------------------------------------------------------ case state

    def case_rows(self, rec: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        p = self.protector
        applicant = rec.get("applicant")
        known = p.known_ids(rec)  # empty unless the record is from before protection
        id_hash, id_masked = p.party_id(applicant)
        promise = rec.get("promise")
        row = {
            "case_id": rec["case_id"],
            "version": rec["version"],
            "status": rec["status"],
            "service_code": rec.get("service_code"),
            "service_name": p.scrub(rec.get("service_name"), known),
            "case_kind": rec.get("case_kind"),
            "channel": rec.get("channel"),
            "window_id": rec.get("window_id"),
            "applicant_kind": None if applicant is None else applicant["kind"],
            "applicant_id_type": None if applicant is None else applicant["id_type"],
            "applicant_id_hash": id_hash,
            "applicant_id_masked": id_masked,
            "applicant_name": None if applicant is None else p.scrub(applicant["name"], known),
            "promise_amount": None if promise is None else promise["amount"],
            "promise_unit": None if promise is None else promise["unit"],
            "accepted_at": rec.get("accepted_at"),
            "due_date": rec.get("due_date"),
            "due_at": rec.get("due_at"),
            "due_provisional": bool(rec.get("due_provisional")),
            "paused_since": rec.get("paused_since"),
            "closed_at": rec.get("closed_at"),
            "last_event_id": rec.get("last_event_id"),
            "source_timestamp": rec.get("source_timestamp"),
        }
        tasks = [_cleaned({
            "case_id": rec["case_id"],
            "task_id": t["task_id"],
            "position": i,
            "department": t["department"],
            "name": p.scrub(t.get("name"), known),
            "status": t["status"],
            "updated_at": t.get("updated_at"),
        }) for i, t in enumerate(rec.get("tasks") or [])]
        return _cleaned(row), tasks

    # ------------------------------------------------------------------ activity

    def activity_rows(self, rec: Mapping[str, Any]
                      ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The timeline entry, and the material when the event is one. The event is the
        record's ``event`` (CaseActivity v3, Avro) or ``event_json`` (v1, v2): the
        timeline stores the redacted copy of its JSON form either way."""
        event = None if rec.get("event") is None else activity_event(self.codec, rec)
        obj = json.loads(rec["event_json"]) if event is None \
            else protected_json(self.codec, event)
        redacted = self.protector.redact_event(obj)
        entry = {
            "case_id": rec["case_id"],
            "event_id": rec["event_id"],
            "event_type": rec["event_type"],
            "department": rec["department"],
            "occurred_at": rec["occurred_at"],
            "version": rec["version"],
            "task_id": rec.get("task_id"),
            "status": rec.get("status"),
            "material_id": rec.get("material_id"),
            "event_json": _dumps(redacted),
            "source_topic": rec["source_topic"],
            "source_partition": rec["source_partition"],
            "source_offset": rec["source_offset"],
            "source_timestamp": rec.get("source_timestamp"),
            "out_of_role": bool(rec.get("out_of_role")),  # CaseActivity v2; v1 reads False
        }
        material = None
        if rec["event_type"] in MATERIAL_EVENTS:
            material = self.material_row(event_from_json(self.codec, obj) if event is None
                                         else event, rec.get("source_timestamp"))
        return _cleaned(entry), material

    def material_row(self, event: Mapping[str, Any],
                     source_timestamp: datetime | None) -> dict[str, Any]:
        """The material of a MaterialSubmitted / CertificateIssued, protected (as the
        stream apps emit it) or plain (a record from before they did): the same row.

        ``declared_fields`` are stored as the department sent them, for staff to read
        (:func:`~onewindow.domain.normalise.display_value`: format characters dropped,
        white space collapsed, not NFKC'd; ID numbers masked), so a value takes at most
        its 2,000 characters (domain.md section 2): its normalised form, which the
        material rules compare, can be 18 times longer (issue 13, docs/read-model.md)."""
        p = self.protector
        # the material's own declared values (normalised) are not what the row shows
        m = material_from_event({k: v for k, v in event.items() if k != "declared_fields"})
        holder_hash, holder_masked = p.party_id(event["holder"])
        if is_protected(event):
            known: set[str] = set()
            number = normalise_number(event.get("document_number")) or None
            sensitive = event.get(NUMBER_MASKED) is not None
            number_hash = event.get(NUMBER_HASH)
            # masked again: a record written before the mask showed less carries a wider one
            number_masked = mask_id(event.get(NUMBER_MASKED) or number)
        else:
            known = {normalise_number(event["holder"].get("id_number"))} | p.known_ids(event)
            number = m.document_number
            sensitive = p.is_sensitive_number(number, m.material_type, known)
            number_hash, number_masked = p.protect(number)
        values = sorted((k, display_value(v))
                        for k, v in (event.get("declared_fields") or {}).items())
        declared = {p.scrub(k, known): p.scrub(v, known) for k, v in values}
        row = {
            "material_id": m.material_id,
            "kind": m.kind,
            "material_type": m.material_type,
            "name": p.scrub(event.get("name"), known),
            "holder_id_type": m.holder.id_type,
            "holder_id_hash": holder_hash,
            "holder_id_masked": holder_masked,
            "holder_name": p.scrub(m.holder.name, known),
            "document_number": None if sensitive else number,
            "document_number_hash": number_hash,
            "document_number_masked": number_masked,
            "sha256": m.sha256,
            "form": m.form or None,
            "pages": event.get("pages"),
            "size_bytes": event.get("size_bytes"),
            "declared_fields": _dumps(declared),
            "valid_until": event.get("valid_until"),
            "occurred_at": m.occurred_at,
            "case_id": m.case_id,
            "department": m.department,
            "task_id": event.get("task_id"),
            "event_id": event["event_id"],
            "avoidable": False,
            "source_timestamp": source_timestamp,
        }
        return _cleaned(row)

    # ------------------------------------------------------------------ links

    def link_row(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        return _cleaned({
            "material_a": rec["material_a"],
            "material_b": rec["material_b"],
            "verdict": rec["verdict"],
            "differing_fields": _dumps([self.protector.scrub(f)
                                        for f in rec.get("differing_fields") or []]),
            "holders_differ": bool(rec.get("holders_differ")),
            "avoidable_material": rec.get("avoidable_material"),
            "case_a": rec.get("case_a"),
            "case_b": rec.get("case_b"),
            "found_at": rec["found_at"],
            "source_timestamp": rec.get("source_timestamp"),
        })

    # ------------------------------------------------------------------ dead letters

    def dead_letter_row(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        p = self.protector
        original: bytes = rec.get("original") or b""
        event: dict[str, Any] | None = None
        try:
            event = self.codec.decode(original)
        except DecodeError:
            event = None
        except Exception:  # noqa: BLE001 - an odd original must never poison the sink
            event = None
        original_json = None
        known: set[str] = set()
        if event is not None:
            try:
                obj = self.codec.to_json(event)
                known = p.known_ids(obj)
                original_json = _dumps(p.redact_event(obj))
            except Exception:  # noqa: BLE001 - an odd original must never poison the sink
                original_json = None
        key = rec.get("key")
        record_key = None if key is None else p.scrub(key.decode("utf-8", "replace"), known)
        return _cleaned({
            "source_topic": rec["source_topic"],
            "source_partition": rec["source_partition"],
            "source_offset": rec["source_offset"],
            "reason": rec["reason"],
            "detail": p.scrub(rec.get("detail") or "", known),
            "department": rec.get("department"),
            "record_key": record_key,
            "event_type": self._field(event, "type", known),
            "case_id": self._field(event, "case_id", known),
            "event_id": self._field(event, "event_id", known),
            "original_sha256": hashlib.sha256(original).hexdigest(),
            "original_size": len(original),
            "original_json": original_json,
            "dead_lettered_at": rec["dead_lettered_at"],
        })

    def _field(self, event: Mapping[str, Any] | None, name: str, known: set[str]) -> str | None:
        value = None if event is None else event.get(name)
        return self.protector.scrub(value, known) if isinstance(value, str) else None
