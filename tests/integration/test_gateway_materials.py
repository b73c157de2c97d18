"""`POST /ingest/v1/materials` on the gateway process (`onewindow gateway`) and the real,
secured broker: an upload is published with the sha256, size and pages of its file and
consumed back once, also when it is sent again; a 50 MB PDF streams through with the
gateway's resident memory growing by far less than the file (measured from /proc, reported,
not timed); over the file limit is 413; no malformed body is a 5xx."""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from onewindow.topics import Topics, partition_for
from tests.integration.gateway_support import (
    Gateway,
    gateway_process,
    provisioned_topics,
    read_events,
)
from tests.integration.test_gateway import ts
from tests.kafka_support import consumer_conf
from tests.material_support import write_pdf

pytestmark = pytest.mark.integration

MATERIALS = "/ingest/v1/materials"
MiB = 1 << 20
FILE_LIMIT = 64 * MiB
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@pytest.fixture(scope="module")
def topics(kafka: str) -> Topics:
    return provisioned_topics(kafka, "m")


@pytest.fixture(scope="module")
def gw(kafka: str, topics: Topics, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[Gateway]:
    with gateway_process(tmp_path_factory.mktemp("gateway-materials"), kafka, topics.prefix,
                         GATEWAY_MAX_FILE_BYTES=str(FILE_LIMIT)) as g:
        yield g


def metadata(case: str, event_id: str, **over: Any) -> dict[str, Any]:
    return {"event_id": event_id, "case_id": case, "department": "scjgj",
            "occurred_at": ts(), "material_id": f"{case}-{event_id}",
            "material_type": "BUSINESS_LICENSE",
            "holder": {"id_type": "USCC", "id_number": "91440104MA5C8GKX4N",
                       "name": "广州市越秀区陈记餐饮店"},
            "document_number": "91440104MA5C8GKX4N", "form": "ELECTRONIC",
            "declared_fields": {"名称": "广州市越秀区陈记餐饮店"}, **over}


def upload(gw: Gateway, key: dict[str, str], meta: dict[str, Any] | bytes, path: Path,
           filename: str | None = None) -> httpx.Response:
    """The upload as curl -F sends it (the file streamed from disk by httpx)."""
    raw = meta if isinstance(meta, bytes) else json.dumps(meta, ensure_ascii=False).encode()
    with path.open("rb") as fh:
        return httpx.post(gw.base + MATERIALS, headers=key, timeout=120, files={
            "metadata": (None, raw, "application/json"),
            "file": (filename or path.name, fh, "application/pdf")})


def mine(kafka: str, topics: Topics, case: str) -> list[tuple[int, bytes, dict[str, Any]]]:
    return [r for r in read_events(consumer_conf(kafka), topics.input("scjgj"))
            if r[2]["case_id"] == case]


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (the peak since the last reset), in kB."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: int(v.split()[0]) for k, _, v in (ln.partition(":") for ln in lines)
            if k in ("VmRSS", "VmHWM")}


