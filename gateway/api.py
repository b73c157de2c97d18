"""The gateway's HTTP endpoints: ``POST /ingest/v1/events``, ``POST /ingest/v1/materials``,
``GET /healthz``, ``GET /metrics`` (docs/gateway.md is the integrator's guide).

``POST /ingest/v1/events`` goes, in this order: the credential (401 none or unknown, 403
revoked), the content type (415), the department's rate (429 when its bucket is empty),
the body as it streams in (413 over the limit), the batch (400 unreadable, 413 over 500
events), the department's rate for the batch's events (429), then the events
(``gateway.service``: 200 with an answer per event, or 503 when the broker did not
acknowledge in time). Nothing is sent before every refusal of the whole request.

``POST /ingest/v1/materials`` goes: the credential, the content type (415 unless
``multipart/form-data``), the department's rate (one event: 429), the ``Content-Length``
(413), then the body as it streams in (``gateway.uploads``: 400, 413 as soon as the file
passes its limit, 422 for the file or the metadata), then the one event through the same
path as a batch's (a per-event answer, the answer cache, 503). The socket's bytes are
gathered up to :data:`FEED_BYTES` and handed to a worker thread (parsing, hashing, the
spool file), so neither a large upload nor a slow disk holds up the event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import ClientDisconnect

from gateway import keys
from gateway.openapi import events_request_body, materials_request_body
from gateway.parsing import Batch, BodyError, RawEvent, body_kind, read_body
from gateway.publish import Unavailable
from gateway.uploads import (
    MAX_METADATA_BYTES,
    Upload,
    UploadError,
    UploadParser,
    material_event,
    multipart_boundary,
    prepare_upload_dir,
)
from onewindow.material_files import MaterialReceiver

__all__ = ["RETRY_AFTER_UNAVAILABLE", "ApiError", "JsonAnswer", "router"]

#: Retry-After of a 503 (seconds): the broker or the key store did not answer
RETRY_AFTER_UNAVAILABLE = 5
#: how long a /healthz answer is reused (a probe every second costs one broker call in 5 s)
HEALTH_TTL = 5.0
#: an upload's body beyond its file: the metadata part and the multipart framing
UPLOAD_OVERHEAD_BYTES = MAX_METADATA_BYTES + 64 * 1024
#: an upload's bytes gathered from the socket before a worker thread parses them (1 MiB)
FEED_BYTES = 1 << 20

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, scheme_name="department key",
                     description="A department's API key (`onewindow gateway-keys issue "
                                 "DEPT`): `Authorization: Bearer owg_...`")


class JsonAnswer(JSONResponse):
    """JSON as UTF-8; with ASCII escapes instead when a string cannot be UTF-8 (a lone
    surrogate a client sent inside JSON), so no answer fails to render."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, separators=(",", ":")).encode("ascii")


