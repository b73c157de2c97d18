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
* ``counter.pages``: the static pages (``/``, ``/board``, ``/lookup``; ``counter/static/``,
  no build step, no CDN).

It only reads the model (``onewindow.read_model.queries``); the sink writes it. Every
lookup by ID number hashes the query with the same key as the sink, so no plaintext
number is stored, compared in SQL or logged (uvicorn's access log is off: it would print
query strings; the app logs method, route and status only).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from counter import cases_api, materials_api, ops_api, pages, screen_api
from counter.metrics import CounterMetrics
from onewindow.calendar_source import load_calendar
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.domain.calendar import WorkingCalendar
from onewindow.observability import instrument
from onewindow.observability.supervisor import SupervisorCollector
from onewindow.read_model.engine import make_engine
from onewindow.security.id_protection import IdProtector

__all__ = ["create_app"]

log = logging.getLogger("onewindow.counter")

_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 503: "unavailable"}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, engine: Engine | None = None,
               calendar: WorkingCalendar | None = None,
               clock: Callable[[], datetime] | None = None) -> FastAPI:
    if calendar is None:
        calendar = load_calendar(settings.calendar_override_file)
    engine = engine or make_engine(settings.database_url)
    clock = clock or _utc_now
    metrics = CounterMetrics()
    instrument(metrics.registry)  # build info, process metrics
    # Supervisor gauges (open cases by status, overdue, due soon, avoidable today),
    # computed from the read model at scrape time.
    metrics.registry.register(SupervisorCollector(engine, calendar, clock=clock))

    app = FastAPI(title="onewindow counter API",
                  description="Live case state, timelines and materials on file, read from "
                              "the onewindow read model. ID numbers are shown masked only.",
                  version="1")
    app.state.engine = engine
    app.state.calendar = calendar
    app.state.clock = clock
    app.state.protector = IdProtector.from_settings(settings)
    app.state.departments = load_registry(settings.departments_file)
    app.state.lookup_limiter = screen_api.LookupLimiter()
    app.state.metrics = metrics

    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.middleware("http")(_observe)

    app.include_router(ops_api.router)
    app.include_router(cases_api.router)
    app.include_router(materials_api.router)
    app.include_router(screen_api.router)
    app.include_router(pages.router)
    app.mount("/static", pages.static_files(), name="static")
    return app


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"error": _ERROR_CODES.get(exc.status_code, "error"),
                         "detail": exc.detail},
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
    # never echo the input back: it may be an ID number
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
              for e in exc.errors()]
    return JSONResponse({"error": "invalid_request", "detail": detail}, status_code=422)


async def _observe(request: Request,
                   call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Count and time every request by route template (bounded label values) and log
    method, route and status, never the query string."""
    metrics: CounterMetrics = request.app.state.metrics
    t0 = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", "other")
    metrics.requests.labels(request.method, path, str(response.status_code)).inc()
    metrics.seconds.labels(request.method, path).observe(time.perf_counter() - t0)
    log.info("%s %s %d", request.method, path, response.status_code)
    return response
