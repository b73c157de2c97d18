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


def test_a_nul_character_in_the_path_or_a_query_is_a_422(client) -> None:
    """issue: `/api/cases?service_code=%00` was a 500 on PostgreSQL (its text cannot hold
    NUL); refused before any handler, on every database (the PostgreSQL side in
    tests/integration/test_read_model.py)."""
    for path, params, loc in (("/api/cases", {"service_code": "\x00"}, ["query", "service_code"]),
                              ("/api/cases", {"status": "OPEN\x00x"}, ["query", "status"]),
                              ("/api/cases/GZ%00X", {}, ["path"]),
                              ("/api/materials/M%00", {}, ["path"])):
        r = client.get(path, params=params)
        assert r.status_code == 422, (path, params, r.status_code)
        assert r.json() == {"error": "invalid_request", "detail": [{
            "loc": loc, "msg": "a NUL character is not allowed", "type": "value_error"}]}
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/api/cases", params={"service_code": "S01"}).status_code == 200


def test_a_nul_character_in_a_request_body_is_a_422(client, anon, user_client) -> None:
    """The JSON bodies whose text reaches SQL: the search, the progress lookup, the
    sign-in, the access-log query (each a 500 on PostgreSQL before); every request body
    derives from `RequestBody`, so a field without its own pattern (the password, the
    access log's filters) is covered too, with the words of a NUL in a query."""
    auditor = user_client("auditor")
    for who, path, body in ((client, "/api/search", {"q": "GZ\x00"}),
                            (auditor, "/api/access-log/query", {"target": "GZ\x00"}),
                            (auditor, "/api/access-log/query", {"user": "x\x00"}),
                            (anon, "/api/lookup", {"case_id": "GZ1", "query_code": "ABCD\x00EFG"}),
                            (anon, "/auth/login", {"username": "clerk\x00", "password": "x"}),
                            (anon, "/auth/login", {"username": "clerk", "password": "x\x00"}),
                            (auditor, "/api/access-log/query",
                             {"holder": {"id_type": "RESIDENT_ID", "id_number": "4\x00"}})):
        r = who.post(path, json=body)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert r.json()["error"] == "invalid_request"
        detail = r.json()["detail"]
        assert [(e["type"], e["msg"]) for e in detail] == [
            ("value_error", "a NUL character is not allowed")], r.text
        assert detail[0]["loc"][0] == "body" and detail[0]["loc"][-1] in body | (
            body.get("holder") or {}), r.text
    # a validator's own words without pydantic's "Value error, " in front
    r = auditor.post("/api/access-log/query",
                     json={"holder": {"id_type": "RESIDENT_ID", "id_number": "ab cd"}})
    assert r.status_code == 422, r.text
    assert all(not e["msg"].startswith("Value error") for e in r.json()["detail"]), r.text
    # an empty filter filters nothing, as before (schemathesis found a 500 for ?action=)
    for params in ({"action": ""}, {"user": "", "target": ""}):
        assert auditor.get("/api/access-log", params=params).status_code == 200
    assert auditor.post("/api/access-log/query", json={"action": ""}).status_code == 200
