"""The HTTP ingestion gateway as a process (`onewindow gateway`) on the real, secured
broker: answers per event, exactly-once publishing across retries, a department cannot
publish as another, the refusals of a whole request, and what it serves besides."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import keys
from onewindow.codec import SHANGHAI
from onewindow.read_model.engine import make_engine
from onewindow.topics import Topics, partition_for
from tests.integration.gateway_support import (
    Gateway,
    gateway_process,
    provisioned_topics,
    read_events,
)
from tests.kafka_support import consumer_conf

pytestmark = pytest.mark.integration

BODY_LIMIT = 64 * 1024
EVENTS = "/ingest/v1/events"


@pytest.fixture(scope="module")
def topics(kafka: str) -> Topics:
    return provisioned_topics(kafka, "g")


@pytest.fixture(scope="module")
def gw(kafka: str, topics: Topics, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[Gateway]:
    with gateway_process(tmp_path_factory.mktemp("gateway"), kafka, topics.prefix,
                         GATEWAY_MAX_BODY_BYTES=str(BODY_LIMIT),
                         GATEWAY_EVENTS_PER_SECOND="1", GATEWAY_BURST_EVENTS="500") as g:
        yield g


def ts(delta: timedelta = timedelta(minutes=-1)) -> str:
    return (datetime.now(UTC) + delta).astimezone(SHANGHAI).isoformat(timespec="seconds")


def task(case: str, event_id: str, department: str = "scjgj", **over: Any) -> dict[str, Any]:
    return {"type": "TaskUpdated", "event_id": event_id, "case_id": case,
            "department": department, "occurred_at": ts(), "task_id": f"{case}-T",
            "status": "IN_REVIEW", **over}


def material(case: str, event_id: str, id_number: str = "11010519491231002X",
             **over: Any) -> dict[str, Any]:
    return {"type": "MaterialSubmitted", "event_id": event_id, "case_id": case,
            "department": "scjgj", "occurred_at": ts(), "material_id": f"{case}-{event_id}",
            "material_type": "ID_CARD", "name": "身份证",
            "holder": {"id_type": "RESIDENT_ID", "id_number": id_number, "name": "张三"},
            "sha256": "ab" * 32, "pages": 1, "size_bytes": 1000, "form": "COPY",
            "declared_fields": {"name": "张三"}, **over}


def post(gw: Gateway, headers: dict[str, str], **kw: Any) -> httpx.Response:
    return httpx.post(gw.base + EVENTS, headers=headers, timeout=60, **kw)


def stable(body: dict[str, Any], *drop: str) -> dict[str, Any]:
    """An answer without what may change between two tries: the clock a FUTURE_TIMESTAMP
    detail names (and ``drop``)."""
    results = [{k: v for k, v in r.items() if k not in drop and not (
        k == "detail" and r.get("reason") == "FUTURE_TIMESTAMP")} for r in body["results"]]
    return body | {"results": results}


def mine(kafka: str, topic: str, case: str) -> list[tuple[int, bytes, dict[str, Any]]]:
    return [r for r in read_events(consumer_conf(kafka), topic) if r[2]["case_id"] == case]


def test_a_batch_is_answered_per_event_and_published_exactly_once(
        gw: Gateway, kafka: str, topics: Topics) -> None:
    """Good, duplicate and bad events in one batch; the same request three times (the
    last as JSON lines) gets the same answers; the good events are in the department's
    topic once each, on their key's partition."""
    key = gw.key("scjgj")
    case = f"GW{uuid.uuid4().hex[:10]}"
    good1, good2 = task(case, "e1"), material(case, "e2")
    batch = [good1, good2, dict(good1), task(case, "e2"), task(case, "e3", case_id="no spaces"),
             task(case, "e4", occurred_at=ts(timedelta(hours=1))),
             material(case, "e5", id_number="110105194912310021"),
             task(case, "e6", department="gaj"), 42]
    want = [("accepted", None), ("accepted", None), ("duplicate", None),
            ("rejected", "EVENT_ID_CONFLICT"), ("rejected", "INVALID_FIELD"),
            ("rejected", "FUTURE_TIMESTAMP"), ("rejected", "INVALID_ID_NUMBER"),
            ("rejected", "DEPARTMENT_MISMATCH"), ("rejected", "INVALID_FIELD")]
    first = post(gw, key, json=batch)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [(r["status"], r.get("reason")) for r in body["results"]] == want
    assert (body["department"], body["accepted"], body["duplicate"], body["rejected"]) == \
        ("scjgj", 2, 1, 6)
    details = {r["index"]: r["detail"] for r in body["results"] if "detail" in r}
    assert details[4].startswith("case_id:") and details[6].startswith("holder.id_number:")
    assert details[7].startswith("department:") and "110105194912310021" not in str(body)
    assert stable(post(gw, key, json=batch).json()) == stable(body)
    as_lines = "\n".join(json.dumps(e, ensure_ascii=False) for e in batch).encode()
    third = post(gw, key | {"Content-Type": "application/x-ndjson"}, content=as_lines).json()
    assert stable(third, "line") == stable(body)
    assert [r["line"] for r in third["results"]] == list(range(1, len(batch) + 1))
    # another request carrying an event published before: a duplicate, not sent again
    later = post(gw, key, json=[good1, task(case, "e7")]).json()
    assert [r["status"] for r in later["results"]] == ["duplicate", "accepted"]

    records = mine(kafka, topics.input("scjgj"), case)
    assert Counter(e["event_id"] for _p, _k, e in records) == {"e1": 1, "e2": 1, "e7": 1}
    assert all(p == partition_for(k, 3) for p, k, _e in records)
    assert mine(kafka, topics.input("gaj"), case) == []


