"""The body of ``POST /ingest/v1/materials`` (docs/gateway.md): ``multipart/form-data``
parsed as it streams in, the file measured on the way and never kept.

Two parts, each once, in any order:

* ``metadata``: the ``MaterialSubmitted`` in the JSON form (interfaces.md) without what
  the gateway computes: a UTF-8 JSON object of at most :data:`MAX_METADATA_BYTES`, any
  part ``Content-Type`` (``application/json`` is the documented one; ``curl -F
  'metadata=<m.json'`` sends none). ``type`` may be left out; ``name`` defaults to the
  file part's file name (as ``onewindow material`` defaults to the file's name).
  ``sha256``, ``size_bytes`` and ``pages`` are the gateway's: when the metadata gives one
  it must equal what the gateway computed (422 ``invalid_metadata``), so a client can
  check that its file arrived whole.
* ``file``: the scan or PDF, at most ``max_file_bytes``. Its bytes go, as they arrive, to
  :class:`onewindow.material_files.MaterialReceiver`, the code of the SDK's ``onewindow
  material``: the SHA-256 and the size as it streams, its kind from the first bytes, and
  a PDF's pages counted by pypdf at the end, which needs the whole file at hand (the
  cross-reference table is at its end): a PDF is therefore spooled to a private temporary
  file (mode 0600) in the gateway's upload directory and deleted once counted, whatever
  happens; an image is never written anywhere.

:class:`UploadParser` is fed the body's bytes in order (python-multipart's streaming
parser: the parts' bytes are handed over as they are found, never gathered); every
refusal of the whole request is an :class:`UploadError` (a
:class:`~gateway.parsing.BodyError`): 415 not ``multipart/form-data``; 400 no boundary,
an unreadable multipart body, a part missing, repeated, unnamed or unknown, metadata
that is not a UTF-8 JSON object; 413 the file (or the metadata) over its limit, as soon
as the limit is passed (the rest is not read); 422 ``invalid_file`` (empty, neither a PDF
nor an image, an unreadable PDF: the SDK's message) and ``invalid_metadata``. The event
built from the metadata and the file's facts (:func:`material_event`) then goes through
the rules and the publish path of every event (``gateway.service``).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from gateway.parsing import BodyError, RawEvent, one_event
from onewindow.material_files import FileFacts, MaterialFileError, MaterialReceiver

__all__ = ["COMPUTED", "FILE", "MAX_METADATA_BYTES", "METADATA", "STALE_SPOOL_SECONDS",
           "Upload", "UploadError", "UploadParser", "material_event", "multipart_boundary",
           "prepare_upload_dir"]

METADATA = "metadata"
FILE = "file"
#: the metadata part's limit: a record is at most 256 KiB (domain.md section 2), its JSON
#: with escapes a few times that
MAX_METADATA_BYTES = 1 << 20
#: the fields the gateway computes from the file
COMPUTED = ("sha256", "size_bytes", "pages")
_TYPE = "MaterialSubmitted"
_PATH_SEPARATORS = re.compile(r"[\\/]")


class UploadError(BodyError):
    """The whole upload is refused: ``status``, ``code`` and ``detail`` of the JSON error."""


def _bad(detail: str) -> UploadError:
    return UploadError(400, "bad_request", detail)


def multipart_boundary(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` ``Content-Type``; :class:`UploadError`
    415 for another type, 400 without a usable boundary (RFC 2046: 1 to 70 characters)."""
    media, params = parse_options_header(content_type or "")
    if media.lower() != b"multipart/form-data":
        shown = media.decode("latin-1") or "none"
        raise UploadError(415, "unsupported_media_type",
                          f"Content-Type {shown!r}: a material is uploaded as "
                          "multipart/form-data (parts 'metadata' and 'file')")
    boundary = params.get(b"boundary", b"")
    if not 1 <= len(boundary) <= 70:
        raise _bad("Content-Type: multipart/form-data needs a boundary of 1 to 70 "
                   "characters")
    return boundary


@dataclass(frozen=True, slots=True)
class Upload:
    """What an upload carried: the metadata part's bytes, the file part's name (or None)
    and the file's facts."""

    metadata: bytes
    filename: str | None
    facts: FileFacts


