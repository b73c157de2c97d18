"""Who is asking: sign-in state, roles and the access log, as FastAPI dependencies.

A request is signed in by one of

* the session cookie (``onewindow_session``) of a browser that signed in at ``/login``
  (local user store) or through OpenID Connect; state-changing requests must also send
  the session's CSRF token in ``X-CSRF-Token`` (synchronizer-token pattern);
* ``Authorization: Bearer ...``: a local API token (``owt_...``, ``onewindow users
  token``) or an access token of the city's OpenID Connect provider, verified against its
  JWKS (:mod:`counter.oidc`). Bearer requests carry no ambient authority: no CSRF token.

``require(permission)`` gives the routes their principal or answers 401 (not signed in)
/ 403 (signed in without the role); ``app.py`` turns both into a redirect to ``/login``
for a browser asking for a page. Every refusal of a signed-in user and every read the
routes record through :class:`AuditTrail` is appended to the access log
(:mod:`onewindow.staff.access_log`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine

from onewindow.domain.access import LockoutPolicy, Permission, Principal
from onewindow.errors import OneWindowError
from onewindow.staff import access_log, sessions, users
from onewindow.staff.sessions import SessionPolicy

__all__ = ["COOKIE", "CSRF_HEADER", "AuditTrail", "Auditor", "SignedIn", "StaffAuth",
           "client_address", "require", "still_signed_in"]

COOKIE = "onewindow_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class StaffAuth:
    """The sign-in parts of one counter process (built by ``create_app``)."""

    engine: Engine  # the staff store (the read model's database, writer connections)
    clock: Callable[[], datetime]
    sessions: SessionPolicy
    lockout: LockoutPolicy
    cookie_secure: bool | None
    oidc: Any = None  # counter.oidc.OidcProvider when ONEWINDOW_OIDC_ISSUER is set


def client_address(request: Request) -> str:
    """The client's address (X-Forwarded-For counts only from a trusted proxy: the app's
    ProxyHeadersMiddleware rewrote the client already, see ``app.py``)."""
    return request.client.host if request.client else "unknown"


def _staff(request: Request) -> StaffAuth:
    return request.app.state.staff  # type: ignore[no-any-return]


def unauthenticated(detail: str = "sign in first") -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="onewindow"'})


def _authenticate(request: Request) -> tuple[Principal, str | None] | None:
    """The principal of the request and the CSRF token it must send (None: bearer)."""
    cached = getattr(request.state, "auth", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    staff = _staff(request)
    found: tuple[Principal, str | None] | None = None
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        token = header[7:].strip()
        principal = None
        if token.startswith(users.TOKEN_PREFIX):
            principal = users.principal_for_token(staff.engine, token)
        elif staff.oidc is not None and token:
            try:
                principal = staff.oidc.verify_bearer(token)
            except OneWindowError:  # counter.oidc.OidcError: expired, forged, wrong audience
                principal = None
        if principal is None:
            raise HTTPException(401, "the bearer token is not valid", headers={
                "WWW-Authenticate": 'Bearer realm="onewindow", error="invalid_token"'})
        found = (principal, None)
    elif (cookie := request.cookies.get(COOKIE)):
        found = sessions.resolve(staff.engine, cookie, staff.clock(), staff.sessions)
    request.state.auth = found
    return found


def still_signed_in(request: Request) -> bool:
    """Whether the request's credentials still hold (a long-lived response, such as the
    change feed, asks from time to time: signing out, disabling the user, revoking the
    token or the session's timeout end it). Not counted as activity of the user."""
    staff = _staff(request)
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        token = header[7:].strip()
        if token.startswith(users.TOKEN_PREFIX):
            return users.principal_for_token(staff.engine, token) is not None
        if staff.oidc is None:
            return False
        try:
            staff.oidc.verify_bearer(token)  # until the access token expires
        except OneWindowError:
            return False
        return True
    cookie = request.cookies.get(COOKIE)
    return bool(cookie) and sessions.resolve(staff.engine, cookie, staff.clock(),
                                             staff.sessions, touch=False) is not None


def signed_in(request: Request) -> Principal:
    """The signed-in principal (401 otherwise); checks the CSRF token of a session's
    state-changing request (403 ``csrf`` when missing or wrong)."""
    found = _authenticate(request)
    if found is None:
        raise unauthenticated()
    principal, csrf = found
    if csrf is not None and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf.encode()):
            raise HTTPException(403, "missing or wrong CSRF token; reload the page",
                                headers={"X-Error-Code": "csrf"})
    request.state.principal = principal
    return principal


SignedIn = Annotated[Principal, Depends(signed_in)]


class AuditTrail:
    """Appends access-log rows for one request: who, when (the app's clock), from where."""

    def __init__(self, request: Request, principal: Principal) -> None:
        self._staff = _staff(request)
        self._principal = principal
        self._client = client_address(request)

    def __call__(self, action: str, target: str | None, result: str = "ok",
                 detail: str | None = None) -> None:
        self.many([access_log.Entry(action, target, result, detail)])

    def many(self, entries: list[access_log.Entry]) -> None:
        """Several rows of this request in one transaction (a card shows many holders)."""
        access_log.append_many(self._staff.engine, self._principal, entries, self._client,
                               self._staff.clock())


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency: the signed-in principal holding ``permission``, else 401/403 (a
    refusal of a signed-in user is written to the access log)."""

    def dependency(request: Request, principal: SignedIn) -> Principal:
        if not principal.may(permission):
            route = getattr(request.scope.get("route"), "path", request.url.path)
            AuditTrail(request, principal)("denied", route, "denied", permission.value)
            raise HTTPException(403, f"your roles do not allow this ({permission.value})")
        return principal

    dependency.__name__ = f"require_{permission.value}"
    return dependency


def _auditor(request: Request, principal: SignedIn) -> AuditTrail:
    return AuditTrail(request, principal)


#: the access-log writer of a signed-in request
Auditor = Annotated[AuditTrail, Depends(_auditor)]


def cookie_params(request: Request, staff: StaffAuth) -> dict[str, Any]:
    """Attributes of the session cookie: HttpOnly, SameSite=Lax (the OpenID Connect
    callback arrives by a top-level redirect from the provider), Secure over HTTPS or
    when configured, no longer than the session."""
    secure = staff.cookie_secure if staff.cookie_secure is not None \
        else request.url.scheme == "https"
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": "/",
            "max_age": int(staff.sessions.absolute / timedelta(seconds=1))}
