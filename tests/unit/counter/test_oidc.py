"""counter/oidc.py without a provider: an in-process fake identity provider (httpx's
MockTransport serving discovery and a JWKS, tokens signed with keys made here). The
real provider is tests/integration/test_oidc_keycloak.py's Keycloak."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from pydantic import SecretStr

from counter.oidc import OidcError, OidcProvider, claim_at, oidc_from_settings, roles_from
from onewindow.config import Settings
from onewindow.domain.access import Role
from onewindow.errors import ConfigError

ISSUER = "https://id.city.example/realms/staff"
CLIENT = "onewindow-counter"


class FakeIdp:
    """Discovery and JWKS of one issuer; `keys` may change between calls (rotation)."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, Any]] = {
            "rsa-1": ("RS256", RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})),
            "ec-1": ("ES256", ECKey.generate_key("P-256", parameters={"kid": "ec-1"})),
        }
        self.fetched: list[str] = []
        self.down = False
        self.issuer = ISSUER

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetched.append(request.url.path)
        if self.down:
            return httpx.Response(503)
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json={
                "issuer": self.issuer,
                "authorization_endpoint": f"{ISSUER}/auth",
                "token_endpoint": f"{ISSUER}/token",
                "jwks_uri": f"{ISSUER}/certs",
                "code_challenge_methods_supported": ["S256"]})
        if request.url.path.endswith("/certs"):
            return httpx.Response(200, json={"keys": [
                {**key.as_dict(private=False), "alg": alg, "use": "sig"}
                for alg, key in self.keys.values()]})
        return httpx.Response(404)

    def token(self, kid: str = "rsa-1", **claims: Any) -> str:
        alg, key = self.keys[kid]
        now = int(time.time())
        body = {"iss": ISSUER, "sub": "u-1", "aud": CLIENT, "iat": now, "exp": now + 300,
                "preferred_username": "wang.li", "roles": ["clerk"], **claims}
        return jwt.encode({"alg": alg, "kid": kid},
                          {k: v for k, v in body.items() if v is not None}, key,
                          algorithms=[alg])


@pytest.fixture
def idp() -> FakeIdp:
    return FakeIdp()


def provider(idp: FakeIdp, **kwargs: Any) -> OidcProvider:
    return OidcProvider(ISSUER, CLIENT, "secret",
                        http=httpx.Client(transport=httpx.MockTransport(idp.handler)),
                        **kwargs)


def test_claim_paths() -> None:
    claims = {"roles": ["clerk"], "realm_access": {"roles": ["ops", 7]},
              "https://city.example/roles": "auditor supervisor", "flat": {"x": 1}}
    assert roles_from(claims, "roles") == ["clerk"]
    assert roles_from(claims, "realm_access.roles") == ["ops"]
    assert roles_from(claims, "https://city.example/roles") == ["auditor", "supervisor"]
    assert roles_from(claims, "missing.path") == []
    assert roles_from(claims, "flat") == []
    assert claim_at(claims, "flat.x") == 1


@pytest.mark.parametrize("issuer", ["http://id.city.example/realms/x", "ftp://127.0.0.1/x",
                                    "id.city.example"])
def test_issuer_must_be_https_off_loopback(issuer: str) -> None:
    with pytest.raises(OidcError, match="https"):
        OidcProvider(issuer, CLIENT)


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:8080/realms/x", "http://localhost/x",
                                    "http://[::1]:9/x", ISSUER])
def test_loopback_may_be_plain_http(issuer: str) -> None:
    OidcProvider(issuer, CLIENT).close()


def test_settings(tmp_path: Path) -> None:
    assert oidc_from_settings(Settings()) is None
    with pytest.raises(ConfigError):
        OidcProvider.from_settings(Settings())
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-the-file\n")
    p = OidcProvider.from_settings(Settings(oidc_issuer=ISSUER,
                                            oidc_client_secret_file=secret_file))
    assert p._client_secret == "from-the-file" and p.audience == CLIENT
    p = OidcProvider.from_settings(Settings(oidc_issuer=ISSUER, oidc_audience="api",
                                            oidc_client_secret=SecretStr("env"),
                                            oidc_client_secret_file=secret_file))
    assert p._client_secret == "env" and p.audience == "api"
    with pytest.raises(ConfigError, match="ONEWINDOW_OIDC_CLIENT_SECRET_FILE .*none"):
        OidcProvider.from_settings(Settings(oidc_issuer=ISSUER,
                                            oidc_client_secret_file=tmp_path / "none"))
    with pytest.raises(ConfigError, match="https"):
        OidcProvider.from_settings(Settings(oidc_issuer="http://id.city.example"))


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_bearer_token_verifies(idp: FakeIdp, kid: str) -> None:
    principal = provider(idp).verify_bearer(idp.token(kid, roles=["Clerk", "offline_access"]))
    assert principal.subject == f"{ISSUER}#u-1"
    assert principal.name == "wang.li"
    assert principal.roles == {Role.CLERK}
    assert principal.source == "oidc"


def test_ps256_verifies(idp: FakeIdp) -> None:
    idp.keys["ps-1"] = ("PS256", RSAKey.generate_key(2048, parameters={"kid": "ps-1"}))
    assert provider(idp).verify_bearer(idp.token("ps-1")).name == "wang.li"


