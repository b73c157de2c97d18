"""The counter app as a process, signing staff in through a real Keycloak: the
authorization-code flow through the app's own routes (Keycloak's login form driven with
httpx), Keycloak's access tokens as bearer tokens, the roles they carry on the API, the
access log naming the provider's users, and the callback's refusals (a replayed or
unknown ``state``, a state from another browser, an open redirect in ``next``).

tests/integration/test_oidc_keycloak.py tests counter/oidc.py alone against the same
Keycloak; this module tests what the app does with it (counter/auth_api.py,
counter/auth.py)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from counter.app import create_app
from counter.oidc import OidcProvider
from onewindow.kafka_local import free_port
from tests.integration.counter_oidc_support import (
    CASE,
    OidcCounter,
    browser,
    code_flow,
    running_counter,
    settings_for,
    through_keycloak,
    to_keycloak,
)
from tests.keycloak_support import (
    COUNTER_CLIENT,
    COUNTER_SECRET,
    ELSEWHERE_CLIENT,
    LocalKeycloak,
)

pytestmark = pytest.mark.integration

#: what each test user may reach: path -> expected status (GET, bearer or session)
STAFF_ONLY = ("/api/cases/{case}", "/api/cases", "/api/cases/{case}/timeline",
              "/api/cases/{case}/card", "/api/board", "/api/dead-letters",
              "/api/access-log", "/api/health", "/metrics")
MAY = {
    "clerk1": {"/api/cases/{case}", "/api/cases", "/api/cases/{case}/timeline",
               "/api/cases/{case}/card"},
    "super1": {"/api/cases/{case}", "/api/cases", "/api/cases/{case}/timeline",
               "/api/cases/{case}/card", "/api/board", "/api/dead-letters"},
    "audit1": {"/api/access-log"},
    "ops1": {"/api/dead-letters", "/api/health", "/metrics"},
    "norole1": set(),
}
ROLES = {"clerk1": ["clerk"], "super1": ["supervisor"], "audit1": ["auditor"],
         "ops1": ["ops"], "norole1": []}


@pytest.fixture(scope="module")
def app(keycloak: LocalKeycloak, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[OidcCounter]:
    with running_counter(keycloak, tmp_path_factory.mktemp("counter-oidc")) as running:
        yield running


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (to know `sub`, to forge look-alikes)."""
    seg = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))))


def header_of(token: str) -> dict[str, Any]:
    seg = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))))


def b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def access_log(app: OidcCounter, keycloak: LocalKeycloak, **query: str) -> list[dict[str, Any]]:
    """Rows of the access log, read by the auditor audit1 with a Keycloak token."""
    r = httpx.get(f"{app.base}/api/access-log", params={"limit": "500", **query},
                  headers=bearer(keycloak.access_token("audit1")), timeout=30)
    assert r.status_code == 200, r.text[:300]
    return list(r.json()["items"])


def assert_json_error(r: httpx.Response, status: int, error: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == error and body["detail"], body


# ---------------------------------------------------------------- authorization code


@pytest.mark.parametrize("username", ["clerk1", "audit1", "norole1"])
def test_sign_in_through_the_app_opens_a_session(app: OidcCounter, keycloak: LocalKeycloak,
                                                 username: str) -> None:
    with browser() as b:
        flow = code_flow(b, app, username)
        sent = flow.authorize_params
        assert sent["redirect_uri"] == app.callback  # built from the request's own host
        assert sent["client_id"] == COUNTER_CLIENT and sent["response_type"] == "code"
        assert sent["code_challenge_method"] == "S256" and sent["state"] and sent["nonce"]
        assert "code_verifier" not in sent

        answer = flow.answer
        assert answer.status_code == 303, (answer.status_code, answer.text[:300])
        assert answer.headers["location"] == "/"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("onewindow_session=")
        attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "path=/", "samesite=lax"} <= attrs
        assert "secure" not in attrs  # plain http on loopback: a browser would drop it
        assert any(a.startswith("max-age=") for a in attrs)

        s = b.get(f"{app.base}/api/session")
        assert s.status_code == 200, s.text[:300]
        who = s.json()
        assert who["name"] == username
        assert who["source"] == "oidc"
        assert who["subject"].startswith(keycloak.issuer + "#")
        assert who["roles"] == ROLES[username]
        assert who["csrf_token"]  # a session: state-changing requests need it

        for path in STAFF_ONLY:
            r = b.get(app.base + path.format(case=CASE))
            want = 200 if path in MAY[username] else 403
            assert r.status_code == want, (username, path, r.status_code, r.text[:200])
            if want == 403:
                assert_json_error(r, 403, "forbidden")
        if username == "clerk1":
            case = b.get(f"{app.base}/api/cases/{CASE}").json()
            assert case["case_id"] == CASE
        # a page the user may not open sends the browser to the sign-in page, saying why
        page = b.get(f"{app.base}/audit", headers={"Accept": "text/html"})
        if username == "audit1":
            assert page.status_code == 200
        else:
            assert page.status_code == 303
            assert page.headers["location"] == "/login?next=%2Faudit&denied=1"

        # signing out needs the CSRF token, then ends the session
        assert_json_error(b.post(f"{app.base}/auth/logout"), 403, "csrf")
        out = b.post(f"{app.base}/auth/logout", headers={"X-CSRF-Token": who["csrf_token"]})
        assert out.status_code == 204
        assert_json_error(b.get(f"{app.base}/api/session"), 401, "unauthenticated")


