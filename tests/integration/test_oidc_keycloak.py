"""counter/oidc.py against a real Keycloak (tests/keycloak_support.py, the `keycloak`
session fixture): discovery, bearer tokens of every test user and their roles, the
tokens that must be refused, and the whole authorization-code flow with PKCE driven
through Keycloak's own login form by httpx (no browser)."""

from __future__ import annotations

import base64
import html
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from counter.oidc import OidcError, OidcProvider
from onewindow.domain.access import Role
from tests.keycloak_support import (
    COUNTER_CLIENT,
    COUNTER_SECRET,
    ELSEWHERE_CLIENT,
    TOKEN_CLIENT,
    LocalKeycloak,
    password_of,
)

pytestmark = pytest.mark.integration

CALLBACK = "http://127.0.0.1:8765/auth/oidc/callback"  # any loopback port is allowed

EXPECTED_ROLES = {
    "clerk1": {Role.CLERK},
    "super1": {Role.SUPERVISOR},
    "audit1": {Role.AUDITOR},
    "ops1": {Role.OPS},  # and library-staff, which is not onewindow's
    "multi1": {Role.CLERK, Role.OPS},
    "norole1": set(),
}


def make_provider(kc: LocalKeycloak, **kwargs: Any) -> OidcProvider:
    kwargs.setdefault("client_secret", COUNTER_SECRET)
    return OidcProvider(kc.issuer, COUNTER_CLIENT, **kwargs)


@pytest.fixture(scope="module")
def provider(keycloak: LocalKeycloak) -> Iterator[OidcProvider]:
    p = make_provider(keycloak)
    yield p
    p.close()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT, unverified (to forge look-alikes)."""
    def load(seg: str) -> dict[str, Any]:
        return dict(json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))))
    head, body, _sig = token.split(".")
    return load(head), load(body)


def b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def browser() -> httpx.Client:
    """A client that keeps Keycloak's cookies as a browser does, following no redirect.

    Keycloak's cookies are Secure, which browsers send to http://127.0.0.1 (a
    potentially trustworthy origin) but Python's cookie jar only over https, and say
    Version=1, which its default policy drops; httpx copies the jar into a default one
    per request, so the cookies are kept here by hand (one host, paths ignored)."""
    jar: dict[str, str] = {}

    def remember(response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            jar[name.strip()] = rest.split(";", 1)[0]

    def send(request: httpx.Request) -> None:
        if jar:
            request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())

    return httpx.Client(timeout=30, follow_redirects=False,
                        event_hooks={"request": [send], "response": [remember]})


def sign_in(provider: OidcProvider, username: str, password: str | None = None,
            redirect_uri: str = CALLBACK) -> tuple[dict[str, Any], dict[str, str]]:
    """The authorization-code flow up to the callback, as a browser would run it: the
    pending dict (through JSON, as the app stores it) and the callback's parameters."""
    url, pending = provider.authorization_url(redirect_uri)
    pending = json.loads(json.dumps(pending))
    with browser() as b:
        page = b.get(url)
        assert page.status_code == 200, page.text[:300]
        m = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text)
        assert m, "no login form"
        answer = b.post(html.unescape(m.group(1)), data={
            "username": username,
            "password": password if password is not None else password_of(username)})
    assert answer.status_code == 302, answer.text[:300]
    location = answer.headers["location"]
    assert location.startswith(redirect_uri + "?"), location[:80]
    return pending, dict(parse_qsl(urlsplit(location).query))


# ---------------------------------------------------------------------------- discovery


def test_discovery(provider: OidcProvider, keycloak: LocalKeycloak) -> None:
    meta = provider.discover()
    assert meta["issuer"] == keycloak.issuer
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        assert meta[name].startswith(keycloak.issuer + "/")
    assert "S256" in meta["code_challenge_methods_supported"]
    assert provider.discover() is meta  # cached


def test_keycloak_listens_on_loopback_only(keycloak: LocalKeycloak) -> None:
    log = keycloak.log_file.read_text()
    assert f"Listening on: http://127.0.0.1:{keycloak.port}" in log
    assert "Updating the configuration" not in log  # the warm-up spared a re-augmentation


# -------------------------------------------------------------------------- bearer tokens


