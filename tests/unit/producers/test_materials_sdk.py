"""Material records at the source: sha256 streamed, sizes and pages computed, bad input
refused with one readable line."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pypdf import PdfWriter

from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.topics import Topics
from onewindow_cli.cli import main
from producers.jsonl import read_events
from producers.materials import (
    MaterialFileError,
    file_digest,
    inspect_file,
    material_event_from_file,
    parse_fields,
)
from tests.examples import RESTAURANT_EVENTS

RID = "11010519491231002X"
NOW = datetime(2026, 3, 2, 1, 15, tzinfo=UTC)
HOLDER = {"id_type": "RESIDENT_ID", "id_number": RID, "name": "陈静"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _pdf(path: Path, pages: int) -> Path:
    w = PdfWriter()
    for _ in range(pages):
        w.add_blank_page(width=595, height=842)
    with path.open("wb") as fh:
        w.write(fh)
    return path


def _event(path: Path, **kw: object) -> dict:
    args: dict = {"case_id": "GZ-1", "department": "gaj", "material_type": "ID_CARD",
                  "holder": HOLDER, "departments": load_registry().codes,
                  "clock": lambda: NOW}
    args.update(kw)
    return material_event_from_file(path, **args)


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        out = super().read(size)
        self.reads.append(len(out))
        return out


def test_sha256_is_streamed_in_chunks() -> None:
    data = bytes(range(256)) * 1000  # 256,000 bytes
    fh = CountingReader(data)
    sha, size = file_digest(fh, chunk=4096)
    assert sha == hashlib.sha256(data).hexdigest()
    assert size == len(data)
    assert max(fh.reads) == 4096 and len(fh.reads) > 60  # never the whole file at once


def test_pdf_page_count(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "deed.pdf", 3)
    info = inspect_file(path)
    assert info["kind"] == "pdf" and info["pages"] == 3
    assert info["size_bytes"] == path.stat().st_size
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_image_is_one_page(tmp_path: Path) -> None:
    for name, head in (("a.png", PNG), ("a.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 40),
                       ("a.tif", b"II*\x00" + b"\x00" * 40)):
        path = tmp_path / name
        path.write_bytes(head)
        assert inspect_file(path)["pages"] == 1


def test_the_event_is_complete_and_valid(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "licence.pdf", 2)
    e = _event(path, document_number="4401 0619-9001", declared_fields={"name": "陈静"},
               form="COPY", task_id="T-1", material_id="M-1")
    assert e["type"] == "MaterialSubmitted" and e["material_id"] == "M-1"
    assert e["event_id"] == "M-1-submitted" and e["occurred_at"] == NOW
    assert e["pages"] == 2 and e["size_bytes"] == path.stat().st_size
    assert e["name"] == "licence.pdf"
    assert get_codec().decode(get_codec().encode(e))["sha256"] == e["sha256"]
    fresh = _event(path)
    assert fresh["material_id"].startswith("M-") and fresh["form"] == "ELECTRONIC"


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"hello, not a scan", "not a PDF or an image"),
    (b"%PDF-1.7\n garbage", "not a readable PDF"),
])
def test_bad_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(content)
    with pytest.raises(MaterialFileError, match=message):
        _event(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(MaterialFileError, match="cannot read"):
        _event(tmp_path / "nope.pdf")
    with pytest.raises(MaterialFileError, match="directory"):
        _event(tmp_path)


def test_bad_metadata_names_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(PNG)
    with pytest.raises(MaterialFileError, match="INVALID_ID_NUMBER"):
        _event(path, holder=dict(HOLDER, id_number="110105194912310021"))
    with pytest.raises(MaterialFileError, match="UNKNOWN_DEPARTMENT"):
        _event(path, department="nosuch")
    with pytest.raises(MaterialFileError, match="case_id"):
        _event(path, case_id="bad id!")
    with pytest.raises(MaterialFileError, match="form"):
        _event(path, form="PHOTO")


def test_parse_fields() -> None:
    assert parse_fields(["name=陈静", "area=88.5 m²", "note=a=b"]) == {
        "name": "陈静", "area": "88.5 m²", "note": "a=b"}
    with pytest.raises(MaterialFileError, match="KEY=VALUE"):
        parse_fields(["novalue"])
    with pytest.raises(MaterialFileError, match="twice"):
        parse_fields(["a=1", "a=2"])


def test_command_prints_the_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _pdf(tmp_path / "id.pdf", 1)
    rc = main(["material", str(path), "--case-id", "GZ-1", "--department", "gaj",
               "--material-type", "ID_CARD", "--holder-id-type", "RESIDENT_ID",
               "--holder-id-number", RID, "--holder-name", "陈静", "--document-number", RID,
               "--field", "name=陈静", "--field", "issued=2020-01-01", "--form", "COPY",
               "--material-id", "M-7"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["type"] == "MaterialSubmitted" and out["material_id"] == "M-7"
    assert out["declared_fields"] == {"name": "陈静", "issued": "2020-01-01"}
    assert out["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert get_codec().from_json(out)["pages"] == 1


def test_command_bad_input_is_one_line(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just text")
    rc = main(["material", str(path), "--case-id", "GZ-1", "--department", "gaj",
               "--material-type", "ID_CARD", "--holder-id-type", "RESIDENT_ID",
               "--holder-id-number", RID, "--holder-name", "陈静"])
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert len(err.splitlines()) == 1 and "not a PDF or an image" in err


def test_a_json_lines_file_with_a_bom_and_crlf_reads_like_a_plain_one(tmp_path: Path) -> None:
    """Department files saved by Windows tools: a UTF-8 byte-order mark, CRLF line ends."""
    plain = RESTAURANT_EVENTS.read_text("utf-8")
    windows = tmp_path / "windows.jsonl"
    windows.write_bytes(b"\xef\xbb\xbf" + plain.replace("\n", "\r\n").encode("utf-8"))
    args = {"topics": Topics(""), "departments": load_registry().codes, "topic": None,
            "check": False}
    got, bad = read_events(windows, **args)
    want, _ = read_events(RESTAURANT_EVENTS, **args)
    assert bad == [] and got == want and len(got) == len(plain.splitlines())
