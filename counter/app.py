"""The counter web app: the JSON API of interfaces.md over the read model.

``create_app(settings)`` is the composition root of the counter process: it builds the
parts once (read-model engine, working calendar, clock, ID protector, department
registry, lookup limiter, metrics), keeps them on ``app.state`` (``counter.dependencies``
hands them to the routes), and assembles the routers (OpenAPI at ``/docs``):

* ``counter.cases_api``: cases, their timelines, the live change feed (``/api/changes``,
  Server-Sent Events of committed case rows);
* ``counter.materials_api``: materials on file and a holder's documents;
* ``counter.ops_api``: ``/healthz``, ``/metrics``, dead letters;
* ``counter.screen_api``: the JSON of the counter screen and the progress lookup;
* ``counter.supervision_api``: the supervisor view's datasets (JSON or CSV) and the home
  page's figures (docs/supervisor.md);
* ``counter.pages``: the static pages (``/``, ``/board``, ``/supervision``, ``/audit``,
  ``/login``, ``/lookup``; ``counter/static/``, no build step, no CDN).
* ``counter.auth_api``: signing in and out (local user store, OpenID Connect);
  ``counter.access_api``: the access log for auditors.

Every route but ``/healthz``, ``/login``, the sign-in endpoints, the citizens' lookup and
the static assets requires a signed-in user with the right role (``counter.auth``); a
browser asking for a page without a session is sent to ``/login``. The OpenAPI document
and ``/docs`` require a signed-in user too.

It reads the model (``onewindow.read_model.queries``), which the sink writes, and
writes only the staff store (sessions, the access log; ``onewindow.staff``), whose
migrations it runs on start. Every lookup by ID number hashes the query with the same
key as the sink, so no plaintext number is stored, compared in SQL or logged (uvicorn's
access log is off: it would print query strings; the app logs method, route and status).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from counter import (
    access_api,
    auth_api,
    cases_api,
    materials_api,
    ops_api,
    pages,
    readiness,
    screen_api,
    staff_migrations,
    supervision_api,
)
from counter.auth import SignedIn, StaffAuth
from counter.limits import BodyLimit, Limits, RateLimiter, StreamSlots
from counter.metrics import CounterMetrics
from counter.oidc import oidc_from_settings
from onewindow.calendar_source import load_calendar
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.domain.access import LockoutPolicy
from onewindow.domain.calendar import WorkingCalendar
from onewindow.domain.protection import scrub
from onewindow.observability import instrument
from onewindow.observability.supervisor import SupervisorCollector
from onewindow.read_model.engine import make_engine
from onewindow.security.id_protection import IdProtector
from onewindow.staff import access_log
from onewindow.staff import sessions as staff_sessions
from onewindow.staff.sessions import SessionPolicy

__all__ = ["ROUTERS", "create_app"]

log = logging.getLogger("onewindow.counter")

_ERROR_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden",
                404: "not_found", 405: "method_not_allowed", 413: "too_large",
                429: "too_many_requests", 503: "unavailable"}
#: paths whose 401/403 a browser gets as JSON even when it accepts HTML
_API_PREFIXES = ("/api/", "/auth/", "/metrics", "/openapi.json")
#: Swagger UI's script and style, from the fastapi-offline package (no CDN)
SWAGGER_UI = Path(fastapi_offline.__file__).resolve().parent / "static"
#: every router of the app, in the order they are matched
ROUTERS = (ops_api.router, auth_api.router, cases_api.router, materials_api.router,
           screen_api.router, supervision_api.router, access_api.router, pages.router)
#: how often the app deletes ended sessions and access-log rows past their retention
HOUSEKEEPING_SECONDS = 3600.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, engine: Engine | None = None,
               calendar: WorkingCalendar | None = None,
               clock: Callable[[], datetime] | None = None,
               oidc: Any = None) -> FastAPI:
    """The counter app. ``engine``, ``calendar``, ``clock`` and ``oidc`` replace what the
    settings would build (tests)."""
    if calendar is None:
        calendar = load_calendar(settings.calendar_override_file)
    engine = engine or make_engine(settings.database_url)
    # the staff store's writes (sessions, the access log) take the write lock up front
    # (SQLite: BEGIN IMMEDIATE); the reads of the model never do
    staff_engine = make_engine(engine.url.render_as_string(hide_password=False),
                               writer=True, **_shared_pool(engine))
    clock = clock or _utc_now
    protector = IdProtector.from_settings(settings)  # no key: refuse before touching anything
    staff_migrations.upgrade(staff_engine)
    metrics = CounterMetrics()
    instrument(metrics.registry)  # build info, process metrics
    # Supervisor gauges (open cases by status, overdue, due soon, avoidable today),
    # computed from the read model at scrape time.
    metrics.registry.register(SupervisorCollector(engine, calendar, clock=clock))

    app = FastAPI(title="onewindow counter API",
                  description="Live case state, timelines and materials on file, read from "
                              "the onewindow read model. ID numbers are shown masked only. "
                              "Sign in at /login (a session cookie; send the CSRF token of "
                              "GET /api/session in X-CSRF-Token) or send a bearer token.",
                  version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=_housekeeping)
    app.state.engine = engine
    app.state.calendar = calendar
    app.state.clock = clock
    app.state.protector = protector
    app.state.departments = load_registry(settings.departments_file)
    app.state.metrics = metrics
    app.state.settings = settings
    app.state.staff = StaffAuth(
        engine=staff_engine, clock=clock,
        sessions=SessionPolicy(idle=timedelta(minutes=settings.session_idle_minutes),
                               absolute=timedelta(hours=settings.session_max_hours)),
        lockout=LockoutPolicy(max_failures=settings.lockout_failures,
                              lock_for=timedelta(minutes=settings.lockout_minutes)),
        cookie_secure=settings.cookie_secure,
        oidc=oidc if oidc is not None else oidc_from_settings(settings))
    app.state.limits = Limits(
        lookup_per_client_per_minute=settings.lookup_per_client_per_minute,
        lookup_failures_per_case_per_hour=settings.lookup_failures_per_case_per_hour,
        search_per_user_per_minute=settings.search_per_user_per_minute)
    app.state.login_limiter = RateLimiter(20, 60.0)
    app.state.stream_slots = StreamSlots(settings.sse_per_user, settings.sse_total)

    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    # the read model not created yet (the sink not started): 503, not 500
    app.add_exception_handler(DBAPIError, readiness.database_error)  # type: ignore[arg-type]
    app.middleware("http")(_refuse_nul)
    app.middleware("http")(_observe)

    for router in ROUTERS:
        app.include_router(router)
    _docs(app)
    app.mount("/static", pages.static_files(), name="static")
    app.mount("/static-docs", StaticFiles(directory=SWAGGER_UI), name="static-docs")
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    # X-Forwarded-For/-Proto believed only from the configured proxies (none by default;
    # uvicorn's own handling is off: `onewindow counter` runs with proxy_headers=False).
    # Added last, so it runs first: every part of the app sees the real client.
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    return app


def _shared_pool(engine: Engine) -> dict[str, Any]:
    """An in-memory SQLite database lives in its one connection: share the pool."""
    return {"pool": engine.pool} if engine.url.database in (None, "", ":memory:") else {}


def _docs(app: FastAPI) -> None:
    """``/openapi.json`` and ``/docs`` for signed-in users only (any role). Swagger UI
    comes from the fastapi-offline package (``/static-docs``), never from a CDN: a
    script from elsewhere would run with the signed-in user's session."""
    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_who: SignedIn) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(_who: SignedIn) -> FileResponse:
        return FileResponse(pages.STATIC / "docs.html", media_type="text/html; charset=utf-8",
                            headers=pages.PAGE_HEADERS)


