"""Read-model rows to API dicts: Shanghai timestamps, masked IDs, SLA status at read time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from onewindow.codec import format_timestamp
from onewindow.domain.calendar import WorkingCalendar
from onewindow.domain.deadline import sla_status


def ts(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def case_out(row: Mapping[str, Any], now: datetime, calendar: WorkingCalendar) -> dict[str, Any]:
    view = {k: row[k] for k in ("accepted_at", "closed_at", "due_at", "due_date",
                                "paused_since")}
    applicant = None
    if row["applicant_kind"] is not None:
        applicant = {"kind": row["applicant_kind"], "id_type": row["applicant_id_type"],
                     "id_masked": row["applicant_id_masked"], "name": row["applicant_name"]}
    promise = None
    if row["promise_amount"] is not None:
        promise = {"amount": row["promise_amount"], "unit": row["promise_unit"]}
    return {
        "case_id": row["case_id"],
        "status": row["status"],
        "version": row["version"],
        "service_code": row["service_code"],
        "service_name": row["service_name"],
        "case_kind": row["case_kind"],
        "channel": row["channel"],
        "window_id": row["window_id"],
        "accepted_at": ts(row["accepted_at"]),
        "due_date": day(row["due_date"]),
        "due_at": ts(row["due_at"]),
        "due_provisional": bool(row["due_provisional"]),
        "paused_since": ts(row["paused_since"]),
        "closed_at": ts(row["closed_at"]),
        "sla_status": sla_status(view, now, calendar),
        "applicant": applicant,
        "promise": promise,
        "tasks": [{"task_id": t["task_id"], "department": t["department"], "name": t["name"],
                   "status": t["status"], "updated_at": ts(t["updated_at"])}
                  for t in row["tasks"]],
    }


def timeline_entry_out(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"event_id": row["event_id"], "event_type": row["event_type"],
            "department": row["department"], "occurred_at": ts(row["occurred_at"]),
            "version": row["version"], "task_id": row["task_id"], "status": row["status"],
            "material_id": row["material_id"], "event": row["event"]}


def material_out(m: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "material_id": m["material_id"], "kind": m["kind"], "material_type": m["material_type"],
        "name": m["name"],
        "holder": {"id_type": m["holder_id_type"], "id_masked": m["holder_id_masked"],
                   "name": m["holder_name"]},
        "document_number": m["document_number"],
        "document_number_masked": m["document_number_masked"],
        "sha256": m["sha256"], "form": m["form"], "pages": m["pages"],
        "size_bytes": m["size_bytes"], "declared_fields": m["declared_fields"],
        "valid_until": day(m["valid_until"]), "occurred_at": ts(m["occurred_at"]),
        "case_id": m["case_id"], "department": m["department"], "task_id": m["task_id"],
        "avoidable": bool(m["avoidable"]),
    }


def link_out(link: Mapping[str, Any]) -> dict[str, Any]:
    return dict(link, found_at=ts(link["found_at"]))


def document_out(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "material_type": doc["material_type"], "name": doc["name"],
        "document_number": doc["document_number"],
        "document_number_masked": doc["document_number_masked"],
        "first_material_id": doc["first_material_id"],
        "first_on_file_at": ts(doc["first_on_file_at"]),
        "last_submitted_at": ts(doc["last_submitted_at"]),
        "times_submitted": doc["times_submitted"],
        "avoidable_submissions": doc["avoidable_submissions"],
        "submissions": [{"material_id": m["material_id"], "kind": m["kind"],
                         "case_id": m["case_id"], "department": m["department"],
                         "form": m["form"], "occurred_at": ts(m["occurred_at"]),
                         "sha256": m["sha256"], "avoidable": bool(m["avoidable"])}
                        for m in doc["materials"]],
        "conflicts": doc["conflicts"],
    }


def dead_letter_out(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in ("source_topic", "source_partition", "source_offset", "reason",
                              "detail", "department", "event_type", "case_id", "event_id",
                              "original_sha256", "original_size")} | {
        "original": d["original_json"], "dead_lettered_at": ts(d["dead_lettered_at"])}
