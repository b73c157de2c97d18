"""Material records at the source: a `MaterialSubmitted` event built from a file.

A department system hands over the file it received and the metadata it knows (case,
department, material type, holder ...). `material_event_from_file` computes what must
never be typed by hand: `sha256` (streamed in chunks, so a 200 MB scan never sits in
memory), `size_bytes` (the bytes actually hashed) and `pages` (the PDF page count from
pypdf, 1 for an image), with the core's `onewindow.material_files` (the code the HTTP
ingestion gateway's upload uses too), then checks the whole event against the rules of
domain.md section 2 that a source can check. A bad input raises `MaterialFileError` with
one readable line.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from onewindow.domain.validation import validate
from onewindow.material_files import (
    CHUNK_BYTES,
    MaterialFileError,
    file_digest,
    file_kind,
    inspect_file,
    pdf_pages,
)

__all__ = ["CHUNK_BYTES", "FORMS", "MaterialFileError", "file_digest", "file_kind",
           "inspect_file", "material_event_from_file", "parse_fields", "pdf_pages"]

FORMS = ("ORIGINAL", "COPY", "ELECTRONIC")


def material_event_from_file(
    path: Path | str,
    *,
    case_id: str,
    department: str,
    material_type: str,
    holder: Mapping[str, str],
    departments: frozenset[str] | set[str],
    name: str | None = None,
    document_number: str | None = None,
    declared_fields: Mapping[str, str] | None = None,
    form: str = "ELECTRONIC",
    task_id: str | None = None,
    material_id: str | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    uscc_exceptions: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The `MaterialSubmitted` event dict (docs/architecture.md) for a file.

    `material_id` and `event_id` default to fresh unique ids, `occurred_at` to now,
    `name` to the file's name. Raises `MaterialFileError` for an unreadable or unknown
    file, and for metadata that breaks a rule of domain.md section 2 (the reason code
    and the field are in the message). `uscc_exceptions`: the operator's known-valid
    USCCs failing their check (`onewindow.uscc_exceptions`), accepted as a holder.
    """
    path = Path(path)
    if form not in FORMS:
        raise MaterialFileError(f"form: {form!r} is not one of {', '.join(FORMS)}")
    info = inspect_file(path)
    now = clock()
    material_id = material_id or f"M-{uuid.uuid4().hex[:24]}"
    event = {
        "type": "MaterialSubmitted",
        "event_id": event_id or f"{material_id}-submitted"[:64],
        "case_id": case_id,
        "department": department,
        "occurred_at": occurred_at or now,
        "material_id": material_id,
        "material_type": material_type,
        "name": name or path.name,
        "holder": dict(holder),
        "document_number": document_number or None,
        "sha256": info["sha256"],
        "pages": info["pages"],
        "size_bytes": info["size_bytes"],
        "form": form,
        "declared_fields": dict(declared_fields or {}),
        "task_id": task_id,
    }
    rejection = validate(event, topic_department=None, departments=departments, now=now,
                         uscc_exceptions=uscc_exceptions)
    if rejection is not None:
        raise MaterialFileError(f"{rejection.reason}: {rejection.detail}")
    return event


def parse_fields(pairs: list[str] | None) -> dict[str, str]:
    """`["name=陈静", "area=88.5"]` -> a dict; `KEY=VALUE` with a non-empty key."""
    out: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise MaterialFileError(f"--field {pair!r}: expected KEY=VALUE")
        if key in out:
            raise MaterialFileError(f"--field {key!r} given twice")
        out[key] = value
    return out