def test_a_department_cannot_publish_as_another(gw: Gateway, kafka: str,
                                                topics: Topics) -> None:
    case = f"GW{uuid.uuid4().hex[:10]}"
    events = [task(case, f"g{i}", department="gaj") for i in range(3)]
    spoofed = post(gw, gw.key("scjgj"), json=events).json()
    assert spoofed["department"] == "scjgj"
    assert {(r["status"], r["reason"]) for r in spoofed["results"]} == \
        {("rejected", "DEPARTMENT_MISMATCH")}
    # only the counter may accept a case
    accepted = {"type": "CaseAccepted", "event_id": "a1", "case_id": case,
                "department": "scjgj", "occurred_at": ts(), "service_code": "S1",
                "service_name": "开办餐饮店", "case_kind": "JOINT", "channel": "COUNTER",
                "applicant": {"kind": "PERSON", "id_type": "PASSPORT", "id_number": "E1",
                              "name": "x"}, "promise": {"amount": 5, "unit": "WORKING_DAY"},
                "tasks": []}
    [refused] = post(gw, gw.key("scjgj"), json=[accepted]).json()["results"]
    assert refused["reason"] == "UNAUTHORISED"
    assert mine(kafka, topics.input("gaj"), case) == []
    assert mine(kafka, topics.input("scjgj"), case) == []
    # the same events from gaj's own key are gaj's
    own = post(gw, gw.key("gaj"), json=events).json()
    assert [r["status"] for r in own["results"]] == ["accepted"] * 3
    assert len(mine(kafka, topics.input("gaj"), case)) == 3