@pytest.mark.parametrize("username", sorted(EXPECTED_ROLES))
def test_bearer_token_of_each_user(provider: OidcProvider, keycloak: LocalKeycloak,
                                   username: str) -> None:
    token = keycloak.access_token(username)
    principal = provider.verify_bearer(token)
    claims = parts(token)[1]
    assert principal.subject == f"{keycloak.issuer}#{claims['sub']}"
    assert principal.name == username
    assert principal.source == "oidc"
    assert principal.roles == EXPECTED_ROLES[username]


def test_roles_from_a_dotted_claim_path(keycloak: LocalKeycloak) -> None:
    p = make_provider(keycloak, roles_claim="realm_access.roles")
    try:
        assert p.verify_bearer(keycloak.access_token("multi1")).roles == {Role.CLERK, Role.OPS}
    finally:
        p.close()


def test_token_for_another_audience_is_refused(provider: OidcProvider,
                                               keycloak: LocalKeycloak) -> None:
    token = keycloak.access_token("clerk1", client_id=ELSEWHERE_CLIENT)
    assert parts(token)[1]["aud"] == "another-service"
    with pytest.raises(OidcError, match="aud"):
        provider.verify_bearer(token)


def test_expired_token_is_refused(keycloak: LocalKeycloak) -> None:
    token = keycloak.access_token("clerk1")
    lifetime = parts(token)[1]["exp"] - time.time()
    later = make_provider(keycloak, clock=lambda: time.time() + lifetime + 31)  # > leeway
    try:
        with pytest.raises(OidcError, match="expired"):
            later.verify_bearer(token)
    finally:
        later.close()


def test_token_within_the_leeway_is_accepted(keycloak: LocalKeycloak) -> None:
    token = keycloak.access_token("clerk1")
    lifetime = parts(token)[1]["exp"] - time.time()
    skewed = make_provider(keycloak, clock=lambda: time.time() + lifetime + 10)
    try:
        assert skewed.verify_bearer(token).name == "clerk1"
    finally:
        skewed.close()


def test_token_signed_by_another_key_with_the_same_kid_is_refused(
        provider: OidcProvider, keycloak: LocalKeycloak) -> None:
    header, claims = parts(keycloak.access_token("super1"))
    forged = jwt.encode({"alg": "RS256", "kid": header["kid"]}, claims,
                        RSAKey.generate_key(2048))
    with pytest.raises(OidcError, match="signature"):
        provider.verify_bearer(forged)


def test_alg_none_and_hmac_are_refused(provider: OidcProvider,
                                       keycloak: LocalKeycloak) -> None:
    header, claims = parts(keycloak.access_token("super1"))
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': header['kid']})}.{b64(claims)}."
    with pytest.raises(OidcError, match="algorithm none is not allowed"):
        provider.verify_bearer(unsigned)
    # HS256 keyed with the client secret, which the relying party itself holds
    hmac_token = jwt.encode({"alg": "HS256", "kid": header["kid"]}, claims,
                            OctKey.import_key(COUNTER_SECRET))
    with pytest.raises(OidcError, match="algorithm HS256 is not allowed"):
        provider.verify_bearer(hmac_token)


@pytest.mark.parametrize("garbage", [
    "", "garbage", "a.b.c", "a.b.c.d.e", "..", "x" * 20000,
    f"{b64({'alg': 'RS256'})}.not-base64!.sig", f"{b64({'alg': 'RS256'})}.{b64({})}.",
])
def test_garbage_is_refused(provider: OidcProvider, garbage: str) -> None:
    with pytest.raises(OidcError):
        provider.verify_bearer(garbage)


def test_an_id_token_is_no_access_token(keycloak: LocalKeycloak) -> None:
    """Keycloak's ID tokens of the test client carry aud=onewindow-tests: a relying party
    for that audience still refuses them as bearer tokens (typ "ID")."""
    id_token = keycloak.password_token("clerk1")["id_token"]
    p = make_provider(keycloak, audience=TOKEN_CLIENT)
    try:
        with pytest.raises(OidcError, match="not an access token"):
            p.verify_bearer(id_token)
    finally:
        p.close()