class UploadParser:
    """Feed a ``multipart/form-data`` body with :meth:`write` in order, then
    :meth:`finish` (module docstring). The file's bytes go to ``receiver``; over
    ``max_file_bytes`` of them is a 413 at once. Blocking (hashing, the spool file, and
    pypdf in :meth:`finish`): call it from a worker thread. Not thread-safe."""

    def __init__(self, boundary: bytes, receiver: MaterialReceiver, *,
                 max_file_bytes: int) -> None:
        self._receiver = receiver
        self._max_file = max_file_bytes
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_end": self._end,
        })
        self._field = bytearray()
        self._value = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        self._part: str | None = None
        self._seen: set[str] = set()
        self._metadata = bytearray()
        self._filename: str | None = None
        self._ended = False

    # ------------------------------------------------------------------ feeding

    def write(self, data: bytes) -> None:
        """The body's next bytes; :class:`UploadError` as soon as it is known bad."""
        if self._ended:
            return  # after the closing boundary: the epilogue, ignored (RFC 2046)
        try:
            self._parser.write(data)
        except MultipartParseError as exc:
            raise _bad(f"body: not a readable multipart/form-data body ({exc})") from exc
        except MaterialFileError as exc:
            raise UploadError(422, "invalid_file", str(exc)) from exc

    def finish(self) -> Upload:
        """The upload once the whole body was written: the parts checked, the file's facts
        (a PDF's pages counted)."""
        if not self._ended:
            raise _bad("body: the multipart body ends before its closing boundary")
        missing = [p for p in (METADATA, FILE) if p not in self._seen]
        if missing:
            raise _bad(f"part {missing[0]!r} missing: an upload has the parts 'metadata' "
                       "(the MaterialSubmitted, JSON) and 'file' (the scan or PDF)")
        try:
            facts = self._receiver.finish()
        except MaterialFileError as exc:
            raise UploadError(422, "invalid_file", str(exc)) from exc
        return Upload(bytes(self._metadata), self._filename, facts)

    # ------------------------------------------------------------------ callbacks

    def _part_begin(self) -> None:
        self._headers.clear()
        self._part = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((bytes(self._field), bytes(self._value)))
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        raw = next((v for k, v in self._headers if k.strip().lower() ==
                    b"content-disposition"), None)
        if raw is None:
            raise _bad("a part without a Content-Disposition header: each part is "
                       "'form-data; name=\"metadata\"' or 'form-data; name=\"file\"'")
        try:
            header = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad("a part's Content-Disposition is not UTF-8") from exc
        msg = Message()
        msg["content-disposition"] = header
        name = msg.get_param("name", header="content-disposition")
        if msg.get_content_disposition() != "form-data" or not isinstance(name, str):
            raise _bad("a part's Content-Disposition is not 'form-data; name=...'")
        if name not in (METADATA, FILE):
            raise _bad(f"unexpected part {name[:64]!r}: an upload has the parts "
                       "'metadata' and 'file'")
        if name in self._seen:
            raise _bad(f"part {name!r} given twice: one file per upload")
        self._seen.add(name)
        self._part = name
        if name == FILE:
            try:
                filename = msg.get_filename()
            except (LookupError, ValueError):  # an RFC 2231 name in an unknown charset
                filename = None
            if isinstance(filename, str):
                filename = _PATH_SEPARATORS.split(filename)[-1].strip()
            self._filename = filename or None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self._part == FILE:
            if self._receiver.size + n > self._max_file:
                raise UploadError(413, "too_large",
                                  f"file: over {self._max_file:,} bytes (the gateway's "
                                  "limit for one material)")
            self._receiver.write(memoryview(data)[start:end])
        elif self._part == METADATA:
            if len(self._metadata) + n > MAX_METADATA_BYTES:
                raise UploadError(413, "too_large",
                                  f"metadata: over {MAX_METADATA_BYTES:,} bytes")
            self._metadata += data[start:end]

    def _end(self) -> None:
        self._ended = True


def material_event(upload: Upload) -> RawEvent:
    """The ``MaterialSubmitted`` of an upload in the JSON form, as the only event of the
    request: the metadata with ``type``, the computed ``sha256``, ``size_bytes`` and
    ``pages``, and ``name`` from the file name when the metadata has none. The rules of
    domain.md section 2 come next (a per-event answer); :class:`UploadError` 400 for
    metadata that is not a UTF-8 JSON object, 422 ``invalid_metadata`` for another
    ``type`` or a computed field that differs from the file's."""
    try:
        text = upload.metadata.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad(f"metadata: not UTF-8 (byte 0x{upload.metadata[exc.start]:02x} at "
                   f"offset {exc.start})") from exc
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise _bad("metadata: not valid JSON: nested too deeply") from exc
    except ValueError as exc:
        raise _bad(f"metadata: not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise _bad("metadata: expected a JSON object (the fields of the MaterialSubmitted), "
                   f"got {type(value).__name__}")
    kind = value.get("type", _TYPE)
    if kind != _TYPE:
        raise UploadError(422, "invalid_metadata",
                          f"type: this endpoint publishes {_TYPE} only, not "
                          f"{str(kind)[:64]!r}")
    facts = upload.facts
    computed: dict[str, Any] = {"sha256": facts.sha256, "size_bytes": facts.size_bytes,
                                "pages": facts.pages}
    for field in COMPUTED:
        if field in value and not _same(value[field], computed[field]):
            raise UploadError(422, "invalid_metadata",
                              f"{field}: {str(value[field])[:80]!r} given, the file's is "
                              f"{computed[field]!r} (leave it out: the gateway computes it)")
    event: dict[str, Any] = {"type": _TYPE, **value, **computed}
    if "name" not in value and upload.filename:
        event["name"] = upload.filename
    return one_event(event)


def _same(given: Any, computed: Any) -> bool:
    if isinstance(computed, str):
        return isinstance(given, str) and given.lower() == computed
    return type(given) is int and given == computed


#: a spool file untouched this long was left by a gateway stopped mid-upload (a live
#: upload writes to its file as it streams)
STALE_SPOOL_SECONDS = 3600.0


def prepare_upload_dir(path: Path, *, now: float | None = None) -> Path:
    """Create the gateway's upload directory (mode 0700) and delete the spool files in it
    left by a gateway killed mid-upload (untouched for :data:`STALE_SPOOL_SECONDS`; a
    gateway sharing the directory keeps its live ones). Returns ``path``."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    cutoff = (time.time() if now is None else now) - STALE_SPOOL_SECONDS
    for leftover in path.glob("*.pdf"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
    return path