def test_whole_requests_are_refused_with_a_json_error(gw: Gateway) -> None:
    key = gw.key("rsj")
    ok = [task("GWX", "r1", department="rsj")]

    def refused(r: httpx.Response, status: int, error: str) -> httpx.Response:
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"] == error
        return r

    r = refused(post(gw, {}, json=ok), 401, "unauthenticated")
    assert r.headers["www-authenticate"] == "Bearer"
    refused(post(gw, {"Authorization": "Basic eDp5"}, json=ok), 401, "unauthenticated")
    refused(post(gw, {"Authorization": "Bearer owg_0000000000_nope"}, json=ok), 401,
            "unauthenticated")
    revoked = gw.key("rsj")
    engine = make_engine(gw.database_url, writer=True)
    try:
        [k] = [k for k in keys.list_keys(engine, "rsj") if revoked["Authorization"].startswith(
            f"Bearer owg_{k.key_id}_")]
        keys.revoke(engine, "rsj", datetime.now(UTC), key_id=k.key_id)
    finally:
        engine.dispose()
    refused(post(gw, revoked, json=ok), 403, "forbidden")
    refused(post(gw, key | {"Content-Type": "text/csv"}, content=b"a,b"), 415,
            "unsupported_media_type")
    big = json.dumps([task("GWX", "r2", department="rsj", note="x" * 2000)] * 40).encode()
    assert len(big) > BODY_LIMIT
    refused(post(gw, key | {"Content-Type": "application/json"}, content=big), 413,
            "too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds as it streams
        for i in range(0, len(big), 1024):
            yield big[i:i + 1024]

    refused(post(gw, key | {"Content-Type": "application/json"}, content=chunks()), 413,
            "too_large")
    refused(post(gw, key, json=[{}] * 501), 413, "too_many_events")
    refused(post(gw, key, json={"type": "TaskUpdated"}), 400, "bad_request")
    refused(post(gw, key | {"Content-Type": "application/json"}, content=b"[{"), 400,
            "bad_request")
    # the rate: 500 events (rejected, but counted) empty rsj's bucket of 500
    full = post(gw, key, json=[{}] * 500)
    assert full.status_code == 200 and full.json()["rejected"] == 500
    # an empty bucket refills at 1 event/s: refused whole before the body is read
    r = refused(post(gw, key, json=ok * 300), 429, "too_many_requests")
    assert 1 <= int(r.headers["retry-after"]) <= 300
    assert post(gw, gw.key("scjgj"), json=[]).status_code == 200  # others are not held up


def test_health_metrics_and_offline_docs(gw: Gateway) -> None:
    assert httpx.get(f"{gw.base}/healthz", timeout=30).json() == \
        {"status": "ok", "kafka": "ok", "keys": "ok"}
    post(gw, gw.key("mzj"), json=[task("GWM", "m1", department="mzj"), {}])
    text = httpx.get(f"{gw.base}/metrics", timeout=10).text
    for line in ('onewindow_gateway_events_total{department="mzj",outcome="accepted",'
                 'reason=""} 1.0',
                 'onewindow_gateway_events_total{department="mzj",outcome="rejected",'
                 'reason="INVALID_FIELD"} 1.0',
                 'onewindow_gateway_requests_total{department="mzj",outcome="200"} 1.0',
                 'onewindow_gateway_request_seconds_bucket{le="+Inf",route="/ingest/v1/events"}',
                 'onewindow_gateway_received_bytes_total{department="mzj"}',
                 "onewindow_gateway_publish_seconds_count", "process_resident_memory_bytes"):
        assert line in text, line
    docs = httpx.get(f"{gw.base}/docs", timeout=10)
    assert docs.status_code == 200 and "script-src 'self'" in docs.headers[
        "content-security-policy"]
    for asset in ("/static-docs/swagger-ui-bundle.js", "/static-docs/swagger-ui.css",
                  "/static/docs.js"):
        assert asset in docs.text or asset == "/static-docs/swagger-ui.css"
        assert httpx.get(gw.base + asset, timeout=10).status_code == 200, asset
    assert "http://" not in docs.text and "https://" not in docs.text  # nothing from elsewhere
    doc = httpx.get(f"{gw.base}/openapi.json", timeout=10).json()
    examples = doc["paths"][EVENTS]["post"]["requestBody"]["content"]["application/json"][
        "examples"]
    assert set(examples) == {"zh", "en"}
    assert "TaskUpdated" in doc["components"]["schemas"]


def test_the_log_holds_no_event_content(gw: Gateway) -> None:
    """Method, route, status, department: never a body (events carry ID numbers)."""
    post(gw, gw.key("scjgj"), json=[material("GWL", "l1", id_number="11010519491231002X")])
    assert "11010519491231002X" not in Path(gw.log).read_text()