def test_an_upload_is_published_with_its_files_facts_once(
        gw: Gateway, kafka: str, topics: Topics, tmp_path: Path) -> None:
    key = gw.key("scjgj")
    case = f"GM{uuid.uuid4().hex[:10]}"
    pdf = write_pdf(tmp_path / "营业执照.pdf", pages=3, payload_bytes=300_000)
    data = pdf.read_bytes()
    meta = metadata(case, "m1")
    first = upload(gw, key, meta, pdf)
    assert first.status_code == 200, first.text
    body = first.json()
    facts = {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data), "pages": 3}
    assert body["file"] == {**facts, "kind": "pdf"}
    assert (body["accepted"], body["results"]) == (1, [{"index": 0, "event_id": "m1",
                                                       "status": "accepted"}])
    # sent again (a retry after a lost answer): the same answer, not published again
    again = upload(gw, key, meta, pdf)
    assert again.json() == body
    # the same event id with another file: the first wins
    other = write_pdf(tmp_path / "other.pdf", pages=1, payload_bytes=10)
    [conflict] = upload(gw, key, meta, other).json()["results"]
    assert conflict["reason"] == "EVENT_ID_CONFLICT"
    # an image, its name from the file part, with its own event id
    png = tmp_path / "scan.png"
    png.write_bytes(PNG)
    image = upload(gw, key, metadata(case, "m2"), png, filename="身份证 正面.png").json()
    assert image["file"]["pages"] == 1 and image["accepted"] == 1
    # the rules of domain.md section 2, per event: another department's, a bad USCC
    spoofed = upload(gw, key, metadata(case, "m3", department="gaj"), png).json()
    assert spoofed["results"][0]["reason"] == "DEPARTMENT_MISMATCH"
    bad_id = metadata(case, "m4", holder={"id_type": "USCC", "id_number": "91440104MA5C8GKX40",
                                         "name": "x"})
    assert upload(gw, key, bad_id, png).json()["results"][0]["reason"] == "INVALID_ID_NUMBER"

    records = mine(kafka, topics, case)
    by_id = {e["event_id"]: (p, k, e) for p, k, e in records}
    assert sorted(e["event_id"] for _p, _k, e in records) == ["m1", "m2"]  # each once
    p, k, event = by_id["m1"]
    assert {f: event[f] for f in facts} == facts and p == partition_for(k, 3)
    assert event["name"] == "营业执照.pdf" and event["holder"]["name"] == "广州市越秀区陈记餐饮店"
    assert by_id["m2"][2]["name"] == "身份证 正面.png"
    assert by_id["m2"][2]["sha256"] == hashlib.sha256(PNG).hexdigest()


