"""Issue 12 on the assembled app: sign-in, roles, CSRF, lockout, the access log, the
citizens' lookup by receipt code, and the limits (counter.auth, counter.auth_api,
counter.access_api, counter.screen_api, counter.limits)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import text

from counter import cases_api
from counter.app import ROUTERS, create_app
from onewindow.domain import receipt
from onewindow.read_model.engine import make_engine
from onewindow.security.id_protection import IdProtector
from onewindow.staff import access_log, users
from onewindow.staff.access_log import CITIZEN
from tests.read_model_support import case_outputs, load_model
from tests.unit.counter.helpers import CASE, PASSWORD, RID, USCC

#: what answers without a session (interfaces.md: the lookup, /healthz and the login)
PUBLIC = {"/healthz", "/login", "/lookup", "/auth/login", "/auth/config",
          "/auth/oidc/login", "/auth/oidc/callback", "/api/lookup"}


def all_routes(app) -> list[APIRoute]:
    """The routes of every router the app includes, and its own."""
    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)] + [
        r for r in app.routes if isinstance(r, APIRoute)]


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X", path)


def test_every_staff_route_answers_401_without_credentials(app, anon) -> None:
    routes = [(m, r.path) for r in all_routes(app) for m in r.methods if m != "HEAD"]
    assert len(routes) > 20
    checked = 0
    for method, path in routes:
        if path in PUBLIC:
            continue
        r = anon.request(method, _sample(path), json={}, follow_redirects=False)
        assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
        assert r.json()["error"] == "unauthenticated"
        checked += 1
    assert checked >= 20
    bad = anon.get("/api/cases/X", headers={"Authorization": "Bearer owt_forged"})
    assert bad.status_code == 401 and "invalid_token" in bad.headers["www-authenticate"]
    assert anon.get("/healthz").status_code == 200
    assert anon.get("/lookup").status_code == 200 and anon.get("/login").status_code == 200


def test_a_browser_is_sent_to_the_login_page(app, anon, user_client) -> None:
    html = {"Accept": "text/html"}
    r = anon.get("/board?date=2025-09-30", headers=html, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fboard%3Fdate%3D2025-09-30"
    # an API client gets JSON, whatever it accepts
    assert anon.get("/api/cases/X", headers=html).status_code == 401
    clerk = user_client("clerk")
    r = clerk.get("/audit", headers=html, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("&denied=1")


ROLE_MATRIX = [
    # path, clerk, supervisor, auditor, ops
    (f"/api/cases/{CASE}", 200, 200, 403, 403),
    (f"/api/cases/{CASE}/card", 200, 200, 403, 403),
    (f"/api/cases/{CASE}/timeline", 200, 200, 403, 403),
    (f"/api/cases/{CASE}/receipt", 200, 200, 403, 403),
    (f"/api/holders/materials?id_type=USCC&id_number={USCC}", 200, 200, 403, 403),
    ("/api/board?date=2025-09-30", 403, 200, 403, 403),
    ("/api/dead-letters", 403, 200, 403, 200),
    ("/api/access-log", 403, 403, 200, 403),
    ("/metrics", 403, 403, 403, 200),
    ("/api/health", 403, 403, 403, 200),
    ("/", 200, 200, 403, 403),
    ("/board", 403, 200, 403, 403),
    ("/audit", 403, 403, 200, 403),
    ("/api/departments", 200, 200, 200, 200),
    ("/docs", 200, 200, 200, 200),
]


def test_each_role_reaches_what_it_should_and_gets_403_elsewhere(user_client, app) -> None:
    clients = {role: user_client(role) for role in ("clerk", "supervisor", "auditor", "ops")}
    for path, *expected in ROLE_MATRIX:
        got = [clients[role].get(path).status_code
               for role in ("clerk", "supervisor", "auditor", "ops")]
        assert got == expected, (path, got)
    r = clients["auditor"].get(f"/api/cases/{CASE}")
    assert r.json()["error"] == "forbidden"


def test_sign_in_csrf_and_sign_out(anon, engine, clock) -> None:
    users.add_user(engine, "clerk1", ["clerk"], PASSWORD, clock.now)
    r = anon.post("/auth/login", json={"username": "clerk1", "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["roles"] == ["clerk"] and "read_cases" in body["permissions"]
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    csrf = body["csrf_token"]
    assert anon.get("/api/session").json()["csrf_token"] == csrf
    assert anon.get(f"/api/cases/{CASE}").status_code == 200
    # a state-changing request of a session needs the CSRF token
    no = anon.post("/api/search", json={"q": CASE})
    assert no.status_code == 403 and no.json()["error"] == "csrf"
    wrong = anon.post("/api/search", json={"q": CASE}, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    ok = anon.post("/api/search", json={"q": CASE}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["match"] == "case"
    assert anon.post("/auth/logout").status_code == 403  # needs the token too
    assert anon.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    anon.cookies.clear()
    assert anon.get(f"/api/cases/{CASE}").status_code == 401
    # a login form posted cross-site (urlencoded) is not JSON: refused, no session
    r = anon.post("/auth/login", data={"username": "clerk1", "password": PASSWORD})
    assert r.status_code == 422 and "set-cookie" not in r.headers


def test_lockout_after_repeated_failures(anon, engine, clock) -> None:
    users.add_user(engine, "clerk2", ["clerk"], PASSWORD, clock.now)
    login = {"username": "clerk2", "password": PASSWORD}
    unknown = anon.post("/auth/login", json={"username": "nobody", "password": "x"})
    for _ in range(5):
        r = anon.post("/auth/login", json={"username": "clerk2", "password": "wrong"})
        assert r.status_code == 401 and r.json() == unknown.json()
    locked = anon.post("/auth/login", json=login)
    assert locked.status_code == 401 and locked.json() == unknown.json()
    clock.now += timedelta(minutes=16)
    assert anon.post("/auth/login", json=login).status_code == 200


def test_a_disabled_user_and_a_revoked_token_stop_at_once(user_client, engine, clock) -> None:
    c = user_client("clerk", name="leaver")
    assert c.get(f"/api/cases/{CASE}").status_code == 200
    users.set_disabled(engine, "leaver", True)
    assert c.get(f"/api/cases/{CASE}").status_code == 401
    users.set_disabled(engine, "leaver", False)  # enabled again: the old token stays dead
    assert c.get(f"/api/cases/{CASE}").status_code == 401
    token = users.issue_token(engine, "leaver", "new", clock.now)
    headers = {"Authorization": f"Bearer {token}"}
    assert c.get(f"/api/cases/{CASE}", headers=headers).status_code == 200
    users.revoke_tokens(engine, "leaver", clock.now)
    assert c.get(f"/api/cases/{CASE}", headers=headers).status_code == 401


def test_the_access_log_holds_one_row_per_read_and_cannot_be_changed(
        user_client, engine, app) -> None:
    clerk = user_client("clerk", name="clerk3")
    auditor = user_client("auditor", name="auditor1")
    clerk.get(f"/api/cases/{CASE}")
    clerk.get(f"/api/cases/{CASE}/timeline")
    clerk.get(f"/api/cases/{CASE}/card")
    clerk.get("/api/cases/GZNOPE")
    clerk.post("/api/holders/materials", json={"id_type": "RESIDENT_ID", "id_number": RID})
    clerk.get("/api/board")  # refused: logged as denied
    clerk.post("/api/search", json={"q": RID})  # by number, across ID types
    rows = auditor.get("/api/access-log", params={"user": "clerk3"}).json()["items"]
    actions = [(r["action"], r["result"]) for r in reversed(rows)]
    card = actions.index(("case.card", "ok"))
    shown = [a for a in actions[card + 1:] if a[0] == "holder.documents"][:-1]
    assert shown and set(shown) == {("holder.documents", "ok")}  # each holder on the card
    assert [a for a in actions if a[0] != "holder.documents"] == [
        ("case.read", "ok"), ("case.timeline", "ok"), ("case.card", "ok"),
        ("case.read", "not_found"), ("denied", "denied"), ("search", "not_found")]
    rows = [r for r in rows[1:] if "case card" not in (r["detail"] or "")]
    assert {r["name"] for r in rows} == {"clerk3"} and {r["client"] for r in rows} == {
        "testclient"}
    assert all(r["at"] for r in rows) and rows[-1]["target"] == CASE
    holder = rows[1]["target"]
    assert holder.startswith("holder:RESIDENT_ID:") and RID not in holder
    # "who read this citizen's documents?": by ID number in the body, hashed
    by_holder = auditor.post("/api/access-log/query", json={
        "holder": {"id_type": "RESIDENT_ID", "id_number": RID}}).json()["items"]
    assert [(r["name"], r["action"], (r["detail"] or "")[:20]) for r in by_holder] == [
        ("auditor1", "access_log.read", ""), ("clerk3", "search", "0 cases"),
        ("clerk3", "holder.documents", "1 documents"),
        ("clerk3", "holder.documents", "on the case card of ")]
    # the auditor's own reads are logged too
    assert auditor.get("/api/access-log", params={"action": "access_log.read"}).json()["items"]
    # no route changes the log ...
    for method in ("PUT", "PATCH", "DELETE"):
        assert auditor.request(method, "/api/access-log").status_code == 405
    methods = {m for r in all_routes(app) if "access-log" in r.path for m in r.methods}
    assert methods == {"GET", "POST"}
    # ... and the database refuses it too
    with pytest.raises(Exception, match="append-only"), engine.begin() as c:
        c.execute(text("UPDATE access_log SET result = 'ok'"))
    # (the rows above carry the test clock's 2025 instants: a row of today)
    access_log.append(engine, CITIZEN, access_log.Entry("lookup", CASE, "ok"), "127.0.0.1",
                      datetime.now(UTC))
    with pytest.raises(Exception, match="180 days"), engine.begin() as c:
        c.execute(text("DELETE FROM access_log"))


def _code(settings, case_id: str) -> str:
    return receipt.query_code(IdProtector.from_settings(settings).digest, case_id)


def test_receipt_and_lookup_by_query_code(client, anon, settings) -> None:
    page = client.get(f"/api/cases/{CASE}/receipt")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    code = _code(settings, CASE)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", code)
    assert code in page.text and "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text and USCC not in page.text
    for typed in (code, code.lower(), code.replace("-", ""), f"  {code[:4]} {code[5:]} "):
        r = anon.post("/api/lookup", json={"case_id": CASE, "query_code": typed})
        assert r.status_code == 200, typed
        body = r.json()
        assert body["applicant"]["id_masked"] == "91**************23"
        assert body["status"] == "APPROVED" and USCC not in r.text
        assert all(t["department_name"] for t in body["tasks"])  # named for the public page
        assert "officer" not in r.text and "sha256" not in r.text
    # the masked ID's characters are no code, and a wrong code is an unknown case
    wrong = anon.post("/api/lookup", json={"case_id": CASE, "query_code": "W123W123"})
    unknown = anon.post("/api/lookup", json={"case_id": "GZNOPE", "query_code": code})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()
    assert anon.post("/api/lookup", json={"case_id": CASE, "query_code": "W123"}
                     ).status_code == 422
    assert anon.post("/api/lookup", json={"case_id": CASE, "id_last4": "W123"}
                     ).status_code == 422
    assert _code(settings, CASE) != _code(settings, "GZOPEN0001")


@pytest.fixture
def make_app(app, settings, engine, clock):
    """An app with other settings over the same model."""
    def make(**overrides):
        s = settings.model_copy(update=overrides)
        return create_app(s, engine=make_engine(s.database_url), clock=clock)
    return make


def test_lookup_limits_and_untrusted_forwarded_for(make_app, settings) -> None:
    app = make_app(lookup_per_client_per_minute=5, lookup_failures_per_case_per_hour=3)
    with TestClient(app) as c:
        # per client: X-Forwarded-For from an untrusted peer changes nothing
        codes = [c.post("/api/lookup", json={"case_id": f"GZNOPE{i}", "query_code": "AAAAAAAA"},
                        headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
                 for i in range(6)]
        assert codes == [404] * 5 + [429]
    app = make_app(lookup_per_client_per_minute=100, lookup_failures_per_case_per_hour=3)
    with TestClient(app) as c:
        # per case: three failures, then even the right code waits (from any client)
        for _ in range(3):
            assert c.post("/api/lookup", json={"case_id": CASE, "query_code": "AAAAAAAA"}
                          ).status_code == 404
        r = c.post("/api/lookup", json={"case_id": CASE, "query_code": _code(settings, CASE)})
        assert r.status_code == 429 and r.json()["error"] == "too_many_requests"
    # behind a trusted proxy the forwarded address counts
    app = make_app(lookup_per_client_per_minute=2, trusted_proxies="testclient")
    with TestClient(app) as c:
        codes = [c.post("/api/lookup", json={"case_id": "GZNOPE", "query_code": "AAAAAAAA"},
                        headers={"X-Forwarded-For": f"203.0.113.{i % 3}"}).status_code
                 for i in range(6)]
        assert codes == [404] * 6


def test_search_by_id_number_is_rate_limited_and_logged(make_app, engine, clock) -> None:
    app = make_app(search_per_user_per_minute=3)
    users.add_user(engine, "clerk4", ["clerk"], PASSWORD, clock.now)
    token = users.issue_token(engine, "clerk4", "t", clock.now)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        codes = [c.post("/api/search", json={"q": f"44010619850312{i:04d}"}).status_code
                 for i in range(4)]
        assert codes == [200, 200, 200, 429]
        assert c.post("/api/search", json={"q": CASE}).status_code == 200  # a case number
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT action, result, target FROM access_log "
                                 "WHERE name = 'clerk4' ORDER BY id")).all()
    assert [(a, r) for a, r, _ in rows] == [("search", "not_found")] * 3 + [
        ("search", "limited"), ("search", "ok")]
    assert all("4401061985" not in (t or "") for _, _, t in rows)


def test_body_size_and_change_feed_caps(make_app, engine, clock) -> None:
    app = make_app(max_body_bytes=2048, sse_per_user=1)
    users.add_user(engine, "clerk5", ["clerk"], PASSWORD, clock.now)
    token = users.issue_token(engine, "clerk5", "t", clock.now)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.post("/api/search", json={"q": "x" * 4096})
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        r = c.post("/auth/login", content=b"{" + b" " * 5000 + b"}",
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert c.get("/api/changes", params={"poll": 0.1}).status_code == 422
        with c.stream("GET", "/api/changes", params={"max_seconds": 2, "poll": 1}) as first:
            assert first.status_code == 200
            second = c.get("/api/changes", params={"max_seconds": 1})
            assert second.status_code == 429 and second.json()["error"] == "too_many_requests"
            "".join(first.iter_text())  # to its end
        # the slot is free again once the first feed ended
        with c.stream("GET", "/api/changes", params={"max_seconds": 1, "poll": 1}) as again:
            assert again.status_code == 200


def test_a_case_with_100_tasks_renders_whole(client, engine, topics, settings, events) -> None:
    tasks = [{"task_id": f"BIG-T{i:03d}", "department": "scjgj", "name": f"事项{i}"}
             for i in range(100)]
    acc = dict(events[0], case_id="GZBIG0001", event_id="big-1", tasks=tasks)
    load_model(engine, topics, case_outputs([acc], topics), settings)
    card = client.get("/api/cases/GZBIG0001/card")
    assert card.status_code == 200 and len(card.json()["case"]["tasks"]) == 100
    assert len(client.get("/api/cases/GZBIG0001").json()["tasks"]) == 100


def test_a_change_feed_ends_when_its_token_is_revoked(user_client, engine, clock,
                                                      monkeypatch) -> None:
    monkeypatch.setattr(cases_api, "RECHECK", 0.2)
    c = user_client("clerk", name="feeder")
    with c.stream("GET", "/api/changes", params={"max_seconds": 30, "poll": 1}) as feed:
        assert feed.status_code == 200
        users.revoke_tokens(engine, "feeder", clock.now)
        text_ = "".join(feed.iter_text())  # ends by itself, long before 30 s
    assert text_.rstrip().endswith("event: signed-out\ndata: {}")


def test_out_of_range_instants_and_days_are_422_never_500(user_client) -> None:
    """Found by schemathesis (tests/integration/test_counter_schemathesis.py): a year-1
    day or instant with an extreme offset cannot even be converted to UTC."""
    c = user_client("supervisor", "auditor")
    for path, params in (("/api/board", {"date": "0001-01-01"}),
                         ("/api/board", {"date": "9999-12-31"}),
                         ("/api/access-log", {"since": "0001-01-01T00:00:00+14:00"}),
                         ("/api/access-log", {"until": "9999-12-31T23:59:59-14:00"}),
                         ("/api/access-log", {"since": "2025-01-01T00:00:00"})):
        r = c.get(path, params=params)
        assert r.status_code == 422 and r.json()["error"] == "invalid_request", (path, params)
    r = c.post("/api/access-log/query", json={"since": "0001-01-01T00:00:00+14:00"})
    assert r.status_code == 422
    assert c.get("/api/access-log", params={"since": "2025-01-01T00:00:00+08:00"}
                 ).status_code == 200


def test_the_access_log_query_models_refusal_is_the_querys_422() -> None:
    """GET /api/access-log builds the POST body's model from its parameters: what the
    model refuses (the app's NUL check comes first today) is a 422 on the query, never
    a pydantic error escaping as a 500."""
    from fastapi.exceptions import RequestValidationError  # noqa: PLC0415

    from counter.access_api import get_access_log  # noqa: PLC0415

    with pytest.raises(RequestValidationError) as refused:
        get_access_log(None, lambda *_: None, None, action="a\x00b")  # type: ignore[arg-type]
    assert refused.value.errors()[0]["loc"] == ("query", "action")


def test_an_id_number_typed_as_a_case_number_stays_masked(user_client, anon) -> None:
    """Review finding: a resident ID typed where a case number belongs was echoed in the
    404 and kept in the (undeletable) access log in plaintext."""
    clerk = user_client("clerk", name="typist")
    auditor = user_client("auditor")
    for path in (f"/api/cases/{RID}", f"/api/cases/{RID}/card", f"/api/materials/{RID}"):
        r = clerk.get(path)
        assert r.status_code == 404 and RID not in r.text, path
    assert anon.post("/api/lookup", json={"case_id": RID, "query_code": "AAAAAAAA"}
                     ).status_code == 404
    assert anon.post("/auth/login", json={"username": RID, "password": "x"}).status_code == 401
    log = auditor.get("/api/access-log", params={"limit": 500}).text
    assert RID not in log and "44**************37" in log
    # blanks or invisible characters alone are no ID number
    for typed in ("   ", "\u200b"):
        r = clerk.post("/api/holders/materials", json={"id_type": "RESIDENT_ID",
                                                       "id_number": typed})
        assert r.status_code == 422


def test_full_width_query_codes_are_read_as_typed(client, anon, settings) -> None:
    code = _code(settings, CASE)
    full = "".join(chr(ord(ch) + 0xFEE0) if ch.isalnum() else ch for ch in code)
    r = anon.post("/api/lookup", json={"case_id": CASE, "query_code": full})
    assert r.status_code == 200


def test_a_holder_number_of_control_characters_is_422_in_the_query_too(client) -> None:
    """Found by schemathesis: the GET form built the body model inside the route (500)."""
    r = client.get("/api/holders/materials", params={"id_type": "PASSPORT",
                                                     "id_number": "\x85\x16\x1a"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
