"""The counter web app: the JSON API of interfaces.md over the read model.

``create_app(settings)`` builds the FastAPI app (OpenAPI at ``/docs``). It only reads the
model (``onewindow.read_model.queries``); the sink writes it. Every lookup by ID number
hashes the query with the same key as the sink, so no plaintext number is stored,
compared in SQL or logged (uvicorn's access log is off: it would print query strings;
the app logs method, route and status only).

The counter screen (``/``, ``/board``) and the citizen's progress lookup (``/lookup``) are
static pages (``counter/static/``, no build step, no CDN) served by ``counter.pages``; their
JSON is ``counter.screen_api``; live updates come from ``GET /api/changes``, a
Server-Sent Events feed of committed case rows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from counter import pages, present
from counter.dependencies import ERRORS, Conn, Limit, Offset
from counter.schemas import (
    CaseList,
    CaseOut,
    DeadLetterList,
    HolderDocuments,
    HolderQuery,
    IdType,
    MaterialWithLinks,
    TimelineOut,
)
from counter.screen_api import build_router
from onewindow.config import Settings
from onewindow.domain.calendar import WorkingCalendar
from onewindow.domain.identifiers import mask_id
from onewindow.observability import instrument
from onewindow.observability.supervisor import SupervisorCollector
from onewindow.read_model import queries
from onewindow.read_model.engine import make_engine
from onewindow.read_model.privacy import IdProtector

__all__ = ["create_app"]

log = logging.getLogger("onewindow.counter")



class CounterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("onewindow_http_requests_total", "HTTP requests by route",
                                ["method", "route", "status"], registry=self.registry)
        self.seconds = Histogram("onewindow_http_request_seconds", "HTTP request duration",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5, 1, 2.5))


#: set when the uvicorn server of this process starts to exit (SIGINT/SIGTERM): the
#: endless SSE streams end then, else uvicorn's graceful shutdown would wait for them.
_SERVER_EXITING = threading.Event()


def _watch_server_exit() -> None:
    """Wrap ``uvicorn.Server.handle_exit`` once to set ``_SERVER_EXITING`` (the pattern of
    sse-starlette's AppStatus)."""
    try:
        from uvicorn.server import Server
    except ImportError:  # pragma: no cover - served by another ASGI server
        return
    original = Server.handle_exit
    if getattr(original, "_onewindow_watch", False):
        return

    def handle_exit(self: Any, sig: int, frame: Any) -> None:
        _SERVER_EXITING.set()
        original(self, sig, frame)

    handle_exit._onewindow_watch = True  # type: ignore[attr-defined]
    Server.handle_exit = handle_exit  # type: ignore[method-assign]


def _page(items: list[Any], limit: int, offset: int) -> tuple[list[Any], int | None]:
    """``items`` fetched with ``limit + 1``: the page and the next offset (or None)."""
    if len(items) > limit:
        return items[:limit], offset + limit
    return items, None


def create_app(settings: Settings, *, engine: Engine | None = None,
               calendar: WorkingCalendar | None = None,
               clock: Callable[[], datetime] | None = None) -> FastAPI:
    if calendar is None:
        from onewindow.calendar_source import load_calendar

        calendar = load_calendar(settings.calendar_override_file)
    engine = engine or make_engine(settings.database_url)
    protector = IdProtector.from_settings(settings)
    now: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
    metrics = CounterMetrics()
    instrument(metrics.registry)  # build info, process metrics
    # Supervisor gauges (open cases by status, overdue, due soon, avoidable today),
    # computed from the read model at scrape time.
    metrics.registry.register(SupervisorCollector(engine, calendar, clock=now))

    app = FastAPI(title="onewindow counter API",
                  description="Live case state, timelines and materials on file, read from "
                              "the onewindow read model. ID numbers are shown masked only.",
                  version="1")
    app.state.engine = engine
    app.state.metrics = metrics

    # ------------------------------------------------------------------ errors

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed",
                503: "unavailable"}.get(exc.status_code, "error")
        return JSONResponse({"error": code, "detail": exc.detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # never echo the input back: it may be an ID number
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                  for e in exc.errors()]
        return JSONResponse({"error": "invalid_request", "detail": detail}, status_code=422)

    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "other")  # a route template: bounded label values
        metrics.requests.labels(request.method, path, str(response.status_code)).inc()
        metrics.seconds.labels(request.method, path).observe(time.perf_counter() - t0)
        log.info("%s %s %d", request.method, path, response.status_code)
        return response

    # ------------------------------------------------------------------ ops

    @app.get("/healthz", tags=["ops"], summary="200 when the read model can be read")
    def healthz() -> JSONResponse:
        try:
            with engine.connect() as c:
                queries.ping(c)
        except Exception as exc:  # noqa: BLE001 - any failure is "unavailable"
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__},
                                status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["ops"], summary="Prometheus text format")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    api = APIRouter(prefix="/api", responses=ERRORS)

    # ------------------------------------------------------------------ cases

    @api.get("/cases/{case_id}", response_model=CaseOut, tags=["cases"],
             summary="The case state, SLA status computed now")
    def get_case(case_id: str, c: Conn) -> dict[str, Any]:
        row = queries.get_case(c, case_id)
        if row is None:
            raise HTTPException(404, f"case {case_id!r} is not in the read model")
        return present.case_out(row, now(), calendar)

    @api.get("/cases", response_model=CaseList, tags=["cases"],
             summary="Cases, newest first; the progress lookup by applicant ID")
    def list_cases(c: Conn, status: str | None = None, department: str | None = None,
                   service_code: str | None = None,
                   applicant_id_type: IdType | None = None,
                   applicant_id_number: Annotated[str | None, Query(max_length=64)] = None,
                   limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        applicant = None
        if applicant_id_number is not None:
            if applicant_id_type is None:
                raise RequestValidationError([{
                    "loc": ("query", "applicant_id_type"), "type": "missing",
                    "msg": "required with applicant_id_number"}])
            applicant = (applicant_id_type, protector.hash(applicant_id_number))
        rows = queries.list_cases(c, status=status, department=department,
                                  service_code=service_code, applicant=applicant,
                                  limit=limit + 1, offset=offset)
        rows, nxt = _page(rows, limit, offset)
        t = now()
        return {"items": [present.case_out(r, t, calendar) for r in rows],
                "limit": limit, "offset": offset, "next_offset": nxt}

    @api.get("/cases/{case_id}/timeline", response_model=TimelineOut, tags=["cases"],
             summary="The applied events of the case, by occurred_at")
    def get_timeline(case_id: str, c: Conn, limit: Limit = 100,
                     offset: Offset = 0) -> dict[str, Any]:
        rows = queries.timeline(c, case_id, limit=limit + 1, offset=offset)
        if not rows and not queries.case_exists(c, case_id):
            raise HTTPException(404, f"case {case_id!r} is not in the read model")
        rows, nxt = _page(rows, limit, offset)
        return {"case_id": case_id, "items": [present.timeline_entry_out(r) for r in rows],
                "limit": limit, "offset": offset, "next_offset": nxt}

    # ------------------------------------------------------------------ materials

    @api.get("/materials/{material_id}", response_model=MaterialWithLinks, tags=["materials"],
             summary="A material on file and its links")
    def get_material(material_id: str, c: Conn) -> dict[str, Any]:
        m = queries.get_material(c, material_id)
        if m is None:
            raise HTTPException(404, f"material {material_id!r} is not in the read model")
        return present.material_out(m) | {"links": [present.link_out(lk) for lk in m["links"]]}

    def holder_documents(c: Connection, q: HolderQuery, limit: int,
                         offset: int) -> dict[str, Any]:
        materials, links = queries.holder_materials(c, q.id_type, protector.hash(q.id_number))
        docs = queries.fold_documents(materials, links)
        page = docs[offset:offset + limit]
        name = materials[-1]["holder_name"] if materials else None
        return {"holder": {"id_type": q.id_type, "id_masked": mask_id(q.id_number),
                           "name": name},
                "total_documents": len(docs),
                "documents": [present.document_out(d) for d in page],
                "limit": limit, "offset": offset,
                "next_offset": offset + limit if offset + limit < len(docs) else None}

    @api.get("/holders/materials", response_model=HolderDocuments, tags=["materials"],
             summary="Documents already on file for a holder, duplicates folded together")
    def get_holder_materials(c: Conn, id_type: IdType,
                             id_number: Annotated[str, Query(min_length=1, max_length=64)],
                             limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        return holder_documents(c, HolderQuery(id_type=id_type, id_number=id_number),
                                limit, offset)

    @api.post("/holders/materials", response_model=HolderDocuments, tags=["materials"],
              summary="The same lookup with the ID number in the body (kept out of URLs)")
    def post_holder_materials(q: HolderQuery, c: Conn, limit: Limit = 50,
                              offset: Offset = 0) -> dict[str, Any]:
        return holder_documents(c, q, limit, offset)

    # ------------------------------------------------------------------ dead letters

    @api.get("/dead-letters", response_model=DeadLetterList, tags=["ops"],
             summary="Input records that were not applied, newest first")
    def dead_letters(c: Conn, reason: str | None = None, department: str | None = None,
                     limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        rows = queries.list_dead_letters(c, reason=reason, department=department,
                                         limit=limit + 1, offset=offset)
        rows, nxt = _page(rows, limit, offset)
        return {"items": [present.dead_letter_out(d) for d in rows],
                "limit": limit, "offset": offset, "next_offset": nxt}

    # ------------------------------------------------------------------ change feed

    @api.get("/changes", tags=["cases"], response_class=StreamingResponse,
             summary="Server-Sent Events: one `case` event per committed case change")
    async def changes(poll: Annotated[float, Query(ge=0.1, le=10)] = 1.0,
                      max_seconds: Annotated[float | None, Query(ge=0)] = None,
                      since_seconds: Annotated[float, Query(ge=0, le=86400)] = 0.0
                      ) -> StreamingResponse:
        async def feed() -> AsyncIterator[str]:
            since = now() - timedelta(seconds=since_seconds)
            stop_at = None if max_seconds is None else time.monotonic() + max_seconds
            # retry: how soon a browser's EventSource reconnects after the stream ends
            yield "retry: 1000\n: onewindow case changes\n\n"
            quiet = 0.0
            while stop_at is None or time.monotonic() < stop_at:
                if _SERVER_EXITING.is_set():  # a closed client cancels the stream itself
                    return
                try:
                    rows = await asyncio.to_thread(_changed, since)
                except SQLAlchemyError as exc:  # e.g. the sink has not created the model yet
                    log.warning("change feed: read model unavailable (%s)", type(exc).__name__)
                    rows = []
                for r in rows:
                    since = max(since, r["recorded_at"])
                    data = {"case_id": r["case_id"], "version": r["version"],
                            "status": r["status"]}
                    yield f"event: case\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
                quiet = 0.0 if rows else quiet + poll
                if quiet >= 15:  # a comment now and then keeps proxies from closing it
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(poll)

        def _changed(since: datetime) -> list[dict[str, Any]]:
            with engine.connect() as c:
                return queries.changed_cases(c, since)

        return StreamingResponse(feed(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    app.include_router(api)
    from onewindow.departments import load_registry

    app.include_router(build_router(protector=protector, calendar=calendar, now=now,
                                    registry=load_registry(settings.departments_file)))
    app.include_router(pages.router)
    app.mount("/static", pages.static_files(), name="static")
    _watch_server_exit()
    return app
