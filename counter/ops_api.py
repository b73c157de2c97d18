"""What operations read: ``/healthz`` (public: 200 when the read model can be read, 503
otherwise, no detail), ``/api/health`` (ops: the same with the reason), ``/metrics``
(ops: Prometheus text format; Prometheus scrapes with an API token) and
``/api/dead-letters`` (supervisor, ops: the input records that were not applied)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine

from counter import present
from counter.auth import Auditor, require
from counter.dependencies import ERRORS, Conn, Limit, Metrics, Offset, ReadModel, paged
from counter.schemas import DeadLetterList
from onewindow.domain.access import Permission, Principal
from onewindow.read_model import queries

__all__ = ["router"]

router = APIRouter(tags=["ops"])


OpsReader = Annotated[Principal, Depends(require(Permission.READ_METRICS))]
DeadLetterReader = Annotated[Principal, Depends(require(Permission.READ_DEAD_LETTERS))]


def _health(engine: Engine) -> tuple[int, str | None]:
    try:
        with engine.connect() as c:
            queries.ping(c)
    except Exception as exc:  # noqa: BLE001 - any failure is "unavailable"
        return 503, type(exc).__name__
    return 200, None


@router.get("/healthz", summary="200 when the read model can be read (public, no detail)")
def healthz(engine: ReadModel) -> JSONResponse:
    status, _error = _health(engine)
    return JSONResponse({"status": "ok" if status == 200 else "unavailable"},
                        status_code=status)


@router.get("/api/health", summary="Health with the reason of a failure (ops)",
            responses=ERRORS)
def health_details(_who: OpsReader, engine: ReadModel) -> JSONResponse:
    status, error = _health(engine)
    return JSONResponse({"status": "ok" if status == 200 else "unavailable",
                         "read_model": "ok" if error is None else error},
                        status_code=status)


@router.get("/metrics", summary="Prometheus text format (ops)", responses=ERRORS)
def prometheus(_who: OpsReader, metrics: Metrics) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/dead-letters", response_model=DeadLetterList, responses=ERRORS,
            summary="Input records that were not applied, newest first")
def dead_letters(_who: DeadLetterReader, audit: Auditor, c: Conn, reason: str | None = None,
                 department: str | None = None, limit: Limit = 50,
                 offset: Offset = 0) -> dict[str, Any]:
    rows = queries.list_dead_letters(c, reason=reason, department=department,
                                     limit=limit + 1, offset=offset)
    rows, nxt = paged(rows, limit, offset)
    audit("dead_letters.read", department or reason, "ok", f"{len(rows)} records")
    return {"items": [present.dead_letter_out(d) for d in rows],
            "limit": limit, "offset": offset, "next_offset": nxt}
