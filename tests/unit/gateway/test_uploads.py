"""gateway.uploads: a multipart upload parsed as it streams in, whatever the chunking; the
file measured by the SDK's code; every malformed body refused whole with its status."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.parsing import BodyError
from gateway.uploads import (
    MAX_METADATA_BYTES,
    STALE_SPOOL_SECONDS,
    Upload,
    UploadError,
    UploadParser,
    material_event,
    multipart_boundary,
    prepare_upload_dir,
)
from onewindow.material_files import FileFacts, MaterialReceiver, inspect_file
from tests.material_support import write_pdf

B = b"----owBoundary7MA4YWxkTrZu0gW"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
META = {"event_id": "e1", "case_id": "GZ1", "department": "scjgj",
        "occurred_at": "2025-10-09T14:30:00+08:00", "material_id": "M1",
        "material_type": "ID_CARD", "holder": {"id_type": "PASSPORT", "id_number": "E1",
                                               "name": "张三"},
        "form": "COPY", "declared_fields": {}}


def part(name: str, data: bytes, *, filename: str | None = None,
         headers: bytes = b"") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return (b"--" + B + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n" +
            headers + b"\r\n" + data + b"\r\n")


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + B + b"--\r\n"


def upload_of(data: bytes, tmp: Path, *, chunks: list[int] | None = None,
              max_file: int = 10 << 20) -> Upload:
    receiver = MaterialReceiver(tmp)
    try:
        parser = UploadParser(B, receiver, max_file_bytes=max_file)
        i = 0
        for n in chunks or []:
            parser.write(data[i:i + n])
            i += n
        parser.write(data[i:])
        return parser.finish()
    finally:
        receiver.close()


def refused(data: bytes, tmp: Path, status: int, match: str, **kw: Any) -> UploadError:
    with pytest.raises(UploadError, match=match) as info:
        upload_of(data, tmp, **kw)
    assert info.value.status == status
    assert list(tmp.iterdir()) == []  # nothing left behind
    return info.value


def test_the_boundary_of_the_content_type() -> None:
    assert multipart_boundary(f"multipart/form-data; boundary={B.decode()}") == B
    assert multipart_boundary('multipart/form-data; boundary="a b"') == b"a b"
    for ct, status in (("application/json", 415), (None, 415), ("multipart/mixed; b=1", 415),
                       ("multipart/form-data", 400), ("multipart/form-data; boundary=" +
                                                      "x" * 71, 400)):
        with pytest.raises(BodyError) as info:
            multipart_boundary(ct)
        assert info.value.status == status


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_pdf(tmp_path_factory.mktemp("pdf") / "a.pdf", pages=2,
                     payload_bytes=200_000).read_bytes()


@settings(max_examples=25, deadline=None)
@given(chunks=st.lists(st.integers(1, 70_000), max_size=10), metadata_first=st.booleans())
def test_any_chunking_and_either_order(pdf: bytes, chunks: list[int], metadata_first: bool,
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("spool")
    meta = part("metadata", json.dumps(META).encode(),
                headers=b"Content-Type: application/json\r\n")
    file = part("file", pdf, filename="营业执照.pdf",
                headers=b"Content-Type: application/pdf\r\n")
    got = upload_of(body(*((meta, file) if metadata_first else (file, meta))), tmp,
                    chunks=chunks)
    assert json.loads(got.metadata) == META and got.filename == "营业执照.pdf"
    assert got.facts == FileFacts(hashlib.sha256(pdf).hexdigest(), len(pdf), 2, "pdf")
    assert list(tmp.iterdir()) == []


def test_the_same_facts_as_the_sdk(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(PNG)
    spool = tmp_path / "spool"
    spool.mkdir()
    got = upload_of(body(part("metadata", b"{}"), part("file", PNG, filename="C:\\x\\scan.png")),
                    spool)
    assert got.facts.as_dict() == inspect_file(path)
    assert got.filename == "scan.png"  # no client path


def test_malformed_bodies_are_400(tmp_path: Path) -> None:
    meta, file = part("metadata", b"{}"), part("file", PNG)
    refused(body(meta), tmp_path, 400, "part 'file' missing")
    refused(body(file), tmp_path, 400, "part 'metadata' missing")
    refused(body(meta, file, part("file", PNG)), tmp_path, 400, "given twice")
    refused(body(meta, part("notes", b"x"), file), tmp_path, 400, "unexpected part 'notes'")
    refused(body(meta, file)[:-30], tmp_path, 400, "ends before its closing boundary")
    refused(b"junk" + body(meta, file), tmp_path, 400, "not a readable multipart")
    refused(b"", tmp_path, 400, "ends before")
    no_disposition = b"--" + B + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    refused(body(no_disposition, meta, file), tmp_path, 400, "without a Content-Disposition")
    attachment = b"--" + B + b"\r\nContent-Disposition: attachment\r\n\r\nx\r\n"
    refused(body(attachment), tmp_path, 400, "not 'form-data; name=...'")
    many = b"".join(f"X-{i}: y\r\n".encode() for i in range(20))
    refused(body(part("file", PNG, headers=many)), tmp_path, 400, "not a readable multipart")


def test_over_the_limits_is_413_at_once(tmp_path: Path, pdf: bytes) -> None:
    data = body(part("metadata", b"{}"), part("file", pdf))
    receiver = MaterialReceiver(tmp_path)
    parser = UploadParser(B, receiver, max_file_bytes=100_000)
    with pytest.raises(UploadError, match="file: over 100,000 bytes") as info:
        for i in range(0, len(data), 10_000):
            parser.write(data[i:i + 10_000])
    assert info.value.status == 413 and i < 120_000  # stopped as the limit passed
    receiver.close()
    big = b'{"x": "' + b"a" * MAX_METADATA_BYTES + b'"}'
    refused(body(part("metadata", big), part("file", PNG)), tmp_path, 413, "metadata: over")


def test_a_file_that_is_no_scan_is_422(tmp_path: Path) -> None:
    meta = part("metadata", b"{}")
    refused(body(meta, part("file", b"")), tmp_path, 422, "file: the file is empty")
    refused(body(meta, part("file", b"hello")), tmp_path, 422, "not a PDF or an image")
    refused(body(meta, part("file", b"%PDF-1.7\n garbage")), tmp_path, 422,
            "not a readable PDF")
    # known from the first 1024 bytes: the rest is not read
    receiver = MaterialReceiver(tmp_path)
    parser = UploadParser(B, receiver, max_file_bytes=1 << 30)
    parser.write(body(meta)[:-len(B) - 6] + part("file", b"", headers=b"")[:-2])
    with pytest.raises(UploadError, match="not a PDF") as info:
        parser.write(b"x" * 2000)
    assert info.value.status == 422


FACTS = FileFacts("ab" * 32, 1234, 3, "pdf")


def event_of(meta: Any, filename: str | None = "a.pdf") -> Any:
    raw = json.dumps(meta, ensure_ascii=False).encode() if not isinstance(meta, bytes) else meta
    return material_event(Upload(raw, filename, FACTS))


def test_the_event_is_the_metadata_with_what_the_gateway_computed() -> None:
    raw = event_of(META)
    assert raw.error is None and raw.index == 0
    assert raw.value == {"type": "MaterialSubmitted", **META, "sha256": "ab" * 32,
                         "size_bytes": 1234, "pages": 3, "name": "a.pdf"}
    assert event_of(META | {"name": "身份证"}).value["name"] == "身份证"
    assert "name" not in event_of(META, None).value  # then the rules say it is missing
    same = META | {"type": "MaterialSubmitted", "sha256": "AB" * 32, "size_bytes": 1234,
                   "pages": 3}
    assert event_of(same).value["sha256"] == "ab" * 32
    lone = event_of(b'{"event_id": "e1", "note": "\\ud800"}')
    assert lone.error is not None and lone.error.reason == "INVALID_FIELD"


@pytest.mark.parametrize(("meta", "status", "match"), [
    (b"\xff{}", 400, "metadata: not UTF-8"),
    (b"{", 400, "metadata: not valid JSON"),
    (b"[" * 100_000, 400, "metadata: not valid JSON"),
    (b"[]", 400, "expected a JSON object"),
    ({"type": "TaskUpdated"}, 422, "MaterialSubmitted only"),
    ({"sha256": "cd" * 32}, 422, "sha256: .* given, the file's is"),
    ({"size_bytes": 1}, 422, "size_bytes"),
    ({"pages": True}, 422, "pages"),
])
def test_bad_metadata(meta: Any, status: int, match: str) -> None:
    with pytest.raises(UploadError, match=match) as info:
        event_of(meta)
    assert info.value.status == status


def test_stale_spool_files_are_removed_at_start(tmp_path: Path) -> None:
    d = prepare_upload_dir(tmp_path / "uploads")
    assert oct(d.stat().st_mode & 0o777) == "0o700"
    (d / "1-old.pdf").write_bytes(b"x")
    (d / "2-live.pdf").write_bytes(b"x")
    os.utime(d / "1-old.pdf", (0, 0))
    prepare_upload_dir(d, now=STALE_SPOOL_SECONDS + 10)
    assert sorted(p.name for p in d.iterdir()) == ["2-live.pdf"]
