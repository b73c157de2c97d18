"""The counter app as an OpenID Connect relying party of the city's identity provider.

* Browser sign-in, authorization-code flow with ``state``, ``nonce`` and PKCE S256:
  :meth:`OidcProvider.authorization_url` gives the provider's URL and a small ``pending``
  dict the caller keeps server-side; :meth:`OidcProvider.complete` takes it back with the
  callback's query parameters, exchanges the code at the token endpoint (client secret)
  and validates the ID token.
* API clients send the provider's access token as a bearer token:
  :meth:`OidcProvider.verify_bearer` checks it against the provider's JWKS.

Both give a :class:`onewindow.domain.access.Principal` whose roles come from a claim
(``oidc_roles_claim``: a name or a dotted path such as ``realm_access.roles``) through
:func:`onewindow.domain.access.parse_roles`. Tokens are signed JWTs with RS256, PS256 or
ES256 only (never ``none`` nor an HMAC the client secret could forge), checked for
``iss``, ``aud``, ``exp``/``nbf``/``iat`` (small leeway) and, for ID tokens, ``nonce``,
``azp`` and ``at_hash``.

Built on authlib (authorization request, PKCE, client authentication, ID-token claims)
and joserfc (JWS and JWK, the JOSE library authlib itself moved to); the HTTP calls go
through one ``httpx.Client`` with timeouts. The discovery document and the JWKS are
cached; a token signed with a key id the cache does not know refreshes the JWKS, at most
once per ``jwks_min_refresh`` seconds. Thread-safe: the counter's routes run in a pool.
Every failure is an :class:`OidcError` with a short reason fit for a log line or a 401;
no token, code or secret is ever logged or put in a message.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwk, jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
)

from onewindow.config import Settings, secret_value
from onewindow.domain.access import Principal, parse_roles
from onewindow.errors import ConfigError, OneWindowError
from onewindow.staff.users import WINDOW_ID

__all__ = ["ALLOWED_ALGORITHMS", "OidcError", "OidcProvider", "oidc_from_settings"]

log = logging.getLogger(__name__)

#: asymmetric signatures only: no "none", no HS* (a shared secret the client holds)
ALLOWED_ALGORITHMS = ("RS256", "PS256", "ES256")
MAX_TOKEN_LENGTH = 16 * 1024
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.,\-]{1,64}")


class OidcError(OneWindowError):
    """Sign-in or a bearer token refused; ``reason`` is short and holds no token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _safe(value: object) -> str:
    """An attacker-supplied value (an error code, an alg) fit for a message."""
    text = str(value)
    return text if _SAFE_CODE.fullmatch(text) else "(unprintable)"


