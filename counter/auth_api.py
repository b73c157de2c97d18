"""Signing in and out: the login page, the local user store's sign-in, OpenID Connect's
authorization-code flow, and ``/api/session`` (who am I, my CSRF token).

* ``GET  /login``: the page (local form; a button for the city's provider when
  configured).
* ``POST /auth/login`` ``{username, password}`` (JSON only, so a cross-site form cannot
  post it): 200 with the session cookie, or 401 ``invalid_credentials``, the same for an
  unknown user, a wrong password, a disabled or a locked account. Limited per client
  address as well (password spraying across accounts).
* ``POST /auth/logout``: ends the session (CSRF token required).
* ``GET  /auth/oidc/login?next=`` and ``GET /auth/oidc/callback``: the provider's sign-in
  (state, nonce and PKCE kept server-side for ten minutes, bound to the browser that
  started it by an HttpOnly cookie, so a callback URL opened in another browser signs
  nobody in: no login CSRF). 503 while the provider cannot be reached.
* ``GET  /api/session``: the signed-in principal, its permissions and CSRF token.

Every sign-in, failed or not, is written to the access log (action ``auth.sign_in``).
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from counter.auth import (
    COOKIE,
    AuditTrail,
    SignedIn,
    StaffAuth,
    client_address,
    cookie_params,
)
from counter.limits import RateLimiter
from counter.schemas import ErrorOut, RequestBody
from onewindow.domain.access import Principal
from onewindow.errors import OneWindowError
from onewindow.staff import sessions, users

__all__ = ["router"]

router = APIRouter(tags=["sign-in"])

#: an unknown user, a wrong password, a disabled or a locked account: one answer
INVALID = "wrong user name or password, or the account is locked or disabled"
#: the browser an OpenID Connect sign-in was started in (its hash is kept with the state)
OIDC_COOKIE = "onewindow_oidc"
OIDC_COOKIE_PATH = "/auth/oidc/"
OIDC_COOKIE_SECONDS = 600  # as long as the state is kept
_BINDING = re.compile(r"[A-Za-z0-9_-]{43,86}")


class LoginIn(RequestBody):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SessionOut(BaseModel):
    name: str
    subject: str
    source: str
    roles: list[str]
    permissions: list[str]
    csrf_token: str | None
    window_id: str | None = None


def _staff(request: Request) -> StaffAuth:
    return request.app.state.staff  # type: ignore[no-any-return]


def _login_limiter(request: Request) -> RateLimiter:
    return request.app.state.login_limiter  # type: ignore[no-any-return]


Staff = Annotated[StaffAuth, Depends(_staff)]


def _session_out(p: Principal, csrf: str | None) -> dict[str, Any]:
    return {"name": p.name, "subject": p.subject, "source": p.source,
            "roles": sorted(r.value for r in p.roles),
            "permissions": sorted(x.value for x in p.permissions), "csrf_token": csrf,
            "window_id": p.window_id}


def _safe_next(target: str | None) -> str:
    """Only a path of this app (no scheme, no host, no ``//``): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target) \
            or urlsplit(target).netloc:
        return "/"
    return target


def _open(request: Request, staff: StaffAuth, principal: Principal) -> tuple[str, str]:
    """A new session: (cookie token, CSRF token)."""
    return sessions.open_session(staff.engine, principal, staff.clock(), staff.sessions)


@router.post("/auth/login", response_model=SessionOut,
             responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}},
             summary="Sign in with the local user store (JSON body)")
def login(body: LoginIn, request: Request, staff: Staff,
          limiter: Annotated[RateLimiter, Depends(_login_limiter)]) -> Response:
    client = client_address(request)
    if not limiter.allow(client):
        raise HTTPException(429, "too many sign-in attempts from this address; wait a "
                                 "minute", headers={"Retry-After": "60"})
    principal = users.authenticate(staff.engine, body.username, body.password,
                                   staff.clock(), staff.lockout)
    who = principal or Principal(subject=f"local:{body.username}", name=body.username,
                                 roles=frozenset(), source="local")
    AuditTrail(request, who)("auth.sign_in", who.subject, "ok" if principal else "failed")
    if principal is None:
        raise HTTPException(401, INVALID)
    token, csrf = _open(request, staff, principal)
    response = JSONResponse(_session_out(principal, csrf))
    response.set_cookie(COOKIE, token, **cookie_params(request, staff))
    return response


