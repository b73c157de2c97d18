"""Health, metrics, OpenAPI and dead letters (counter.ops_api)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from counter.app import create_app


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