def _check_transport(url: str, what: str) -> None:
    """HTTPS, except on the loopback interface (a provider on this machine, tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback:
        raise OidcError(f"{what} must be an https URL (plain http only on loopback)")


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The claim named ``path`` (a URL-like name may contain dots), else the value at the
    dotted path (``realm_access.roles``); None when absent."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def roles_from(claims: Mapping[str, Any], path: str) -> list[str]:
    """The role names at ``path``: a JSON array of strings, or one space-separated string."""
    value = claim_at(claims, path)
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


class OidcProvider:
    """One relying party of one OpenID provider, created once per process."""

    def __init__(self, issuer: str, client_id: str, client_secret: str | None = None, *,
                 audience: str | None = None, roles_claim: str = "roles",
                 window_claim: str = "window_id", scope: str = "openid profile", leeway: int = 30,
                 pending_max_age: int = 600, cache_seconds: float = 3600.0,
                 jwks_min_refresh: float = 30.0, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time,
                 http: httpx.Client | None = None) -> None:
        _check_transport(issuer, "the issuer")
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.audience = audience or client_id
        self.roles_claim = roles_claim
        self.window_claim = window_claim
        self.scope = scope
        self.leeway = leeway
        self.pending_max_age = pending_max_age
        self.cache_seconds = cache_seconds
        self.jwks_min_refresh = jwks_min_refresh
        self._clock = clock
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout),
                                          follow_redirects=False,
                                          headers={"Accept": "application/json"})
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: dict[str | None, jwk.Key] = {}
        self._jwks_at = 0.0
        self._jwks_tried_at: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> OidcProvider:
        """The provider of ``ONEWINDOW_OIDC_*``; ConfigError when the issuer is unset or
        the secret file is unreadable."""
        if not settings.oidc_issuer:
            raise ConfigError("OpenID Connect needs ONEWINDOW_OIDC_ISSUER")
        secret = secret_value(settings.oidc_client_secret, settings.oidc_client_secret_file,
                              "ONEWINDOW_OIDC_CLIENT_SECRET_FILE")
        try:
            return cls(settings.oidc_issuer, settings.oidc_client_id, secret or None,
                       audience=settings.oidc_audience, roles_claim=settings.oidc_roles_claim,
                       window_claim=settings.oidc_window_claim, **kwargs)
        except OidcError as exc:
            raise ConfigError(f"ONEWINDOW_OIDC_ISSUER: {exc.reason}") from exc

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ provider data

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            resp = self._http.get(url)
        except httpx.HTTPError as exc:
            raise OidcError(f"the identity provider's {what} is unreachable "
                            f"({type(exc).__name__})") from exc
        if resp.status_code != 200:
            raise OidcError(f"the identity provider's {what} answered {resp.status_code}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise OidcError(f"the identity provider's {what} is not JSON") from exc
        if not isinstance(body, dict):
            raise OidcError(f"the identity provider's {what} is not a JSON object")
        return body

    def discover(self) -> dict[str, Any]:
        """The provider's metadata (``/.well-known/openid-configuration``), cached for
        ``cache_seconds``; a stale copy is kept while the provider cannot be reached."""
        with self._lock:
            now = self._clock()
            if self._metadata is not None and now - self._metadata_at < self.cache_seconds:
                return self._metadata
            try:
                meta = self._get_json(f"{self.issuer}/.well-known/openid-configuration",
                                      "discovery document")
                if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
                    raise OidcError("the discovery document names another issuer")
                for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(meta.get(name), str):
                        raise OidcError(f"the discovery document has no {name}")
                    _check_transport(meta[name], name)
            except OidcError as exc:
                if self._metadata is None:
                    raise
                log.warning("OpenID Connect discovery failed, keeping the cached copy: %s",
                            exc.reason)
                self._metadata_at = now
                return self._metadata
            self._metadata, self._metadata_at = meta, now
            return meta

    def _refresh_jwks(self, jwks_uri: str, now: float) -> None:
        """Fetch the JWKS (under the lock); keys for signing only."""
        self._jwks_tried_at = now
        body = self._get_json(jwks_uri, "JWKS")
        keys: dict[str | None, jwk.Key] = {}
        for data in body.get("keys", []):
            if not isinstance(data, dict) or data.get("use", "sig") != "sig":
                continue
            try:
                key = jwk.import_key(data)
            except (JoseError, ValueError, TypeError):
                log.warning("OpenID Connect: skipped a JWKS key of type %s",
                            _safe(data.get("kty")))
                continue
            keys[data.get("kid")] = key
        if not keys:
            raise OidcError("the identity provider's JWKS has no signing key")
        self._keys, self._jwks_at = keys, now
        log.info("OpenID Connect: %d signing key(s) from the JWKS", len(keys))

    def _key(self, kid: str | None, alg: str) -> jwk.Key:
        """The JWKS key ``kid``; an unknown kid refreshes the JWKS (rate-limited)."""
        jwks_uri = self.discover()["jwks_uri"]
        with self._lock:
            now = self._clock()
            stale = now - self._jwks_at >= self.cache_seconds
            unknown = kid not in self._keys
            may_refresh = (self._jwks_tried_at is None
                           or now - self._jwks_tried_at >= self.jwks_min_refresh)
            if (stale or unknown) and may_refresh:
                try:
                    self._refresh_jwks(jwks_uri, now)
                except OidcError:
                    if not self._keys:
                        raise
                    log.warning("OpenID Connect: JWKS refresh failed, keeping the cache")
            if not self._keys:  # the last fetch failed a moment ago: not again yet
                raise OidcError("the identity provider's JWKS is unavailable")
            if kid is None:  # no kid: only when one key could have signed it
                candidates = [k for k in self._keys.values() if k.get("alg") in (None, alg)]
                if len(candidates) == 1:
                    return candidates[0]
                raise OidcError("the token names no signing key")
            key = self._keys.get(kid)
        if key is None:
            raise OidcError("the token is signed with a key the provider does not publish")
        if key.get("alg") not in (None, alg):
            raise OidcError("the token's algorithm does not match its key")
        return key

    # ------------------------------------------------------------------------- tokens

    def _now(self) -> int:
        return int(self._clock())

    def _decode(self, token: object) -> tuple[dict[str, Any], dict[str, Any]]:
        """Header and claims of a JWS-signed JWT whose signature checks out."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH \
                or token.count(".") != 2:
            raise OidcError("the token is not a signed JWT")
        try:
            header = dict(jws.extract_compact(token.encode("ascii")).headers())
        except (JoseError, ValueError, TypeError, UnicodeError) as exc:
            raise OidcError("the token is not a signed JWT") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise OidcError(f"the token's algorithm {_safe(alg)} is not allowed")
        if header.get("crit"):
            raise OidcError("the token has critical headers this app does not know")
        kid = header.get("kid")
        key = self._key(kid if isinstance(kid, str) else None, alg)
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        except BadSignatureError as exc:
            raise OidcError("the token's signature does not verify") from exc
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcError("the token is not a valid JWT") from exc
        return header, dict(decoded.claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise OidcError("the token has no subject")
        name = claims.get("preferred_username")
        name = name if isinstance(name, str) and name.strip() else sub
        window = claim_at(claims, self.window_claim)
        window = window.strip() if isinstance(window, str) else None
        return Principal(subject=f"{claims['iss']}#{sub}", name=name.strip()[:200],
                         roles=parse_roles(roles_from(claims, self.roles_claim)),
                         source="oidc",
                         window_id=window if window and WINDOW_ID.match(window) else None)

    def verify_bearer(self, token: str) -> Principal:
        """The principal of an API client's access token (a JWT of this issuer for this
        audience, unexpired, signed by a key of the JWKS); OidcError otherwise."""
        meta = self.discover()
        _header, claims = self._decode(token)
        registry = jwt.JWTClaimsRegistry(
            now=self._now, leeway=self.leeway,
            iss={"essential": True, "value": meta["issuer"]},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True}, sub={"essential": True})
        _validate(registry.validate, claims)
        if claims.get("typ") not in (None, "Bearer", "bearer", "at+jwt"):
            raise OidcError("the token is not an access token")  # Keycloak's ID/refresh
        return self._principal(claims)

    # ------------------------------------------------------------- authorization code

    def authorization_url(self, redirect_uri: str) -> tuple[str, dict[str, Any]]:
        """Where to send the browser, and what to keep server-side until the callback:
        ``{"state", "nonce", "code_verifier", "redirect_uri", "created_at"}`` (JSON)."""
        meta = self.discover()
        methods = meta.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise OidcError("the identity provider does not offer PKCE S256")
        pending = {"state": generate_token(32), "nonce": generate_token(32),
                   "code_verifier": generate_token(64), "redirect_uri": redirect_uri,
                   "created_at": self._now()}
        url = prepare_grant_uri(
            meta["authorization_endpoint"], client_id=self.client_id, response_type="code",
            redirect_uri=redirect_uri, scope=self.scope, state=pending["state"],
            nonce=pending["nonce"], code_challenge_method="S256",
            code_challenge=create_s256_code_challenge(pending["code_verifier"]))
        return url, pending

    def complete(self, pending: Mapping[str, Any], params: Mapping[str, str]) -> Principal:
        """The signed-in principal from the callback's query parameters and the
        ``pending`` dict of :meth:`authorization_url`; OidcError when anything is off."""
        meta = self.discover()
        state, expected = params.get("state"), pending.get("state")
        if not isinstance(state, str) or not isinstance(expected, str) \
                or not hmac.compare_digest(state.encode(), expected.encode()):
            raise OidcError("the sign-in state does not match")
        if "error" in params:  # e.g. access_denied: the user cancelled
            raise OidcError(f"the identity provider refused: {_safe(params['error'])}")
        created = pending.get("created_at")
        if not isinstance(created, int | float) \
                or self._now() - created > self.pending_max_age:
            raise OidcError("the sign-in took too long; sign in again")
        if "iss" in params and params["iss"].rstrip("/") != self.issuer:  # RFC 9207
            raise OidcError("the answer comes from another issuer")
        code = params.get("code")
        if not isinstance(code, str) or not code:
            raise OidcError("the identity provider sent no code")
        if not pending.get("nonce"):
            raise OidcError("the sign-in has no nonce")
        tokens = self._exchange(meta, code, pending)
        header, claims = self._decode(tokens["id_token"])
        id_token = CodeIDToken(
            claims, header,
            options={"iss": {"essential": True, "value": meta["issuer"]},
                     "aud": {"essential": True, "value": self.client_id}},
            params={"nonce": pending.get("nonce"), "client_id": self.client_id,
                    "access_token": tokens.get("access_token")})
        _validate(lambda _c: id_token.validate(now=self._now(), leeway=self.leeway), claims)
        return self._principal(claims)

    def _exchange(self, meta: Mapping[str, Any], code: str,
                  pending: Mapping[str, Any]) -> dict[str, Any]:
        """POST the code and the PKCE verifier to the token endpoint."""
        url = meta["token_endpoint"]
        body = prepare_token_request("authorization_code", code=code,
                                     redirect_uri=pending.get("redirect_uri"),
                                     code_verifier=pending.get("code_verifier"))
        supported = meta.get("token_endpoint_auth_methods_supported") or []
        if self._client_secret is None:
            method = "none"
        elif "client_secret_basic" in supported or not supported:
            method = "client_secret_basic"
        else:
            method = "client_secret_post"
        auth = ClientAuth(self.client_id, self._client_secret or "", method)
        url, headers, body = auth.prepare("POST", url, {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json"}, body)
        try:
            resp = self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise OidcError(f"the token endpoint is unreachable ({type(exc).__name__})") \
                from exc
        try:
            tokens = resp.json()
        except ValueError:
            tokens = None
        if not isinstance(tokens, dict):
            raise OidcError(f"the token endpoint answered {resp.status_code}, not JSON")
        if resp.status_code != 200 or "error" in tokens:
            raise OidcError(f"the token endpoint refused the code: "
                            f"{_safe(tokens.get('error', resp.status_code))}")
        if not isinstance(tokens.get("id_token"), str):
            raise OidcError("the token endpoint sent no ID token")
        if str(tokens.get("token_type", "")).lower() != "bearer":
            raise OidcError("the token endpoint sent an unknown token type")
        return tokens


def _validate(check: Callable[[dict[str, Any]], None], claims: dict[str, Any]) -> None:
    """Run a joserfc/authlib claims check; its errors become short OidcErrors."""
    try:
        check(claims)
    except ExpiredTokenError as exc:
        raise OidcError("the token has expired") from exc
    except MissingClaimError as exc:
        raise OidcError(f"the token lacks the claim {_safe(exc.claim)}") from exc
    except ClaimError as exc:
        raise OidcError(f"the token's {_safe(exc.claim)} is not acceptable") from exc
    except JoseError as exc:
        raise OidcError("the token is not acceptable") from exc


def oidc_from_settings(settings: Settings, **kwargs: Any) -> OidcProvider | None:
    """The process's provider when ``ONEWINDOW_OIDC_ISSUER`` is set, else None."""
    return OidcProvider.from_settings(settings, **kwargs) if settings.oidc_issuer else None
