"""Material files: what a scan or a PDF measures, computed the same way by every producer
of ``MaterialSubmitted`` events (domain.md section 1: ``sha256``, ``pages``,
``size_bytes``): the producer SDK (``onewindow material``, ``producers.materials``) and
the HTTP ingestion gateway's upload (``gateway.uploads``).

* :class:`FileDigest`: the SHA-256 (64 lowercase hex), the size in bytes and the first
  :data:`HEAD_BYTES` of a file fed in pieces, in order: nothing but the hash state and
  the head is kept, so a 200 MB scan never sits in memory.
* :func:`file_kind`: ``pdf`` or an image kind from the leading bytes (magic numbers);
  anything else is refused.
* :func:`pdf_pages`: the page count of a PDF with pypdf, from an open file: pypdf reads
  the cross-reference table at the end of the file and the page tree, not the pages'
  content. It needs the whole file at hand (random access), so a PDF that arrives as a
  stream is spooled to a private temporary file first (:class:`MaterialReceiver`). A PDF
  whose cross-reference table is damaged is rebuilt by pypdf by reading the whole file
  into memory; that is allowed up to :data:`MAX_PDF_READ_BYTES` (32 MiB) and refused as
  an unreadable PDF beyond, so no PDF is ever read whole into memory past that bound.
* An image counts as one page.

:func:`inspect_file` measures a file on disk; :class:`MaterialReceiver` measures a file
received in pieces (an HTTP upload). Both give the same :class:`FileFacts` for the same
bytes, and raise :class:`MaterialFileError` with one readable line for an empty file, a
file that is neither a PDF nor an image, or a PDF pypdf cannot read.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from onewindow.errors import OneWindowError

__all__ = ["CHUNK_BYTES", "HEAD_BYTES", "MAX_PDF_READ_BYTES", "FileDigest", "FileFacts",
           "MaterialFileError", "MaterialReceiver", "file_digest", "file_kind",
           "inspect_file", "pdf_pages"]

#: bytes per read of a file on disk (1 MiB)
CHUNK_BYTES = 1 << 20
#: the leading bytes that tell a file's kind (a PDF may carry junk before its header;
#: readers look for ``%PDF-`` within the first 1024 bytes)
HEAD_BYTES = 1024
#: the largest single read pypdf may make of a PDF (32 MiB): only the rebuild of a
#: damaged cross-reference table reads more, and such a PDF is refused past this size
MAX_PDF_READ_BYTES = 32 << 20

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
_KINDS = "a PDF or an image (JPEG, PNG, GIF, TIFF, BMP, WebP)"


class MaterialFileError(OneWindowError):
    """The file (or the metadata given with it) cannot make a valid MaterialSubmitted."""


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What a material file measures: ``sha256`` (64 lowercase hex of its bytes),
    ``size_bytes`` (the bytes hashed), ``pages`` (a PDF's page count, 1 for an image) and
    ``kind`` (``pdf``, ``jpeg``, ``png``, ``gif``, ``tiff``, ``bmp``, ``webp``)."""

    sha256: str
    size_bytes: int
    pages: int
    kind: str

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size_bytes": self.size_bytes, "pages": self.pages,
                "kind": self.kind}


def file_kind(head: bytes) -> str | None:
    """``pdf``, an image kind (``jpeg``, ``png``, ``gif``, ``tiff``, ``bmp``, ``webp``) or
    None, from a file's first :data:`HEAD_BYTES` bytes (fewer for a shorter file)."""
    if b"%PDF-" in head[:HEAD_BYTES]:
        return "pdf"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    for magic, kind in _IMAGE_MAGIC:
        if head.startswith(magic):
            return kind
    return None