def test_next_is_kept_when_it_is_a_path_of_the_app(app: OidcCounter) -> None:
    with browser() as b:
        flow = code_flow(b, app, "super1", next_="/board?window=W07")
    assert flow.answer.status_code == 303
    assert flow.answer.headers["location"] == "/board?window=W07"


@pytest.mark.parametrize("next_", ["//evil.example", "//evil.example/board",
                                   "https://evil.example/", "/\\evil.example",
                                   "http:/evil.example", "evil.example", "/\t/evil.example",
                                   "/\n/evil.example"])
def test_next_to_another_host_lands_on_the_start_page(app: OidcCounter, next_: str) -> None:
    with browser() as b:
        flow = code_flow(b, app, "clerk1", next_=next_)
        assert flow.answer.status_code == 303
        assert flow.answer.headers["location"] == "/"
        assert b.get(f"{app.base}/api/session").status_code == 200


def test_a_replayed_state_is_refused_and_opens_no_session(app: OidcCounter) -> None:
    with browser() as b:
        flow = code_flow(b, app, "clerk1")
        assert flow.answer.status_code == 303
        again = b.get(flow.callback_url)  # the same browser, the same callback again
    assert_json_error(again, 400, "bad_request")
    assert "set-cookie" not in again.headers


@pytest.mark.parametrize("query", [{"state": "never-issued", "code": "x"}, {"code": "x"},
                                   {}, {"state": "", "code": ""}])
def test_an_unknown_state_is_refused(app: OidcCounter, query: dict[str, str]) -> None:
    with browser() as b:
        r = b.get(f"{app.base}/auth/oidc/callback", params=query)
        assert_json_error(r, 400, "bad_request")
        assert "set-cookie" not in r.headers
        assert b.get(f"{app.base}/api/session").status_code == 401


def test_a_callback_from_another_browser_is_refused(app: OidcCounter,
                                                   keycloak: LocalKeycloak) -> None:
    """Login CSRF: someone signs in at the provider with their own account and has
    another person's browser open the callback (their code, their state). The state was
    issued to the first browser only: the second gets no session, and the sign-in is
    spent (the first browser cannot use it afterwards either)."""
    with browser() as attacker:
        authorize = to_keycloak(attacker, app)
        callback = through_keycloak(attacker, authorize, "norole1")
        with browser() as victim:
            r = victim.get(callback)
            assert_json_error(r, 400, "bad_request")
            assert "onewindow_session=" not in r.headers.get("set-cookie", "")
            assert victim.get(f"{app.base}/api/session").status_code == 401
        spent = attacker.get(callback)
        assert_json_error(spent, 400, "bad_request")
    failed = access_log(app, keycloak, user="oidc:unknown", action="auth.sign_in")
    assert any(r["result"] == "failed" and r["detail"] == "started in another browser"
               for r in failed)


