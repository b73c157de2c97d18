"""The counter API over a read model filled by the sink's own code (no Kafka)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from counter.app import create_app
from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.read_model_support import (
    case_outputs,
    expected_case,
    expected_views,
    group_by_case,
    link_records,
    load_model,
    read_jsonl,
)

CASE = "GZ20251009000123"
RID = "440106198503121237"
USCC = "91440101MA5CXYW123"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _open_case(accepted: dict) -> list[dict]:
    """An open case: accepted, one task received (the scenario's cases all close)."""
    acc = dict(accepted, case_id="GZOPEN0001", event_id="open-1",
               tasks=[{"task_id": "OPEN-T1", "department": "scjgj", "name": "审查"}])
    upd = {"type": "TaskUpdated", "event_id": "open-2", "case_id": "GZOPEN0001",
           "department": "scjgj", "occurred_at": accepted["occurred_at"], "task_id": "OPEN-T1",
           "status": "IN_REVIEW", "officer": None, "note": None}
    return [acc, upd]


@pytest.fixture
def events(example_events_path):
    scenario = [e for c in ScenarioGenerator(ScenarioConfig(seed=5)).cases(15) for e in c]
    example = read_jsonl(example_events_path)
    return example + scenario + _open_case(example[0])


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 4, 2, 0, tzinfo=UTC))


@pytest.fixture
def client(engine, topics, settings, events, clock):
    codec = get_codec()
    records = case_outputs(events, topics) + [
        (topics.material_links, codec.encode_record("MaterialLink", r))
        for r in link_records(events)]
    load_model(engine, topics, records, settings, batch=7)
    app = create_app(settings, engine=engine, clock=clock)
    with TestClient(app) as c:
        yield c


def test_case_equals_the_pure_fold_presented(client, events, clock) -> None:
    cal = load_calendar()
    for case_id, view in expected_views(group_by_case(events)).items():
        r = client.get(f"/api/cases/{case_id}")
        assert r.status_code == 200
        assert r.json() == expected_case(view, clock.now, cal)


def test_restaurant_case_matches_the_worked_example(client) -> None:
    body = client.get(f"/api/cases/{CASE}").json()
    assert body["status"] == "APPROVED" and body["version"] == 9
    assert body["due_date"] == "2025-10-16"
    assert body["due_at"] == "2025-10-16T23:59:59.999+08:00"
    assert body["closed_at"] == "2025-10-15T15:20:00+08:00"
    assert body["sla_status"] == "ON_TIME"
    assert body["applicant"] == {"kind": "ORGANIZATION", "id_type": "USCC",
                                 "id_masked": "914401********W123",
                                 "name": "广州花城餐饮管理有限公司"}
    assert {t["task_id"]: t["status"] for t in body["tasks"]} == {
        f"{CASE}-SCJG": "APPROVED", f"{CASE}-XF": "APPROVED"}


def test_sla_status_follows_the_clock_at_read_time(client, clock) -> None:
    open_cases = [c for c in client.get("/api/cases", params={"limit": 500}).json()["items"]
                  if c["closed_at"] is None and c["due_at"] and c["paused_since"] is None]
    assert open_cases
    case_id, due_at = open_cases[0]["case_id"], datetime.fromisoformat(open_cases[0]["due_at"])
    assert case_id == "GZOPEN0001" and due_at.date().isoformat() == "2025-10-14"
    clock.now = datetime(2025, 9, 30, 6, 0, tzinfo=UTC)
    assert client.get(f"/api/cases/{case_id}").json()["sla_status"] == "ON_TRACK"
    clock.now = due_at.astimezone(UTC).replace(hour=1)
    assert client.get(f"/api/cases/{case_id}").json()["sla_status"] == "DUE_SOON"
    clock.now = datetime(2030, 1, 1, tzinfo=UTC)
    assert client.get(f"/api/cases/{case_id}").json()["sla_status"] == "OVERDUE"


def test_timeline_in_order_paged_and_masked(client) -> None:
    r = client.get(f"/api/cases/{CASE}/timeline", params={"limit": 4})
    body = r.json()
    assert [e["event_id"] for e in body["items"]] == ["evt-0001", "evt-0002", "evt-0003",
                                                      "evt-0004"]
    assert body["next_offset"] == 4
    rest = client.get(f"/api/cases/{CASE}/timeline", params={"limit": 4, "offset": 8}).json()
    assert [e["event_id"] for e in rest["items"]] == ["evt-0009"] and rest["next_offset"] is None
    assert body["items"][0]["event"]["applicant"]["id_masked"] == "914401********W123"
    assert RID not in r.text and USCC not in r.text and "19850312" not in r.text


def test_material_with_links(client) -> None:
    body = client.get("/api/materials/mat-0002").json()
    assert body["avoidable"] is True and body["holder"]["id_masked"] == "440106********1237"
    assert [(lk["material_id"], lk["verdict"]) for lk in body["links"]] == [
        ("mat-0001", "SAME_DOCUMENT")]
    assert body["document_number"] is None
    cert = client.get("/api/materials/cert-JY24401060012345").json()
    assert cert["document_number"] == "JY24401060012345" and cert["form"] == "ELECTRONIC"


