"""onewindow.material_files: a file measured in pieces (an upload) gives the same facts as
the same file on disk (the SDK's path); a PDF is spooled privately and deleted, an image
never; bad files are refused with one line; no PDF is read whole into memory."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.material_files import (
    HEAD_BYTES,
    FileFacts,
    MaterialFileError,
    MaterialReceiver,
    inspect_file,
    pdf_pages,
)
from tests.material_support import write_pdf

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20


def _received(data: bytes, spool: Path, sizes: list[int]) -> FileFacts:
    with MaterialReceiver(spool) as r:
        i = 0
        for n in sizes:
            r.write(data[i:i + n])
            i += n
        r.write(data[i:])
        return r.finish()


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pdf(tmp_path_factory.mktemp("pdf") / "deed.pdf", pages=3,
                     payload_bytes=300_000)


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(0, 4000), max_size=12))
def test_pieces_or_a_file_on_disk_give_the_same_facts(
        pdf: Path, tmp_path_factory: pytest.TempPathFactory, sizes: list[int]) -> None:
    spool = tmp_path_factory.mktemp("spool")
    data = pdf.read_bytes()
    facts = _received(data, spool, sizes)
    assert facts.as_dict() == inspect_file(pdf)
    assert facts == FileFacts(hashlib.sha256(data).hexdigest(), len(data), 3, "pdf")
    assert list(spool.iterdir()) == []  # the spooled copy is gone
    image = _received(PNG, spool, sizes)
    assert (image.kind, image.pages, image.size_bytes) == ("png", 1, len(PNG))


def test_small_files_under_the_head_size(tmp_path: Path) -> None:
    small = write_pdf(tmp_path / "s.pdf", pages=2)
    assert small.stat().st_size < HEAD_BYTES
    got = _received(small.read_bytes(), tmp_path, [1] * 50)
    assert (got.kind, got.pages) == ("pdf", 2)
    assert _received(b"\xff\xd8\xff\xe0", tmp_path, []).kind == "jpeg"


def test_a_pdf_is_spooled_privately_and_an_image_never(tmp_path: Path, pdf: Path) -> None:
    r = MaterialReceiver(tmp_path)
    r.write(PNG)
    assert r.spool_path is None and list(tmp_path.iterdir()) == []
    r.finish()
    r = MaterialReceiver(tmp_path)
    try:
        r.write(pdf.read_bytes()[:5000])
        assert r.spool_path is not None and r.spool_path.parent == tmp_path
        assert stat.S_IMODE(r.spool_path.stat().st_mode) == 0o600
    finally:
        r.close()
    assert list(tmp_path.iterdir()) == []
    r.close()  # idempotent


def test_bad_files_are_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(MaterialFileError, match="^upload: the file is empty$"):
        MaterialReceiver(tmp_path, label="upload").finish()
    r = MaterialReceiver(tmp_path)
    r.write(b"not a scan" * 10)  # shorter than the head: known at the end
    with pytest.raises(MaterialFileError, match="^file: not a PDF or an image"):
        r.finish()
    r = MaterialReceiver(tmp_path)
    with pytest.raises(MaterialFileError, match="not a PDF or an image"):
        r.write(b"x" * (HEAD_BYTES + 1))  # known once the head is: no need to read on
    with MaterialReceiver(tmp_path) as r:
        r.write(b"%PDF-1.7\n garbage")
        with pytest.raises(MaterialFileError, match="^file: not a readable PDF"):
            r.finish()
    assert list(tmp_path.iterdir()) == []


def test_no_pdf_is_read_whole_into_memory(tmp_path: Path) -> None:
    """Counting the pages of a well-formed PDF takes small reads only; a damaged one
    (pypdf rebuilds its cross-reference table from the whole file) is refused past the
    bound, and rebuilt under it."""
    good = write_pdf(tmp_path / "good.pdf", pages=4, payload_bytes=2_000_000)
    assert pdf_pages(good, max_read=64 * 1024) == 4
    data = good.read_bytes()
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(data[:data.rindex(b"startxref")] + b"startxref\n12345\n%%EOF\n")
    assert pdf_pages(damaged) == 4
    with pytest.raises(MaterialFileError, match="cross-reference table is damaged"):
        pdf_pages(damaged, max_read=64 * 1024)