@asynccontextmanager
async def _housekeeping(app: FastAPI) -> AsyncIterator[None]:
    """Every hour (and at start): delete ended sessions and access-log rows past their
    retention (``ONEWINDOW_ACCESS_LOG_RETENTION_DAYS``, at least 180 days)."""

    def sweep() -> None:
        staff: StaffAuth = app.state.staff
        now = staff.clock()
        staff_sessions.purge_expired(staff.engine, now, staff.sessions)
        gone = access_log.purge(staff.engine, now,
                                app.state.settings.access_log_retention_days)
        if gone:
            log.info("access log: %d rows past their retention deleted", gone)

    async def loop() -> None:
        while True:
            try:
                await asyncio.to_thread(sweep)
            except Exception:  # noqa: BLE001 - logged; the next hour tries again
                log.exception("housekeeping failed")
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()


def _wants_page(request: Request) -> bool:
    return (request.method == "GET" and not request.url.path.startswith(_API_PREFIXES)
            and "text/html" in request.headers.get("accept", ""))


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Errors as JSON ``{"error", "detail"}``; a browser asking for a page without a
    session (401) or without the role (403) is sent to the sign-in page instead."""
    if exc.status_code in (401, 403) and _wants_page(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        why = "" if exc.status_code == 401 else "&denied=1"
        return RedirectResponse(f"/login?next={quote(target, safe='')}{why}",
                                status_code=303)
    headers = dict(getattr(exc, "headers", None) or {})
    code = headers.pop("X-Error-Code", None) or _ERROR_CODES.get(exc.status_code, "error")
    # a detail may quote the request (a case id): never an ID number typed there
    return JSONResponse({"error": code, "detail": scrub(exc.detail)},
                        status_code=exc.status_code, headers=headers or None)


async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
    # never echo the input back: it may be an ID number; pydantic's "Value error, " in
    # front of a validator's own words left out (as in the command line's refusals)
    detail = [{"loc": list(e.get("loc", ())),
               "msg": str(e.get("msg", "")).removeprefix("Value error, "),
               "type": e.get("type")} for e in exc.errors()]
    return JSONResponse({"error": "invalid_request", "detail": detail}, status_code=422)


def _secure_headers(request: Request, response: Response) -> None:
    """What every answer carries: no sniffing, no framing, no referrer; nothing that
    holds data is cached (the API, every HTML page, the static copies of the pages
    included), and HTML gets the pages' CSP."""
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "no-referrer")
    html = h.get("content-type", "").startswith("text/html")
    if html:
        h.setdefault("Content-Security-Policy", pages.PAGE_HEADERS["Content-Security-Policy"])
    if html or not request.url.path.startswith(("/static/", "/static-docs/")):
        h.setdefault("Cache-Control", "no-store")