def test_name_falls_back_to_sub(idp: FakeIdp) -> None:
    assert provider(idp).verify_bearer(idp.token(preferred_username=None)).name == "u-1"


#: "now" stands for the time the test runs (not when pytest collected it: a long suite
#: runs this many minutes later)
NOW = object()


@pytest.mark.parametrize(("claims", "reason"), [
    ({"sub": None}, "sub"), ({"exp": None}, "exp"), ({"aud": "other"}, "aud"),
    ({"iss": "https://evil.example"}, "iss"), ({"exp": (NOW, -100)}, "expired"),
    ({"nbf": (NOW, 600)}, "nbf"), ({"typ": "Refresh"}, "not an access token"),
])
def test_bad_claims_are_refused(idp: FakeIdp, claims: dict[str, Any], reason: str) -> None:
    claims = {k: int(time.time()) + v[1] if isinstance(v, tuple) and v[0] is NOW else v
              for k, v in claims.items()}
    with pytest.raises(OidcError, match=reason):
        provider(idp).verify_bearer(idp.token(**claims))


def test_audience_may_be_one_of_several(idp: FakeIdp) -> None:
    assert provider(idp).verify_bearer(idp.token(aud=["account", CLIENT])).name == "wang.li"


def test_token_without_kid_needs_a_single_candidate_key(idp: FakeIdp) -> None:
    alg, key = idp.keys["rsa-1"]
    now = int(time.time())
    token = jwt.encode({"alg": alg}, {"iss": ISSUER, "sub": "u", "aud": CLIENT,
                                      "exp": now + 60}, key)
    assert provider(idp).verify_bearer(token).name == "u"  # the only RS256 key
    idp.keys["rsa-2"] = ("RS256", RSAKey.generate_key(2048, parameters={"kid": "rsa-2"}))
    with pytest.raises(OidcError, match="names no signing key"):
        provider(idp).verify_bearer(token)


def test_key_rotation_is_picked_up_after_the_refresh_interval(idp: FakeIdp) -> None:
    now = [time.time()]
    p = provider(idp, clock=lambda: now[0], jwks_min_refresh=30)
    assert p.verify_bearer(idp.token()).name == "wang.li"
    idp.keys["rsa-2"] = ("RS256", RSAKey.generate_key(2048, parameters={"kid": "rsa-2"}))
    rotated = idp.token("rsa-2")
    with pytest.raises(OidcError, match="does not publish"):
        p.verify_bearer(rotated)  # within 30 s of the last fetch: no refresh yet
    assert idp.fetched.count("/realms/staff/certs") == 1
    now[0] += 31
    assert p.verify_bearer(rotated).name == "wang.li"
    assert idp.fetched.count("/realms/staff/certs") == 2


def test_algorithm_must_match_the_key(idp: FakeIdp) -> None:
    _alg, key = idp.keys["rsa-1"]
    token = jwt.encode({"alg": "PS256", "kid": "rsa-1"},
                       {"iss": ISSUER, "sub": "u", "aud": CLIENT,
                        "exp": int(time.time()) + 60}, key, algorithms=["PS256"])
    with pytest.raises(OidcError, match="does not match its key"):
        provider(idp).verify_bearer(token)


def test_discovery_must_name_the_issuer(idp: FakeIdp) -> None:
    idp.issuer = "https://elsewhere.example"
    with pytest.raises(OidcError, match="another issuer"):
        provider(idp).discover()


def test_discovery_keeps_a_stale_copy_while_the_provider_is_down(idp: FakeIdp) -> None:
    now = [time.time()]
    p = provider(idp, clock=lambda: now[0], cache_seconds=60)
    meta = p.discover()
    idp.down = True
    now[0] += 120
    assert p.discover() == meta
    fresh = provider(idp)
    with pytest.raises(OidcError, match="answered 503"):
        fresh.discover()


def test_authorization_url_and_state_checks(idp: FakeIdp) -> None:
    p = provider(idp)
    url, pending = p.authorization_url("https://counter.city.example/auth/oidc/callback")
    assert url.startswith(f"{ISSUER}/auth?")
    assert "code_challenge_method=S256" in url and pending["code_verifier"] not in url
    with pytest.raises(OidcError, match="state"):
        p.complete(pending, {"code": "c", "state": "other"})
    with pytest.raises(OidcError, match="refused: access_denied"):
        p.complete(pending, {"error": "access_denied", "state": pending["state"]})
    with pytest.raises(OidcError, match=r"refused: \(unprintable\)"):
        p.complete(pending, {"error": "<script>", "state": pending["state"]})
    with pytest.raises(OidcError, match="no code"):
        p.complete(pending, {"state": pending["state"]})


def test_a_failed_jwks_fetch_is_not_retried_at_once(idp: FakeIdp) -> None:
    p = provider(idp)
    p.discover()
    idp.down = True
    with pytest.raises(OidcError, match="JWKS answered 503"):
        p.verify_bearer(idp.token())
    with pytest.raises(OidcError, match="JWKS is unavailable"):
        p.verify_bearer(idp.token())
    assert idp.fetched.count("/realms/staff/certs") == 1
