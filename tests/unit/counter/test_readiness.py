"""A counter started before the sink created the read model (counter.readiness): its
routes that read the model answer 503 with Retry-After and say why, in JSON for the API
and as a page for a browser, and the same app serves once the migration has run. It was
a plain 500 (issue 13, the leftovers). On SQLite and PostgreSQL (their errors differ)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from counter.app import create_app
from onewindow.config import Settings
from onewindow.read_model.engine import make_engine
from onewindow.staff import users
from sinks.migrations import upgrade
from tests.unit.counter.helpers import PASSWORD, RID


def test_an_unmigrated_read_model_is_503_until_the_sink_creates_it(settings: Settings) -> None:
    # `settings` names an empty database: no read model yet (tests/unit/conftest.py)
    app = create_app(settings)  # migrates its own staff store only
    engine = make_engine(settings.database_url, writer=True)
    try:
        now = datetime.now(UTC)
        users.add_user(engine, "early", ["clerk", "supervisor", "ops"], PASSWORD, now)
        token = users.issue_token(engine, "early", "test", now)
        with TestClient(app, headers={"Authorization": f"Bearer {token}"},
                        raise_server_exceptions=False) as client:
            reads = [client.get("/api/cases"), client.get("/api/cases/GZ1"),
                     client.get("/api/board"), client.get("/api/dead-letters"),
                     client.post("/api/search", json={"q": RID}),
                     client.post("/api/holders/materials",
                                 json={"id_type": "RESIDENT_ID", "id_number": RID})]
            for r in reads:
                assert r.status_code == 503, (r.request.url, r.status_code, r.text[:300])
                assert r.headers["retry-after"] == "5"
                assert r.json()["error"] == "not_ready"
                assert "sink" in r.json()["detail"]
            page = client.get("/api/cases/GZ1/receipt", headers={"Accept": "text/html"})
            assert page.status_code == 503 and page.headers["retry-after"] == "5"
            assert page.headers["content-type"].startswith("text/html")
            assert "数据尚未就绪" in page.text and "Not available yet" in page.text
            assert client.get("/healthz").status_code == 503

            upgrade(engine)  # the sink starts
            assert client.get("/api/cases").status_code == 200
            assert client.get("/api/cases/GZ1").status_code == 404
            assert client.get("/healthz").status_code == 200
    finally:
        engine.dispose()