@router.post("/auth/logout", status_code=204, summary="Sign out (ends the session)")
def logout(request: Request, principal: SignedIn, staff: Staff) -> Response:
    cookie = request.cookies.get(COOKIE)
    if cookie:
        sessions.close(staff.engine, cookie)
    AuditTrail(request, principal)("auth.sign_out", principal.subject)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/api/session", response_model=SessionOut, responses={401: {"model": ErrorOut}},
            summary="The signed-in user, roles, permissions and CSRF token")
def session(request: Request, principal: SignedIn) -> dict[str, Any]:
    found = getattr(request.state, "auth", None)
    return _session_out(principal, found[1] if found else None)


@router.get("/auth/config", summary="Which sign-in methods this app offers")
def auth_config(staff: Staff) -> dict[str, Any]:
    return {"local": True, "oidc": staff.oidc is not None}


@router.get("/auth/oidc/login", include_in_schema=False)
def oidc_login(request: Request, staff: Staff,
               next_: Annotated[str | None, Query(alias="next", max_length=512)] = None
               ) -> Response:
    if staff.oidc is None:
        raise HTTPException(404, "OpenID Connect is not configured")
    redirect_uri = str(request.url_for("oidc_callback"))
    try:
        url, pending = staff.oidc.authorization_url(redirect_uri)
    except OneWindowError as exc:  # counter.oidc.OidcError: discovery failed
        raise HTTPException(503, f"the identity provider is not available: {exc}") from None
    # one random value per browser (kept while it signs in, so several tabs work)
    binding = request.cookies.get(OIDC_COOKIE, "")
    if not _BINDING.fullmatch(binding):
        binding = secrets.token_urlsafe(32)
    pending["next"] = _safe_next(next_)
    pending["browser"] = users.token_hash(binding)
    sessions.put_login_state(staff.engine, pending["state"], pending, staff.clock())
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(OIDC_COOKIE, binding, **{
        **cookie_params(request, staff), "path": OIDC_COOKIE_PATH,
        "max_age": OIDC_COOKIE_SECONDS})
    return response


@router.get("/auth/oidc/callback", include_in_schema=False, name="oidc_callback")
def oidc_callback(request: Request, staff: Staff) -> Response:
    if staff.oidc is None:
        raise HTTPException(404, "OpenID Connect is not configured")
    params = dict(request.query_params)
    pending = sessions.take_login_state(staff.engine, params.get("state", ""), staff.clock())
    if pending is None:
        raise HTTPException(400, "this sign-in expired or was already used; sign in again")
    unknown = AuditTrail(request, Principal(subject="oidc:unknown", name="unknown",
                                            roles=frozenset(), source="oidc"))
    binding = request.cookies.get(OIDC_COOKIE, "")
    if not hmac.compare_digest(users.token_hash(binding).encode(),
                               str(pending.get("browser", "")).encode()):
        unknown("auth.sign_in", "oidc", "failed", "started in another browser")
        raise HTTPException(400, "this sign-in was started in another browser; sign in again")
    try:
        principal = staff.oidc.complete(pending, params)
    except OneWindowError as exc:
        unknown("auth.sign_in", "oidc", "failed", str(exc)[:200])
        raise HTTPException(401, f"sign-in with the identity provider failed: {exc}") \
            from None
    AuditTrail(request, principal)("auth.sign_in", principal.subject, "ok")
    token, _csrf = _open(request, staff, principal)
    response = RedirectResponse(_safe_next(pending.get("next")), status_code=303)
    response.set_cookie(COOKIE, token, **cookie_params(request, staff))
    return response
