"""The HTTP ingestion gateway: department systems without a Kafka client publish their
events over HTTPS (interfaces.md, "HTTP ingestion gateway"; docs/gateway.md).

``create_app(settings)`` is the composition root of the gateway process: the key store
(``gateway.keys``, migrated on start), the department registry, the codec, the producer
signed in as ``svc-gateway`` (``gateway.publish``), the answer cache and the ingestion
service (``gateway.service``), the per-department rate (``gateway.ratelimit``) and the
metrics, all on ``app.state``; the routes are ``gateway.api``'s. ``/docs`` is Swagger UI
from the fastapi-offline package's assets (``/static-docs``) and ``gateway/static/``: no
CDN, as the counter serves its own.

Every error is a JSON body ``{"error", "detail"}`` (a refusal of the whole request; the
events' own answers are in the 200 body). The gateway logs method, route, status,
department and counts, never a body (events carry ID numbers).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import api, key_migrations
from gateway.answers import AnswerCache
from gateway.checking import settle_gc
from gateway.metrics import GatewayMetrics
from gateway.openapi import event_schemas, material_schemas
from gateway.publish import KafkaPublisher
from gateway.ratelimit import TokenBuckets
from gateway.service import IngestService
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.observability import instrument
from onewindow.read_model.engine import make_engine
from onewindow.security.kafka_auth import GATEWAY, producer_config
from onewindow.topics import Topics
from onewindow.uscc_exceptions import load_uscc_exceptions

__all__ = ["create_app"]

log = logging.getLogger("onewindow.gateway")

STATIC = Path(__file__).resolve().parent / "static"
SWAGGER_UI = Path(fastapi_offline.__file__).resolve().parent / "static"
_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_ERROR_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden",
                404: "not_found", 405: "method_not_allowed", 413: "too_large",
                415: "unsupported_media_type", 429: "too_many_requests", 503: "unavailable"}
#: how long the gateway waits on stop for what the producer still holds
CLOSE_SECONDS = 10.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, engine: Engine | None = None,
               publisher: KafkaPublisher | None = None,
               clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The gateway app. ``engine`` (the key store), ``publisher`` and ``clock`` replace
    what the settings would build (tests)."""
    engine = engine or make_engine(settings.database_url, writer=True)
    key_migrations.upgrade(engine)
    registry = load_registry(settings.departments_file)
    codec = get_codec()
    metrics = GatewayMetrics()
    instrument(metrics.registry)  # build info, process metrics
    clock = clock or _utc_now
    publisher = publisher or KafkaPublisher(producer_config(settings, GATEWAY))

    app = FastAPI(title="onewindow ingestion gateway",
                  description="Department systems publish their events (the JSON form of "
                              "interfaces.md) over HTTPS, authenticated by a department "
                              "key. 部门系统通过 HTTPS 以部门密钥上报事件（JSON 形式）。"
                              " Guide: docs/gateway.md.",
                  version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=_lifespan, default_response_class=api.JsonAnswer)
    app.state.settings = settings
    app.state.engine = engine
    app.state.registry = registry
    app.state.clock = clock
    app.state.metrics = metrics
    app.state.buckets = TokenBuckets(settings.gateway_events_per_second,
                                     settings.gateway_burst_events)
    app.state.ingest = IngestService(
        publisher=publisher, topics=Topics(settings.topic_prefix), registry=registry,
        codec=codec, cache=AnswerCache(settings.gateway_answer_cache_size,
                                       settings.gateway_answer_cache_seconds),
        ack_timeout=settings.gateway_ack_timeout_seconds, clock=clock, metrics=metrics,
        uscc_exceptions=load_uscc_exceptions(settings.uscc_exceptions_file),
        check_processes=settings.gateway_check_processes)

    app.add_exception_handler(api.ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(SQLAlchemyError, _store_down)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _bug)
    app.add_middleware(_Observe)
    app.include_router(api.router)
    _docs(app, codec)
    app.mount("/static-docs", StaticFiles(directory=SWAGGER_UI), name="static-docs")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the producer's acknowledgement thread and the checking processes; on stop,
    give what the producer holds ``CLOSE_SECONDS`` to be delivered."""
    publisher: KafkaPublisher = app.state.ingest.publisher
    publisher.start()
    app.state.ingest.checker.start()
    settle_gc()  # the start's objects out of the collector's way (gateway.checking)
    try:
        yield
    finally:
        await asyncio.to_thread(app.state.ingest.checker.close)
        left = await asyncio.to_thread(publisher.close, CLOSE_SECONDS)
        if left:
            log.warning("gateway stopped with %d records unacknowledged", left)
        app.state.engine.dispose()


def _docs(app: FastAPI, codec: Any) -> None:
    """``/openapi.json`` (with the events' JSON Schemas) and ``/docs``, public: they
    describe the API, never data."""
    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            doc.setdefault("components", {}).setdefault("schemas", {}).update(
                {**event_schemas(codec), **material_schemas(codec)})
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(document())

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html", media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": _CSP})


def _body(code: str, detail: Any, status: int,
          headers: dict[str, str] | None = None) -> JSONResponse:
    return api.JsonAnswer({"error": code, "detail": detail}, status_code=status,
                          headers=headers)


async def _api_error(_request: Request, exc: api.ApiError) -> Response:
    return _body(exc.code, exc.detail, exc.status, exc.headers)


async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
    code = _ERROR_CODES.get(exc.status_code, "error")
    return _body(code, str(exc.detail), exc.status_code, getattr(exc, "headers", None))


async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
    # never echo the input back: it may hold an ID number
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
              for e in exc.errors()]
    return _body("invalid_request", detail, 422)


async def _store_down(_request: Request, exc: SQLAlchemyError) -> Response:
    log.error("key store: %s", type(exc).__name__)
    return _body("unavailable", "the key store cannot be read", 503,
                 {"Retry-After": str(api.RETRY_AFTER_UNAVAILABLE)})


async def _bug(request: Request, exc: Exception) -> Response:
    """A fault of ours: logged with its traceback, answered as JSON like every error."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _body("internal", "the gateway failed on this request; nothing in it was "
                             "reported accepted", 500)


class _Observe:
    """Count and time every request (route template, department, status); log them; the
    headers every answer carries. Plain ASGI rather than ``@app.middleware("http")``:
    Starlette's ``BaseHTTPMiddleware`` runs the app in a task of its own and streams the
    answer through a memory channel, the largest cost of a one-event request
    (docs/benchmarks.md, "The ingestion gateway")."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500  # an exception our handlers did not answer: ServerErrorMiddleware's
        cacheable = scope["path"].startswith(("/static-docs/", "/static/"))

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                h = MutableHeaders(scope=message)
                h.setdefault("X-Content-Type-Options", "nosniff")
                h.setdefault("X-Frame-Options", "DENY")
                h.setdefault("Referrer-Policy", "no-referrer")
                if not cacheable:
                    h.setdefault("Cache-Control", "no-store")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            metrics: GatewayMetrics = scope["app"].state.metrics
            route = getattr(scope.get("route"), "path", "other")
            department = scope.get("state", {}).get("department", "-")
            if route == "/ingest/v1/events":
                metrics.requests.labels(department, str(status)).inc()
            elif route == "/ingest/v1/materials":
                metrics.uploads.labels(department, str(status)).inc()
            metrics.request_seconds.labels(route).observe(time.perf_counter() - t0)
            log.info("%s %s %d %s", scope["method"], route, status, department)