def test_the_sign_in_is_bound_to_the_browser_by_a_cookie(app: OidcCounter) -> None:
    with browser() as b:
        r = b.get(f"{app.base}/auth/oidc/login")
        assert r.status_code == 302
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("onewindow_oidc=")
        attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "path=/auth/oidc/", "samesite=lax", "max-age=600"} <= attrs
        value = cookie.split(";", 1)[0].split("=", 1)[1]
        # the same browser keeps its value (several tabs may sign in at once)
        again = b.get(f"{app.base}/auth/oidc/login")
        assert again.headers["set-cookie"].split(";", 1)[0] == f"onewindow_oidc={value}"
        assert value not in again.headers["location"]


def test_the_provider_refusing_is_a_json_401(app: OidcCounter, keycloak: LocalKeycloak) -> None:
    """The user cancels at the provider: Keycloak comes back with ``error``."""
    with browser() as b:
        state = dict(httpx.QueryParams(to_keycloak(b, app).split("?", 1)[1]))["state"]
        r = b.get(f"{app.base}/auth/oidc/callback",
                  params={"state": state, "error": "access_denied", "iss": keycloak.issuer})
        assert_json_error(r, 401, "unauthenticated")
        assert "access_denied" in r.json()["detail"]
        assert "onewindow_session=" not in r.headers.get("set-cookie", "")
        assert b.get(f"{app.base}/api/session").status_code == 401


# ---------------------------------------------------------------------- bearer tokens


@pytest.mark.parametrize("username", sorted(MAY))
def test_bearer_access_tokens_carry_the_roles(app: OidcCounter, keycloak: LocalKeycloak,
                                              username: str) -> None:
    token = keycloak.access_token(username)
    with httpx.Client(base_url=app.base, headers=bearer(token), timeout=30) as c:
        who = c.get("/api/session").json()
        assert who["name"] == username and who["source"] == "oidc"
        assert who["subject"] == f"{keycloak.issuer}#{claims_of(token)['sub']}"
        assert who["roles"] == ROLES[username]
        assert who["csrf_token"] is None  # no ambient authority: no CSRF token
        for path in STAFF_ONLY:
            r = c.get(path.format(case=CASE))
            want = 200 if path in MAY[username] else 403
            assert r.status_code == want, (username, path, r.status_code, r.text[:200])
        # no session is opened for a bearer token
        assert "set-cookie" not in c.get("/api/session").headers


def test_expired_forged_and_garbage_tokens_are_401_json(app: OidcCounter,
                                                        keycloak: LocalKeycloak) -> None:
    good = keycloak.access_token("super1")
    head, claims = header_of(good), claims_of(good)
    rogue = RSAKey.generate_key(2048)
    bad = {
        "another key, the same kid": jwt.encode({"alg": "RS256", "kid": head["kid"]}, claims,
                                                rogue),
        "an unknown kid": jwt.encode({"alg": "RS256", "kid": "rotated"}, claims, rogue),
        "claims changed": f"{good.split('.')[0]}.{b64({**claims, 'roles': ['auditor']})}."
                          f"{good.split('.')[2]}",
        "expired and forged": jwt.encode({"alg": "RS256", "kid": head["kid"]},
                                         {**claims, "exp": int(time.time()) - 3600}, rogue),
        "alg none": f"{b64({'alg': 'none', 'kid': head['kid']})}.{b64(claims)}.",
        "HS256 with the client secret": jwt.encode({"alg": "HS256", "kid": head["kid"]},
                                                   claims, OctKey.import_key(COUNTER_SECRET)),
        "another audience": keycloak.access_token("super1", client_id=ELSEWHERE_CLIENT),
        "an ID token": keycloak.password_token("super1")["id_token"],
        "a refresh token": keycloak.password_token("super1")["refresh_token"],
        "garbage": "garbage", "three dots": "a.b.c", "long": "x" * 20000,
        "not base64": f"{b64({'alg': 'RS256'})}.not-base64!.sig",
    }
    with httpx.Client(base_url=app.base, timeout=30) as c:
        assert c.get(f"/api/cases/{CASE}", headers=bearer(good)).status_code == 200
        for what, token in bad.items():
            for path in (f"/api/cases/{CASE}", "/api/session"):
                r = c.get(path, headers={**bearer(token), "Accept": "text/html"})
                assert r.status_code == 401, (what, path, r.status_code, r.text[:200])
                assert_json_error(r, 401, "unauthenticated")
                assert 'error="invalid_token"' in r.headers["www-authenticate"], what
                assert token not in r.text


