"""Material records at the source: a `MaterialSubmitted` event built from a file.

A department system hands over the file it received and the metadata it knows (case,
department, material type, holder ...). `material_event_from_file` computes what must
never be typed by hand: `sha256` (streamed in chunks, so a 200 MB scan never sits in
memory), `size_bytes` (the bytes actually hashed) and `pages` (the PDF page count from
pypdf, 1 for an image), then checks the whole event against the rules of domain.md
section 2 that a source can check. A bad input raises `MaterialFileError` with one
readable line.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from onewindow.domain.validation import validate
from onewindow.errors import OneWindowError

CHUNK_BYTES = 1 << 20  # 1 MiB per read

#: leading bytes -> file kind
_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"BM", "bmp"),
)
FORMS = ("ORIGINAL", "COPY", "ELECTRONIC")


class MaterialFileError(OneWindowError):
    """The file or the metadata given with it cannot make a valid MaterialSubmitted."""


def file_digest(fh: BinaryIO, chunk: int = CHUNK_BYTES) -> tuple[str, int]:
    """`(sha256 hex, size in bytes)` of a binary stream, read `chunk` bytes at a time."""
    h = hashlib.sha256()
    size = 0
    while True:
        block = fh.read(chunk)
        if not block:
            break
        h.update(block)
        size += len(block)
    return h.hexdigest(), size


def file_kind(head: bytes) -> str | None:
    """`pdf`, an image kind (`jpeg`, `png`, `gif`, `tiff`, `bmp`, `webp`) or None."""
    # A PDF may carry junk before its header; readers look within the first 1024 bytes.
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    for magic, kind in _IMAGE_MAGIC:
        if head.startswith(magic):
            return kind
    return None


def pdf_pages(path: Path) -> int:
    """The page count of a PDF (pypdf reads the cross-reference table, not every page)."""
    from pypdf import PdfReader  # noqa: PLC0415 - only the PDF path needs it
    from pypdf.errors import PdfReadError  # noqa: PLC0415

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            reader.decrypt("")  # many "protected" scans only restrict printing
        pages = len(reader.pages)
    except (PdfReadError, OSError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        raise MaterialFileError(f"{path}: not a readable PDF ({exc})") from exc
    if pages < 1:
        raise MaterialFileError(f"{path}: the PDF has no pages")
    return pages


def inspect_file(path: Path) -> dict[str, Any]:
    """`sha256`, `size_bytes`, `pages` and `kind` of a material file."""
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
            fh.seek(0)
            sha, size = file_digest(fh)
    except IsADirectoryError as exc:
        raise MaterialFileError(f"{path}: is a directory, not a file") from exc
    except OSError as exc:
        raise MaterialFileError(f"{path}: cannot read ({exc.strerror})") from exc
    if size == 0:
        raise MaterialFileError(f"{path}: the file is empty")
    kind = file_kind(head)
    if kind is None:
        raise MaterialFileError(f"{path}: not a PDF or an image (JPEG, PNG, GIF, TIFF, BMP, "
                                "WebP)")
    pages = pdf_pages(path) if kind == "pdf" else 1
    return {"sha256": sha, "size_bytes": size, "pages": pages, "kind": kind}


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
) -> dict[str, Any]:
    """The `MaterialSubmitted` event dict (docs/architecture.md) for a file.

    `material_id` and `event_id` default to fresh unique ids, `occurred_at` to now,
    `name` to the file's name. Raises `MaterialFileError` for an unreadable or unknown
    file, and for metadata that breaks a rule of domain.md section 2 (the reason code
    and the field are in the message).
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
    rejection = validate(event, topic_department=None, departments=departments, now=now)
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
