"""Cases, timelines and the change feed (counter.cases_api): equal to the pure fold
presented, SLA status at read time, paging, the lookup by a hashed applicant ID."""

from __future__ import annotations

from datetime import UTC, datetime

from onewindow.calendar_source import load_calendar
from tests.read_model_support import (
    case_outputs,
    expected_case,
    expected_views,
    group_by_case,
    load_model,
)
from tests.unit.counter.helpers import CASE, RID, USCC


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
                                 "id_masked": "91**************23",
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
    assert body["items"][0]["event"]["applicant"]["id_masked"] == "91**************23"
    assert RID not in r.text and USCC not in r.text and "19850312" not in r.text


def test_timeline_marks_updates_out_of_role(client, engine, topics, settings,
                                            events) -> None:
    """domain.md section 3: an update from a department the task does not belong to is
    on the timeline, marked out_of_role, and does not change the task."""
    acc = dict(events[0], case_id="GZOOR0001", event_id="oor-1",
               tasks=[{"task_id": "OOR-T1", "department": "scjgj", "name": "审查"}])
    upd = {"type": "TaskUpdated", "case_id": "GZOOR0001", "task_id": "OOR-T1",
           "occurred_at": acc["occurred_at"], "officer": None, "note": None}
    own = dict(upd, event_id="oor-2", department="scjgj", status="IN_REVIEW")
    other = dict(upd, event_id="oor-3", department="gaj", status="APPROVED")
    load_model(engine, topics, case_outputs([acc, own, other], topics), settings)
    items = client.get("/api/cases/GZOOR0001/timeline").json()["items"]
    assert [(e["event_id"], e["out_of_role"]) for e in items] == [
        ("oor-1", False), ("oor-2", False), ("oor-3", True)]
    case = client.get("/api/cases/GZOOR0001").json()
    assert case["version"] == 3 and case["status"] == "IN_PROGRESS"
    assert [t["status"] for t in case["tasks"]] == ["IN_REVIEW"]
    marked = client.get("/openapi.json").json()["components"]["schemas"]["TimelineEntryOut"]
    assert "out_of_role" in marked["properties"]


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


def test_change_feed_streams_committed_cases(client) -> None:
    with client.stream("GET", "/api/changes",
                       params={"max_seconds": 0.5, "poll": 1, "since_seconds": 86400}) as r:
        text = "".join(r.iter_text())
    assert r.headers["content-type"].startswith("text/event-stream")
    assert f'"case_id": "{CASE}"' in text and "event: case" in text