def test_a_50_mb_upload_streams_without_holding_the_file(
        gw: Gateway, kafka: str, topics: Topics, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The gateway's resident memory: VmRSS before, then the peak (VmHWM, reset just
    before the upload) and VmRSS after. A PDF is the hard case: spooled to disk for pypdf,
    whose page count must not read it whole."""
    key = gw.key("scjgj")
    case = f"GB{uuid.uuid4().hex[:10]}"
    warm = write_pdf(tmp_path / "warm.pdf", pages=1, payload_bytes=2 * MiB)
    assert upload(gw, key, metadata(case, "w"), warm).json()["accepted"] == 1  # pypdf loaded
    big = write_pdf(tmp_path / "big.pdf", pages=40, payload_bytes=50 * MiB)
    spool = Path(gw.log).parent / "data" / "gateway-uploads"
    before = memory_kb(gw.pid)
    Path(f"/proc/{gw.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    r = upload(gw, key, metadata(case, "big"), big)
    after = memory_kb(gw.pid)
    assert r.status_code == 200, r.text
    assert r.json()["file"] == {"sha256": hashlib.sha256(big.read_bytes()).hexdigest(),
                                "size_bytes": big.stat().st_size, "pages": 40, "kind": "pdf"}
    peak_growth = (after["VmHWM"] - before["VmRSS"]) / 1024
    with capsys.disabled():
        print(f"\n50 MB upload ({big.stat().st_size:,} bytes): gateway VmRSS "
              f"{before['VmRSS'] / 1024:.1f} MB before, peak {after['VmHWM'] / 1024:.1f} MB "
              f"during (+{peak_growth:.1f} MB), {after['VmRSS'] / 1024:.1f} MB after")
    assert peak_growth < 30, (before, after)
    assert list(spool.iterdir()) == []  # the spooled copy is gone
    assert [e["pages"] for _p, _k, e in mine(kafka, topics, case)
            if e["event_id"] == "big"] == [40]


def raw_request(gw: Gateway, head: bytes) -> tuple[int, dict[str, Any]]:
    """A request's head alone over a socket of our own (a Content-Length no client library
    would send without its body): the status and the JSON body of the answer."""
    host, port = gw.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += s.recv(65536)
        top, _, body = answer.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in top.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += s.recv(65536)
    return int(top.split()[1]), json.loads(body)


def test_over_the_file_limit_is_413(gw: Gateway, tmp_path: Path) -> None:
    key = gw.key("scjgj")
    boundary = "owTestBoundary"
    auth = key["Authorization"].encode()
    # by its Content-Length: answered before a byte of the body is read
    head = (b"POST " + MATERIALS.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth +
            b"\r\nContent-Type: multipart/form-data; boundary=" + boundary.encode() +
            b"\r\nContent-Length: " + str(FILE_LIMIT * 2).encode() + b"\r\n\r\n")
    status, body = raw_request(gw, head)
    assert (status, body["error"]) == (413, "too_large")

    # as it streams (no Content-Length): refused once the file passes the limit
    def chunks() -> Iterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n"
               f"{{}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"big.png\"\r\n\r\n").encode() + PNG
        for _ in range(FILE_LIMIT // MiB + 4):
            yield b"\0" * MiB

    r = httpx.post(gw.base + MATERIALS, timeout=120, content=chunks(), headers=key | {
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (r.status_code, r.json()["error"]) == (413, "too_large"), r.text
    assert f"over {FILE_LIMIT:,} bytes" in r.json()["detail"]


def test_malformed_uploads_are_refused_never_5xx(gw: Gateway, tmp_path: Path) -> None:
    """A hand-written set of bodies that break the form (schemathesis generates what the
    document allows, and some of what it does not): each a 4xx with a JSON error."""
    key = gw.key("scjgj")
    b = "owB"
    ct = {"Content-Type": f"multipart/form-data; boundary={b}"}
    meta = json.dumps(metadata("GMX", "x1")).encode()

    def part(name: str, data: bytes, extra: str = "") -> bytes:
        return (f"--{b}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n\r\n"
                ).encode() + data + b"\r\n"

    end = f"--{b}--\r\n".encode()
    good_file = part("file", PNG, '; filename="a.png"')
    cases: list[tuple[dict[str, str], bytes, int]] = [
        ({"Content-Type": "application/json"}, meta, 415),
        ({}, meta, 415),
        ({"Content-Type": "multipart/form-data"}, meta, 400),
        (ct, b"", 400),
        (ct, b"garbage", 400),
        (ct, end, 400),
        (ct, part("metadata", meta) + end, 400),
        (ct, good_file + end, 400),
        (ct, part("metadata", meta) + good_file, 400),  # no closing boundary
        (ct, part("metadata", meta) + good_file + good_file + end, 400),
        (ct, part("metadata", b"{not json") + good_file + end, 400),
        (ct, part("metadata", b"\xff\xfe") + good_file + end, 400),
        (ct, part("metadata", b"[1, 2]") + good_file + end, 400),
        (ct, part("metadata", meta) + part("other", b"x") + good_file + end, 400),
        (ct, part("metadata", b'{"type": "CaseAccepted"}') + good_file + end, 422),
        (ct, part("metadata", b'{"pages": 7}') + good_file + end, 422),
        (ct, part("metadata", meta) + part("file", b"") + end, 422),
        (ct, part("metadata", meta) + part("file", b"MZ\x90\x00" * 400) + end, 422),
        (ct, part("metadata", meta) + part("file", b"%PDF-1.4 broken") + end, 422),
        (ct, f"--{b}\r\n".encode() + b"X: " + b"y" * 10_000 + b"\r\n\r\n" + end, 400),
    ]
    for headers, content, status in cases:
        r = httpx.post(gw.base + MATERIALS, headers=key | headers, content=content, timeout=60)
        assert r.status_code == status, (content[:120], r.text)
        assert r.headers["content-type"] == "application/json" and r.json()["error"]
    # a rule of the event itself is the event's answer, as in a batch
    r = httpx.post(gw.base + MATERIALS, headers=key | ct, timeout=60,
                   content=part("metadata", b'{"case_id": "no spaces"}') + good_file + end)
    assert r.status_code == 200 and r.json()["results"][0]["reason"] == "INVALID_FIELD"
    assert httpx.post(gw.base + MATERIALS, content=b"", timeout=60).status_code == 401


def test_metrics_and_the_documented_upload(gw: Gateway) -> None:
    text = httpx.get(f"{gw.base}/metrics", timeout=10).text
    assert 'onewindow_gateway_uploads_total{department="scjgj",outcome="200"}' in text
    assert 'onewindow_gateway_request_seconds_count{route="/ingest/v1/materials"}' in text
    doc = httpx.get(f"{gw.base}/openapi.json", timeout=10).json()
    form = doc["paths"][MATERIALS]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert set(form["examples"]) == {"zh", "en"}
    assert form["schema"]["required"] == ["metadata", "file"]
    assert "sha256" not in doc["components"]["schemas"]["MaterialMetadata"]["required"]