class ApiError(Exception):  # noqa: N818 - it is an answer
    """An error answer: ``{"error": code, "detail": detail}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


class ErrorBody(BaseModel):
    error: str = Field(description="a code: unauthenticated, forbidden, too_large, "
                                   "too_many_events, unsupported_media_type, "
                                   "too_many_requests, bad_request, unavailable ...")
    detail: str | list[Any] = Field(description="what is wrong, in words")


class EventAnswer(BaseModel):
    index: int = Field(description="the event's position in the request, from 0")
    line: int | None = Field(None, description="its line, from 1 (JSON lines only)")
    event_id: str | None = None
    status: Literal["accepted", "duplicate", "rejected"] = Field(
        description="accepted: in the department's topic (acknowledged by the broker); "
                    "duplicate: published before (earlier in this request, or by another "
                    "request), not again; rejected: not sent, see reason")
    reason: str | None = Field(None, description="for rejected: a reason code of "
                                                  "domain.md section 2")
    detail: str | None = Field(None, description="for rejected: the field and what is "
                                                  "wrong with it")


class IngestResult(BaseModel):
    department: str = Field(description="the caller's department (from its key)")
    accepted: int
    duplicate: int
    rejected: int
    results: list[EventAnswer]


class FileFacts(BaseModel):
    sha256: str = Field(description="64 lowercase hex of the file's bytes")
    size_bytes: int = Field(description="the file's size in bytes")
    pages: int = Field(description="a PDF's page count; 1 for an image")
    kind: str = Field(description="pdf, jpeg, png, gif, tiff, bmp or webp")


class MaterialResult(IngestResult):
    file: FileFacts = Field(description="what the gateway computed from the file (and put "
                                        "in the event); the file itself is not kept")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    kafka: Literal["ok", "unavailable"]
    keys: Literal["ok", "unavailable"]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("the body is not a JSON array, not UTF-8, or not JSON"),
    401: _error("no key, or a key the gateway does not know"),
    403: _error("a revoked key"),
    413: _error("the body is over the limit, or over 500 events"),
    415: _error("another content type than JSON or JSON lines"),
    429: _error("the department is over its rate: see Retry-After"),
    503: _error("the broker did not acknowledge in time: retry (see Retry-After); "
                     "nothing was reported accepted"),
}
MATERIAL_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    400: _error("not a readable multipart body; the part 'metadata' or 'file' missing, "
                "repeated or unknown; metadata that is not a JSON object"),
    413: _error("the file over ONEWINDOW_GATEWAY_MAX_FILE_BYTES, or the metadata over 1 MiB"),
    415: _error("another content type than multipart/form-data"),
    422: _error("invalid_file: empty, neither a PDF nor an image, or an unreadable PDF; "
                "invalid_metadata: another type than MaterialSubmitted, or a sha256, "
                "size_bytes or pages that differs from the file's"),
}


async def caller(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None,
                                        Depends(_bearer)]) -> keys.Authenticated:
    """The department of the key presented (401 none or unknown, 403 revoked)."""
    state = request.app.state
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthenticated",
                       "no department key: send 'Authorization: Bearer owg_...'", challenge)
    try:
        who = await asyncio.to_thread(keys.authenticate, state.engine,
                                      credentials.credentials, state.clock())
    except SQLAlchemyError as exc:
        raise ApiError(503, "unavailable", "the key store cannot be read",
                       {"Retry-After": str(RETRY_AFTER_UNAVAILABLE)}) from exc
    if who is None:
        raise ApiError(401, "unauthenticated", "unknown key", challenge)
    if who.revoked:
        raise ApiError(403, "forbidden", f"key {who.key_id} of {who.department} is revoked")
    if who.department not in state.registry.codes:
        raise ApiError(403, "forbidden", f"department {who.department} is not registered")
    request.state.department = who.department
    return who


Caller = Annotated[keys.Authenticated, Depends(caller)]


def _check_length(request: Request, limit: int) -> ApiError:
    """413 when the ``Content-Length`` is over ``limit`` (400 when it is no number); the
    413 to raise when the body turns out longer as it streams."""
    declared = request.headers.get("content-length")
    too_large = ApiError(413, "too_large", f"request body over {limit} bytes")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_large if declared.isdigit() else ApiError(
            400, "bad_request", "Content-Length is not a number")
    return too_large


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes (413 past it, as soon as it is known: by the
    ``Content-Length``, or as the chunks arrive)."""
    too_large = _check_length(request, limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect as exc:  # nobody to answer: no traceback either
        raise ApiError(400, "bad_request", "the client went away mid-body") from exc
    return b"".join(chunks)


def _over_rate(request: Request, department: str, wait: float) -> None:
    """429 when ``wait`` (seconds until the department's bucket covers the request)."""
    buckets = request.app.state.buckets
    if wait:
        raise ApiError(429, "too_many_requests",
                       f"department {department} is over its rate of "
                       f"{buckets.rate:g} events per second",
                       {"Retry-After": str(buckets.retry_after(wait))})


@router.post("/ingest/v1/events", response_model=IngestResult, responses=ERRORS,
             summary="Publish a batch of events (JSON array or JSON lines) as the caller's "
                     "department", tags=["ingest"],
             openapi_extra={"requestBody": events_request_body()})
async def ingest_events(request: Request, who: Caller) -> JsonAnswer:
    """Up to 500 events in the JSON form. Each is answered `accepted`, `duplicate` or
    `rejected` (with the reason code of domain.md section 2 and the field); the answer
    comes once the broker has acknowledged every accepted event. Sending the same request
    again gives the same answers and publishes nothing twice."""
    state = request.app.state
    department = who.department
    try:
        kind = body_kind(request.headers.get("content-type"))
    except BodyError as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from exc
    _over_rate(request, department, state.buckets.wait_for(department, 1))  # empty: no read
    body = await _read_body(request, state.settings.gateway_max_body_bytes)
    state.metrics.received_bytes.labels(department).inc(len(body))
    try:
        batch = read_body(body, kind)
    except BodyError as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from exc
    _over_rate(request, department, state.buckets.take(department, max(1, batch.count)))
    return JsonAnswer(await _answers(request, department, batch))


async def _answers(request: Request, department: str, events: Batch | list[RawEvent]
                   ) -> dict[str, Any]:
    """The events published (``gateway.service``) and the body of the answer: the
    department, the counts and one answer per event; 503 when the broker did not
    acknowledge in time."""
    state = request.app.state
    try:
        answers = await state.ingest.ingest(department, events)
    except Unavailable as exc:
        state.metrics.unavailable.labels(department).inc()
        raise ApiError(503, "unavailable", f"{exc}; nothing in this request was reported "
                       "accepted: send it again", {"Retry-After": str(RETRY_AFTER_UNAVAILABLE)}
                       ) from exc
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for a in answers:
        counts[a.status] += 1
    return {"department": department, **counts, "results": [a.to_json() for a in answers]}


@router.post("/ingest/v1/materials", response_model=MaterialResult, responses=MATERIAL_ERRORS,
             summary="Upload one material (a scan or a PDF) with its MaterialSubmitted "
                     "metadata; the gateway computes sha256, size_bytes and pages",
             tags=["ingest"], openapi_extra={"requestBody": materials_request_body()})
async def ingest_material(request: Request, who: Caller) -> JsonAnswer:
    """`multipart/form-data` with the parts `metadata` (the MaterialSubmitted in the JSON
    form, without `sha256`, `size_bytes` and `pages`) and `file` (a scan or a PDF, up to
    the file limit). The file is measured as it streams in and not kept; the event is
    answered like one of a batch (`accepted`, `duplicate` or `rejected` with its reason),
    once the broker has acknowledged it. Sending the same upload again (the same event id)
    gives the same answer and publishes nothing twice."""
    state = request.app.state
    department = who.department
    try:
        boundary = multipart_boundary(request.headers.get("content-type"))
    except UploadError as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from exc
    _over_rate(request, department, state.buckets.take(department, 1))
    max_file = state.settings.gateway_max_file_bytes
    too_large = _check_length(request, max_file + UPLOAD_OVERHEAD_BYTES)
    receiver = MaterialReceiver(_upload_dir(state))
    try:
        upload = await _receive(request, UploadParser(boundary, receiver,
                                                      max_file_bytes=max_file),
                                max_file + UPLOAD_OVERHEAD_BYTES, too_large, department)
    finally:
        receiver.close()  # the spooled PDF, if any: the file is never kept
    try:
        raw = material_event(upload)
    except UploadError as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from exc
    body = await _answers(request, department, [raw])
    return JsonAnswer({**body, "file": upload.facts.as_dict()})


def _upload_dir(state: Any) -> Any:
    """The upload directory (``<data dir>/gateway-uploads``), made on the first upload."""
    path = getattr(state, "upload_dir", None)
    if path is None:
        path = state.upload_dir = prepare_upload_dir(state.settings.data_dir /
                                                     "gateway-uploads")
    return path


async def _receive(request: Request, parser: UploadParser, limit: int, too_large: ApiError,
                   department: str) -> Upload:
    """The upload's body through ``parser`` as it streams in (at most ``limit`` bytes),
    :data:`FEED_BYTES` at a time in a worker thread; the parts checked and the file
    measured at the end."""
    pending: list[bytes] = []
    pending_bytes = size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            pending.append(chunk)
            pending_bytes += len(chunk)
            if pending_bytes >= FEED_BYTES:
                await asyncio.to_thread(_feed, parser, pending)
                pending, pending_bytes = [], 0
        await asyncio.to_thread(_feed, parser, pending)
        return await asyncio.to_thread(parser.finish)
    except UploadError as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from exc
    except ClientDisconnect as exc:
        raise ApiError(400, "bad_request", "the client went away mid-body") from exc
    finally:
        request.app.state.metrics.received_bytes.labels(department).inc(size)


def _feed(parser: UploadParser, chunks: list[bytes]) -> None:
    for chunk in chunks:
        parser.write(chunk)


@router.get("/healthz", response_model=Health, tags=["ops"],
            responses={503: {"model": Health, "description": "the broker or the key store "
                                                             "does not answer"}},
            summary="200 when the broker and the key store answer (public)")
async def healthz(request: Request) -> JsonAnswer:
    state = request.app.state
    cached = getattr(state, "health", None)
    if cached is None or time.monotonic() - cached[0] > HEALTH_TTL:
        kafka_error, keys_ok = await asyncio.gather(
            asyncio.to_thread(state.ingest.publisher.check, 3.0),
            asyncio.to_thread(_keys_readable, state.engine))
        body = {"kafka": "ok" if kafka_error is None else "unavailable",
                "keys": "ok" if keys_ok else "unavailable"}
        body["status"] = "ok" if body["kafka"] == body["keys"] == "ok" else "unavailable"
        cached = state.health = (time.monotonic(), body)
    body = cached[1]
    return JsonAnswer(body, status_code=200 if body["status"] == "ok" else 503)


def _keys_readable(engine: Any) -> bool:
    try:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


@router.get("/metrics", tags=["ops"], summary="Prometheus text format",
            response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "the metrics"}})
async def metrics(request: Request) -> Response:
    state = request.app.state
    state.metrics.remembered.set(len(state.ingest.cache))
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