def test_unknown_kid_refreshes_the_jwks_at_most_once_per_interval(
        keycloak: LocalKeycloak) -> None:
    fetched: list[str] = []
    http = httpx.Client(timeout=10, event_hooks={
        "request": [lambda req: fetched.append(req.url.path)]})
    p = make_provider(keycloak, http=http)
    try:
        _header, claims = parts(keycloak.access_token("clerk1"))
        assert p.verify_bearer(keycloak.access_token("clerk1")).name == "clerk1"
        certs = [u for u in fetched if u.endswith("/certs")]
        assert len(certs) == 1
        rogue = RSAKey.generate_key(2048)
        for i in range(3):
            forged = jwt.encode({"alg": "RS256", "kid": f"rotated-{i}"}, claims, rogue)
            with pytest.raises(OidcError, match="does not publish"):
                p.verify_bearer(forged)
        # the first unknown kid came within jwks_min_refresh of the first fetch: no refetch
        assert len([u for u in fetched if u.endswith("/certs")]) == 1
    finally:
        p.close()


# -------------------------------------------------------------------- authorization code


def test_authorization_url_carries_state_nonce_and_pkce(provider: OidcProvider) -> None:
    url, pending = provider.authorization_url(CALLBACK)
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["response_type"] == "code"
    assert query["client_id"] == COUNTER_CLIENT
    assert query["redirect_uri"] == CALLBACK
    assert query["state"] == pending["state"]
    assert query["nonce"] == pending["nonce"]
    assert query["code_challenge_method"] == "S256"
    assert "code_verifier" not in query and pending["code_verifier"] not in url
    assert set(pending) == {"state", "nonce", "code_verifier", "redirect_uri", "created_at"}
    assert json.loads(json.dumps(pending)) == pending


@pytest.mark.parametrize("username", ["clerk1", "multi1", "norole1"])
def test_authorization_code_flow(provider: OidcProvider, keycloak: LocalKeycloak,
                                 username: str) -> None:
    pending, params = sign_in(provider, username)
    assert params["state"] == pending["state"] and params["code"]
    principal = provider.complete(pending, params)
    assert principal.name == username
    assert principal.subject.startswith(keycloak.issuer + "#")
    assert principal.roles == EXPECTED_ROLES[username]
    assert principal.source == "oidc"
    with pytest.raises(OidcError, match="invalid_grant"):  # a code works once
        provider.complete(pending, params)


def test_wrong_state_is_refused(provider: OidcProvider) -> None:
    pending, params = sign_in(provider, "clerk1")
    with pytest.raises(OidcError, match="state"):
        provider.complete(pending, {**params, "state": "forged-" + params["state"]})
    with pytest.raises(OidcError, match="state"):
        provider.complete(pending, {k: v for k, v in params.items() if k != "state"})


def test_wrong_nonce_is_refused(provider: OidcProvider) -> None:
    pending, params = sign_in(provider, "clerk1")
    with pytest.raises(OidcError, match="nonce"):
        provider.complete({**pending, "nonce": "another-nonce"}, params)


def test_wrong_code_verifier_is_refused_by_keycloak(provider: OidcProvider) -> None:
    pending, params = sign_in(provider, "clerk1")
    with pytest.raises(OidcError, match="invalid_grant"):
        provider.complete({**pending, "code_verifier": "x" * 64}, params)


def test_wrong_client_secret_is_refused(keycloak: LocalKeycloak) -> None:
    p = make_provider(keycloak, client_secret="not-the-secret")
    try:
        pending, params = sign_in(p, "clerk1")
        with pytest.raises(OidcError, match="token endpoint refused"):
            p.complete(pending, params)
    finally:
        p.close()


def test_answer_from_another_issuer_or_an_error_is_refused(provider: OidcProvider) -> None:
    pending, params = sign_in(provider, "clerk1")
    with pytest.raises(OidcError, match="another issuer"):
        provider.complete(pending, {**params, "iss": "http://127.0.0.1:1/realms/evil"})
    with pytest.raises(OidcError, match="refused: access_denied"):
        provider.complete(pending, {"error": "access_denied", "state": pending["state"]})


def test_stale_sign_in_is_refused(keycloak: LocalKeycloak) -> None:
    p = make_provider(keycloak)
    try:
        pending, params = sign_in(p, "clerk1")
        late = make_provider(keycloak, clock=lambda: time.time() + 601)
        with pytest.raises(OidcError, match="too long"):
            late.complete(pending, params)
        late.close()
    finally:
        p.close()


def test_wrong_password_never_reaches_the_callback(provider: OidcProvider) -> None:
    url, _pending = provider.authorization_url(CALLBACK)
    with browser() as b:
        page = b.get(url)
        action = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text)
        assert action
        answer = b.post(html.unescape(action.group(1)),
                              data={"username": "clerk1", "password": "wrong"})
    assert answer.status_code == 200  # the login form again, no redirect with a code
    assert "location" not in answer.headers