def test_an_expired_keycloak_token_is_401_json(keycloak: LocalKeycloak,
                                               tmp_path_factory: pytest.TempPathFactory
                                               ) -> None:
    """A token Keycloak signed, once past ``exp`` (and the 30 s leeway): the app in this
    process, its provider's clock moved past the token's lifetime (a process's clock
    cannot be moved; Keycloak's tokens live 300 s)."""
    token = keycloak.access_token("clerk1")
    lifetime = claims_of(token)["exp"] - time.time()
    db_url = f"sqlite:///{tmp_path_factory.mktemp('expired') / 'model.db'}"
    now = [time.time()]
    provider = OidcProvider(keycloak.issuer, COUNTER_CLIENT, COUNTER_SECRET,
                            clock=lambda: now[0])
    try:
        with TestClient(create_app(settings_for(db_url), oidc=provider)) as c:
            assert c.get("/api/session", headers=bearer(token)).status_code == 200
            now[0] = time.time() + lifetime + 31
            r = c.get("/api/session", headers=bearer(token))
            assert r.status_code == 401
            assert r.json()["error"] == "unauthenticated"
            assert 'error="invalid_token"' in r.headers["www-authenticate"]
    finally:
        provider.close()


def test_sign_in_while_the_provider_is_down_is_a_json_503(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('down') / 'model.db'}"
    provider = OidcProvider(f"http://127.0.0.1:{free_port()}/realms/gone", COUNTER_CLIENT,
                            COUNTER_SECRET, timeout=2)
    try:
        with TestClient(create_app(settings_for(db_url), oidc=provider),
                        follow_redirects=False) as c:
            r = c.get("/auth/oidc/login", params={"next": "/"},
                      headers={"Accept": "text/html"})
            assert_json_error(r, 503, "unavailable")
            assert "set-cookie" not in r.headers
            # a bearer token cannot be checked either: refused, never a 500
            r = c.get("/api/session", headers=bearer("a.b.c"))
            assert r.status_code == 401
    finally:
        provider.close()


# ------------------------------------------------------------------------- access log


def test_the_access_log_names_the_keycloak_users(app: OidcCounter,
                                                 keycloak: LocalKeycloak) -> None:
    token = keycloak.access_token("clerk1")
    subject = f"{keycloak.issuer}#{claims_of(token)['sub']}"
    with browser() as b:
        flow = code_flow(b, app, "clerk1")
        assert flow.answer.status_code == 303
        by_session = b.get(f"{app.base}/api/session").json()
        assert by_session["subject"] == subject  # the same user either way
        assert b.get(f"{app.base}/api/cases/{CASE}/timeline").status_code == 200
    assert httpx.get(f"{app.base}/api/cases/{CASE}", headers=bearer(token),
                     timeout=30).status_code == 200
    auditor = keycloak.access_token("audit1")
    auditor_subject = f"{keycloak.issuer}#{claims_of(auditor)['sub']}"
    assert httpx.get(f"{app.base}/api/cases/{CASE}", headers=bearer(auditor),
                     timeout=30).status_code == 403

    rows = access_log(app, keycloak, user=subject)
    assert rows and all(r["subject"] == subject and r["name"] == "clerk1" for r in rows)
    assert all(r["roles"] == ["clerk"] and r["client"] == "127.0.0.1" for r in rows)
    actions = {(r["action"], r["target"], r["result"]) for r in rows}
    assert ("auth.sign_in", subject, "ok") in actions
    assert ("case.read", CASE, "ok") in actions
    assert ("case.timeline", CASE, "ok") in actions
    # found by the user name too
    assert {r["id"] for r in access_log(app, keycloak, user="clerk1")} >= \
        {r["id"] for r in rows}

    denied = access_log(app, keycloak, user=auditor_subject, action="denied")
    assert any(r["target"] == "/api/cases/{case_id}" and r["detail"] == "read_cases"
               and r["name"] == "audit1" for r in denied)
    sign_ins = access_log(app, keycloak, action="auth.sign_in")
    assert all(r["subject"].startswith(keycloak.issuer + "#") or r["subject"] == "oidc:unknown"
               for r in sign_ins)
