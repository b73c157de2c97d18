"""What operations read: ``/healthz`` (200 when the read model can be read, 503 JSON
otherwise), ``/metrics`` (Prometheus text format) and ``/api/dead-letters`` (the input
records that were not applied, newest first)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from counter import present
from counter.dependencies import ERRORS, Conn, Limit, Metrics, Offset, ReadModel, paged
from counter.schemas import DeadLetterList
from onewindow.read_model import queries

__all__ = ["router"]

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="200 when the read model can be read")
def healthz(engine: ReadModel) -> JSONResponse:
    try:
        with engine.connect() as c:
            queries.ping(c)
    except Exception as exc:  # noqa: BLE001 - any failure is "unavailable"
        return JSONResponse({"status": "unavailable", "error": type(exc).__name__},
                            status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics", summary="Prometheus text format")
def prometheus(metrics: Metrics) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/dead-letters", response_model=DeadLetterList, responses=ERRORS,
            summary="Input records that were not applied, newest first")
def dead_letters(c: Conn, reason: str | None = None, department: str | None = None,
                 limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    rows = queries.list_dead_letters(c, reason=reason, department=department,
                                     limit=limit + 1, offset=offset)
    rows, nxt = paged(rows, limit, offset)
    return {"items": [present.dead_letter_out(d) for d in rows],
            "limit": limit, "offset": offset, "next_offset": nxt}
