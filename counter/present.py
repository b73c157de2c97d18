"""Read-model rows to API dicts: Shanghai timestamps, masked IDs, SLA status at read time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from onewindow.codec import format_timestamp
from onewindow.departments import Registry
from onewindow.domain.calendar import WorkingCalendar
from onewindow.domain.deadline import local_date, sla_status, working_days_left
from onewindow.domain.limits import MAX_CASE_TASKS, MAX_TASKS

#: Tasks shown for one case (its card, the case API, the receipt, the lookup): every task
#: a case can have within the fold's bounds (docs/state-rules.md "Bounds per case"); a
#: case folded before they existed shows its first ones, and ``tasks_total`` says so.
CASE_TASKS = MAX_CASE_TASKS + MAX_TASKS
#: Tasks listed per case in a list of cases (search, ``/api/cases``); the board lists
#: none, only ``task_counts`` (issue 13: 20 cases of 10,000 tasks made an 18.6 MB board).
LIST_TASKS = 10
#: A holder's documents (``/api/holders/materials``, the case card) list per document its
#: newest ``DOCUMENT_SUBMISSIONS`` submissions (``times_submitted`` counts all) and its
#: first ``DOCUMENT_CONFLICTS`` CONFLICT link ends (``conflicts_total`` counts all):
#: issue 13, a holder with thousands of submissions made both answers megabytes.
DOCUMENT_SUBMISSIONS = 5
DOCUMENT_CONFLICTS = 5
#: Documents listed per holder on a case card, newest first (``total_documents`` counts
#: all): with at most ``MAX_HOLDERS`` (20) holders a card lists at most 1,000 documents.
CARD_DOCUMENTS = 50


def ts(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def case_out(row: Mapping[str, Any], now: datetime, calendar: WorkingCalendar) -> dict[str, Any]:
    """A case row of `onewindow.read_model.queries` as ``CaseOut``: its ``tasks`` as
    read (the query caps them), ``task_counts`` and ``tasks_total`` over all of them."""
    counts = row.get("task_counts")
    if counts is None:  # a row read without its counts: the tasks are all of them
        counts = {}
        for t in row["tasks"]:
            counts[t["status"]] = counts.get(t["status"], 0) + 1
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
        "tasks_total": sum(counts.values()),
        "task_counts": dict(counts),
        "tasks": [{"task_id": t["task_id"], "department": t["department"], "name": t["name"],
                   "status": t["status"], "updated_at": ts(t["updated_at"])}
                  for t in row["tasks"]],
    }


def timeline_entry_out(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"event_id": row["event_id"], "event_type": row["event_type"],
            "department": row["department"], "occurred_at": ts(row["occurred_at"]),
            "version": row["version"], "task_id": row["task_id"], "status": row["status"],
            "material_id": row["material_id"], "event": row["event"],
            "out_of_role": bool(row.get("out_of_role"))}


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
    """A document of :func:`onewindow.read_model.queries.holder_documents` as
    ``DocumentOut``: its listed submissions and conflicts, and the totals."""
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
        "conflicts_total": doc["conflicts_total"],
    }


def dead_letter_out(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in ("source_topic", "source_partition", "source_offset", "reason",
                              "detail", "department", "event_type", "case_id", "event_id",
                              "original_sha256", "original_size")} | {
        "original": d["original_json"], "dead_lettered_at": ts(d["dead_lettered_at"])}


# ------------------------------------------------------------------------ counter screen


def days_left(row: Mapping[str, Any], now: datetime, calendar: WorkingCalendar) -> int | None:
    """Working days left for an open, unpaused case with a due date; else None."""
    if row["closed_at"] is not None or row["paused_since"] is not None \
            or row["due_date"] is None or row["accepted_at"] is None:
        return None
    return working_days_left(row["due_date"], local_date(now), calendar)


def screen_case_out(row: Mapping[str, Any], now: datetime,
                    calendar: WorkingCalendar) -> dict[str, Any]:
    return case_out(row, now, calendar) | {"working_days_left": days_left(row, now, calendar)}


def card_document_out(doc: Mapping[str, Any], case: Mapping[str, Any],
                      today: date) -> dict[str, Any]:
    """A folded document as the case card shows it (see ``CardDocumentOut``), from the
    totals over all its materials (``holder_documents`` with the case's ``case_id``),
    not only the listed ones."""
    valid_until = doc["valid_until"]
    expired = valid_until is not None and valid_until < today
    accepted = case["accepted_at"]
    times, in_case = doc["times_submitted"], doc["in_case"]
    independent = (times > 1 or in_case < times
                   or (accepted is not None and doc["first_on_file_at"] < accepted))
    return document_out(doc) | {
        "valid_until": day(valid_until), "expired": expired, "in_this_case": in_case > 0,
        "reusable": bool(independent and not expired and not doc["conflicts_total"])}


def mask_name(name: str | None, kind: str | None) -> str:
    """A name for a citizen's screen: 陈静 -> 陈*, 欧阳娜娜 -> 欧***; a company keeps
    its first two and last four characters (广州**********有限公司)."""
    if not name:
        return ""
    name = name.strip()
    if kind == "ORGANIZATION" and len(name) > 6:
        return name[:2] + "*" * (len(name) - 6) + name[-4:]
    if len(name) == 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)


LOOKUP_EVENTS = frozenset({"CaseAccepted", "TaskUpdated", "CertificateIssued", "CaseWithdrawn"})


def lookup_out(row: Mapping[str, Any], steps: list[Mapping[str, Any]], now: datetime,
               calendar: WorkingCalendar, registry: Registry) -> dict[str, Any]:
    """The citizen's reduced view: no materials, officers, notes or unmasked data; the
    departments named (the public page cannot read the registry: it is staff-only)."""
    full = case_out(row, now, calendar)

    def names(code: str) -> dict[str, str | None]:
        d = registry.get(code)
        return {"department_name": d.name if d else None,
                "department_name_en": d.name_en if d else None}

    return {
        "case_id": full["case_id"], "service_name": full["service_name"],
        "status": full["status"], "accepted_at": full["accepted_at"],
        "due_date": full["due_date"], "due_at": full["due_at"], "promise": full["promise"],
        "working_days_left": days_left(row, now, calendar),
        "sla_status": full["sla_status"], "paused_since": full["paused_since"],
        "closed_at": full["closed_at"],
        "applicant": {"kind": row["applicant_kind"], "id_type": row["applicant_id_type"],
                      "name_masked": mask_name(row["applicant_name"], row["applicant_kind"]),
                      "id_masked": row["applicant_id_masked"]},
        "tasks": [{k: t[k] for k in ("department", "name", "status", "updated_at")}
                  | names(t["department"]) for t in full["tasks"]],
        "steps": [{"occurred_at": ts(e["occurred_at"]), "department": e["department"],
                   "event_type": e["event_type"], "status": e["status"]}
                  | names(e["department"])
                  for e in steps if e["event_type"] in LOOKUP_EVENTS],
    }
