"""Issue 12 against the counter as it runs: `python -m onewindow_cli counter` (uvicorn),
local user store, no identity provider. What the in-process unit tests
(tests/unit/counter/test_access_control.py) cannot show: uvicorn's own handling of
X-Forwarded-For is off (by default it believes 127.0.0.1), the cookie and CSRF check over
a real HTTP connection, the lockout, and the limits as a client meets them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.counter_oidc_support import CASE
from tests.integration.counter_support import counter_process
from tests.staff_support import PASSWORD, bearer_for

pytestmark = pytest.mark.integration


@pytest.fixture
def counter(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of a counter process over the worked example, with small
    limits so a test meets them."""
    with counter_process(tmp_path, LOOKUP_PER_CLIENT_PER_MINUTE="3",
                         SEARCH_PER_USER_PER_MINUTE="2", LOCKOUT_FAILURES="3",
                         MAX_BODY_BYTES="4096") as running:
        yield running


def test_forwarded_for_from_an_untrusted_peer_changes_nothing(counter) -> None:
    base, _ = counter
    codes = [httpx.post(f"{base}/api/lookup",
                        json={"case_id": "GZNOPE", "query_code": "AAAA-AAAA"},
                        headers={"X-Forwarded-For": f"198.51.100.{i}"}, timeout=10).status_code
             for i in range(4)]
    assert codes == [404, 404, 404, 429]


def test_sign_in_csrf_lockout_and_limits_over_http(counter) -> None:
    base, db_url = counter
    bearer_for(db_url, "clerk", name="desk1")  # the user (its token is not used here)
    anon = httpx.get(f"{base}/api/cases/{CASE}", timeout=10)
    assert anon.status_code == 401 and anon.json()["error"] == "unauthenticated"
    page = httpx.get(f"{base}/", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F"
    with httpx.Client(base_url=base, timeout=10) as b:
        r = b.post("/auth/login", json={"username": "desk1", "password": PASSWORD})
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        assert "onewindow_session=" in cookie and "HttpOnly" in cookie
        csrf = r.json()["csrf_token"]
        assert b.get(f"/api/cases/{CASE}").status_code == 200
        assert b.post("/api/search", json={"q": CASE}).status_code == 403
        ok = b.post("/api/search", json={"q": CASE}, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200 and ok.json()["match"] == "case"
        # searches by ID number: two a minute here
        codes = [b.post("/api/search", json={"q": f"44010619850312{i:04d}"},
                        headers={"X-CSRF-Token": csrf}).status_code for i in range(3)]
        assert codes == [200, 200, 429]
        big = b.post("/api/search", content=b'{"q": "' + b"x" * 5000 + b'"}',
                     headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"})
        assert big.status_code == 413 and big.json()["error"] == "too_large"
        assert b.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert b.get(f"/api/cases/{CASE}").status_code == 401
    # three wrong passwords lock the account: the right one no longer opens it
    for _ in range(3):
        assert httpx.post(f"{base}/auth/login", json={"username": "desk1", "password": "x"},
                          timeout=10).status_code == 401
    assert httpx.post(f"{base}/auth/login", json={"username": "desk1", "password": PASSWORD},
                      timeout=10).status_code == 401


def test_a_chunked_body_over_the_limit_is_413_json(counter) -> None:
    """No Content-Length: the limit holds as the body arrives (was a 400)."""
    base, db_url = counter
    headers = bearer_for(db_url, "clerk") | {"Content-Type": "application/json"}

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 1024

    for path in ("/api/search", "/api/lookup"):
        r = httpx.post(f"{base}{path}", content=chunks(), headers=headers, timeout=10)
        assert r.status_code == 413 and r.json()["error"] == "too_large", (path, r.text)