def test_holder_documents_fold_duplicates(client) -> None:
    for typed in (RID, "440106 19850312 1237", "４４０１０６１９８５０３１２１２３７"):
        r = client.get("/api/holders/materials", params={"id_type": "RESIDENT_ID",
                                                          "id_number": typed})
        body = r.json()
        assert body["holder"]["id_masked"] == "440106********1237"
        assert body["total_documents"] == 1
        doc = body["documents"][0]
        assert doc["times_submitted"] == 2 and doc["avoidable_submissions"] == 1
        assert [s["material_id"] for s in doc["submissions"]] == ["mat-0001", "mat-0002"]
        assert [s["avoidable"] for s in doc["submissions"]] == [False, True]
        assert RID not in r.text
    post = client.post("/api/holders/materials", json={"id_type": "USCC", "id_number": USCC})
    docs = post.json()["documents"]
    assert [d["first_material_id"] for d in docs] == ["cert-JY24401060012345"]
    none = client.get("/api/holders/materials", params={"id_type": "PASSPORT",
                                                         "id_number": "E1234567"}).json()
    assert none["documents"] == [] and none["holder"]["id_masked"] == "****4567"


def test_holder_documents_page(client, events) -> None:
    holders = {}
    for e in events:
        if e["type"] == "MaterialSubmitted":
            k = (e["holder"]["id_type"], e["holder"]["id_number"])
            holders[k] = holders.get(k, 0) + 1
    (id_type, number), _ = max(holders.items(), key=lambda kv: kv[1])
    full = client.get("/api/holders/materials", params={"id_type": id_type,
                                                         "id_number": number}).json()
    assert full["total_documents"] >= 2
    page = client.get("/api/holders/materials", params={"id_type": id_type, "id_number": number,
                                                         "limit": 1, "offset": 1}).json()
    assert page["documents"] == full["documents"][1:2] and page["limit"] == 1


def test_progress_lookup_by_applicant_id_hashes_the_query(client) -> None:
    r = client.get("/api/cases", params={"applicant_id_type": "USCC",
                                         "applicant_id_number": "914401 01MA5CXYW123"})
    assert [c["case_id"] for c in r.json()["items"]] == [CASE, "GZOPEN0001"]
    r = client.get("/api/cases", params={"applicant_id_number": USCC})
    assert r.status_code == 422 and USCC not in r.text


def test_list_paging_and_filters(client) -> None:
    first = client.get("/api/cases", params={"limit": 5}).json()
    assert len(first["items"]) == 5 and first["next_offset"] == 5
    second = client.get("/api/cases", params={"limit": 5, "offset": 5}).json()
    assert not {c["case_id"] for c in first["items"]} & {c["case_id"] for c in second["items"]}
    dept = client.get("/api/cases", params={"department": "zjj", "limit": 500}).json()["items"]
    assert dept and all(any(t["department"] == "zjj" for t in c["tasks"]) for c in dept)
    approved = client.get("/api/cases", params={"status": "APPROVED", "limit": 500}).json()
    assert all(c["status"] == "APPROVED" for c in approved["items"])


def test_errors_are_json(client) -> None:
    r = client.get("/api/cases/NOPE")
    assert r.status_code == 404 and r.json()["error"] == "not_found" and "NOPE" in r.json()["detail"]
    assert client.get("/api/cases/NOPE/timeline").status_code == 404
    assert client.get("/api/materials/NOPE").json()["error"] == "not_found"
    assert client.get("/no/such/route").json()["error"] == "not_found"
    r = client.get("/api/cases", params={"limit": 0})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    r = client.get("/api/holders/materials", params={"id_type": "NOPE", "id_number": RID})
    assert r.status_code == 422 and RID not in r.text
    assert client.get("/api/holders/materials", params={"id_type": "USCC"}).status_code == 422


def test_healthz_metrics_docs(client, settings, tmp_path) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    m = client.get("/metrics")
    assert m.status_code == 200 and "onewindow_http_requests_total" in m.text
    # ops wiring: build info, process metrics and the supervisor's SLA gauges
    assert "onewindow_build_info{" in m.text and "process_resident_memory_bytes" in m.text
    assert 'onewindow_cases_open{status="IN_PROGRESS"} 1.0' in m.text  # GZOPEN0001
    assert "onewindow_cases_overdue " in m.text and "onewindow_read_model_up 1.0" in m.text
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/cases/{case_id}", "/api/cases/{case_id}/timeline",
              "/api/materials/{material_id}", "/api/holders/materials", "/healthz", "/metrics"):
        assert p in paths
    empty = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'none.db'}"})
    with TestClient(create_app(empty)) as c:
        r = c.get("/healthz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"


def test_dead_letters_listed(client) -> None:
    body = client.get("/api/dead-letters").json()
    assert body["items"] == [] and body["next_offset"] is None


def test_change_feed_streams_committed_cases(client) -> None:
    with client.stream("GET", "/api/changes",
                       params={"max_seconds": 0.3, "poll": 0.1, "since_seconds": 86400}) as r:
        text = "".join(r.iter_text())
    assert r.headers["content-type"].startswith("text/event-stream")
    assert f'"case_id": "{CASE}"' in text and "event: case" in text