class FileDigest:
    """SHA-256, size and head of a file fed with :meth:`update` in order (no copy of the
    file is kept: the hash state and at most :data:`HEAD_BYTES` bytes)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0
        self._head = bytearray()

    def update(self, data: bytes | memoryview) -> None:
        if len(self._head) < HEAD_BYTES:
            self._head += data[:HEAD_BYTES - len(self._head)]
        self._hash.update(data)
        self.size += len(data)

    @property
    def head(self) -> bytes:
        """The first :data:`HEAD_BYTES` bytes (all of them for a shorter file)."""
        return bytes(self._head)

    @property
    def head_complete(self) -> bool:
        """Whether the head is known: :data:`HEAD_BYTES` have been fed."""
        return len(self._head) >= HEAD_BYTES

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def file_digest(fh: BinaryIO, chunk: int = CHUNK_BYTES) -> tuple[str, int]:
    """``(sha256 hex, size in bytes)`` of a binary stream, read ``chunk`` bytes at a time."""
    digest = FileDigest()
    while block := fh.read(chunk):
        digest.update(block)
    return digest.sha256, digest.size


class _BoundedReader(io.BufferedReader):
    """A PDF file for pypdf that refuses any single read of more than ``limit`` bytes
    (pypdf's rebuild of a damaged cross-reference table reads the whole file)."""

    def __init__(self, raw: io.RawIOBase, limit: int) -> None:
        super().__init__(raw)
        self._limit = limit

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self._limit:
            left = os.fstat(self.fileno()).st_size - self.tell()
            want = left if size is None or size < 0 else min(size, left)
            if want > self._limit:
                raise _TooLargeRead(want)
        return super().read(size)


class _TooLargeRead(BaseException):  # noqa: N818 - a signal, never escapes pdf_pages
    """A BaseException: pypdf's recovery code catches ``Exception`` and would go on."""


def pdf_pages(path: Path | str, *, label: str | None = None,
              max_read: int = MAX_PDF_READ_BYTES) -> int:
    """The page count of the PDF at ``path`` (pypdf reads the cross-reference table and
    the page tree, never a single read over ``max_read`` bytes). :class:`MaterialFileError`
    ``"<label>: not a readable PDF (...)"`` when pypdf cannot read it, or when counting
    its pages would take a read over ``max_read`` (a damaged cross-reference table in a
    large file), or when it has no pages. ``label`` names the file in messages (default:
    the path)."""
    from pypdf import PdfReader  # noqa: PLC0415 - only the PDF path needs it
    from pypdf.errors import PdfReadError  # noqa: PLC0415

    label = label or str(path)
    try:
        with _BoundedReader(io.FileIO(str(path), "r"), max_read) as fh:
            reader = PdfReader(fh)
            if reader.is_encrypted:
                reader.decrypt("")  # many "protected" scans only restrict printing
            pages = len(reader.pages)
    except _TooLargeRead as exc:
        raise MaterialFileError(
            f"{label}: not a readable PDF (its cross-reference table is damaged, and "
            f"rebuilding it would read {exc.args[0]:,} bytes at once, over "
            f"{max_read:,}: repair the PDF)") from None
    except (PdfReadError, OSError, ValueError, KeyError, TypeError, AttributeError,
            IndexError, RecursionError, NotImplementedError) as exc:
        raise MaterialFileError(f"{label}: not a readable PDF ({exc})") from exc
    if pages < 1:
        raise MaterialFileError(f"{label}: the PDF has no pages")
    return pages


def _kind_of(digest: FileDigest, label: str) -> str:
    if digest.size == 0:
        raise MaterialFileError(f"{label}: the file is empty")
    kind = file_kind(digest.head)
    if kind is None:
        raise MaterialFileError(f"{label}: not {_KINDS}")
    return kind


def inspect_file(path: Path) -> dict[str, Any]:
    """``sha256``, ``size_bytes``, ``pages`` and ``kind`` of the material file at ``path``
    (:meth:`FileFacts.as_dict`); :class:`MaterialFileError` naming the path when it cannot
    be read, is empty, is neither a PDF nor an image, or is an unreadable PDF."""
    digest = FileDigest()
    try:
        with path.open("rb") as fh:
            while block := fh.read(CHUNK_BYTES):
                digest.update(block)
    except IsADirectoryError as exc:
        raise MaterialFileError(f"{path}: is a directory, not a file") from exc
    except OSError as exc:
        raise MaterialFileError(f"{path}: cannot read ({exc.strerror})") from exc
    kind = _kind_of(digest, str(path))
    pages = pdf_pages(path) if kind == "pdf" else 1
    return FileFacts(digest.sha256, digest.size, pages, kind).as_dict()


class MaterialReceiver:
    """A material file received in pieces (an upload), measured as it arrives.

    :meth:`write` feeds the bytes in order: they are hashed and counted and, once the
    head shows a PDF, appended to a temporary file in ``spool_dir`` (created by
    :func:`tempfile.mkstemp`: mode 0600, a name of its own) so that :meth:`finish` can
    count its pages; an image is never written anywhere. Once the head shows neither a
    PDF nor an image, :meth:`write` raises :class:`MaterialFileError` (there is no need
    to read the rest). :meth:`close` deletes the
    temporary file (use the receiver as a context manager, or call it in a ``finally``).
    ``label`` names the file in error messages. Not thread-safe: one writer at a time.
    """

    def __init__(self, spool_dir: Path, *, label: str = "file",
                 max_pdf_read: int = MAX_PDF_READ_BYTES) -> None:
        self._dir = spool_dir
        self._label = label
        self._max_read = max_pdf_read
        self.digest = FileDigest()
        self._kind: str | None = None
        self._spool: BinaryIO | None = None
        self.spool_path: Path | None = None

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self.digest.size

    def write(self, data: bytes | memoryview) -> None:
        """Feed the next bytes of the file."""
        if not data:
            return
        if self._kind is None:  # the head is still being gathered
            self.digest.update(data)
            if self.digest.head_complete:
                self._decide(self.digest.head, data)
                if self._kind == "unknown":  # no need to read the rest
                    raise MaterialFileError(f"{self._label}: not {_KINDS}")
            return
        self.digest.update(data)
        if self._spool is not None:
            self._spool.write(data)

    def _decide(self, head: bytes, last: bytes | memoryview) -> None:
        """The head is known: spool from the start when it is a PDF. ``last``: the data
        just fed, whose bytes past the head are not in ``head``."""
        self._kind = file_kind(head) or "unknown"
        if self._kind != "pdf":
            return
        fd, name = tempfile.mkstemp(prefix=f"{os.getpid()}-", suffix=".pdf", dir=self._dir)
        self.spool_path = Path(name)
        self._spool = os.fdopen(fd, "wb")
        # everything fed so far: the bytes before ``last``, then ``last`` itself
        before = self.digest.size - len(last)
        self._spool.write(head[:before])
        self._spool.write(last)

    def finish(self) -> FileFacts:
        """The file's :class:`FileFacts` once every byte was written (counting a PDF's
        pages: blocking, pypdf); :class:`MaterialFileError` for an empty file, one that is
        neither a PDF nor an image, or an unreadable PDF."""
        if self._kind is None and self.digest.size:
            self._decide(self.digest.head, self.digest.head)
        kind = _kind_of(self.digest, self._label)
        pages = 1
        if kind == "pdf":
            assert self._spool is not None and self.spool_path is not None
            self._spool.close()
            pages = pdf_pages(self.spool_path, label=self._label, max_read=self._max_read)
        return FileFacts(self.digest.sha256, self.digest.size, pages, kind)

    def close(self) -> None:
        """Delete the temporary file, if any (idempotent)."""
        if self._spool is not None:
            self._spool.close()
        if self.spool_path is not None:
            self.spool_path.unlink(missing_ok=True)
            self.spool_path = None

    def __enter__(self) -> MaterialReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
