"""The assembled app (counter.app): every error is JSON, and never echoes an ID number."""

from __future__ import annotations

from tests.unit.counter.helpers import RID


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


def test_an_offset_past_any_database_integer_is_a_422(client) -> None:
    """issue: `offset=99999999999999999999` was a plain 500 (SQLite's 64-bit integers)."""
    for path in ("/api/cases", "/api/dead-letters", "/api/cases/NOPE/timeline"):
        r = client.get(path, params={"offset": "99999999999999999999"})
        assert r.status_code == 422, (path, r.status_code)
        assert r.json()["error"] == "invalid_request"
    assert client.get("/api/cases", params={"offset": 10_000_000}).status_code == 200