async def _refuse_nul(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """A NUL character in the path or a query parameter is refused (422, as a validation
    error) before any handler: PostgreSQL text cannot hold one, so a case id or a filter
    holding ``%00`` reached the driver's error (a 500) there and nothing on SQLite. A
    request body's text is checked by its model (`counter.schemas.RequestBody`), with the
    same type and words."""
    where: tuple[str, ...] | None = None
    if "\x00" in request.url.path or "\x00" in request.scope.get("path", ""):
        where = ("path",)
    else:
        for name, value in request.query_params.multi_items():
            if "\x00" in name or "\x00" in value:
                where = ("query", name.replace("\x00", "\ufffd"))
                break
    if where is None:
        return await call_next(request)
    return JSONResponse({"error": "invalid_request", "detail": [{
        "loc": list(where), "msg": "a NUL character is not allowed", "type": "value_error"}]},
        status_code=422)


async def _observe(request: Request,
                   call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Count and time every request by route template (bounded label values) and log
    method, route and status, never the query string."""
    metrics: CounterMetrics = request.app.state.metrics
    t0 = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", "other")
    _secure_headers(request, response)
    metrics.requests.labels(request.method, path, str(response.status_code)).inc()
    metrics.seconds.labels(request.method, path).observe(time.perf_counter() - t0)
    log.info("%s %s %d", request.method, path, response.status_code)
    return response
