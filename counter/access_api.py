"""The access log for auditors: ``GET /api/access-log`` (filters in the query) and
``POST /api/access-log/query`` (the same, and "who read this holder's documents?" with
the holder's ID number in the body, hashed with the app's key before it reaches SQL).

Read-only: the app has no route that changes or deletes a row (the database refuses
both, too). Reading the log is itself logged (action ``access_log.read``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import Engine

from counter.auth import Auditor, require
from counter.dependencies import ERRORS, Limit, Offset, Protector, paged
from counter.present import ts
from counter.schemas import AccessLogList, AccessLogQuery, Instant
from onewindow.domain.access import Permission, Principal
from onewindow.staff import access_log

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["access log"], responses=ERRORS)

Auditing = Annotated[Principal, Depends(require(Permission.READ_ACCESS_LOG))]


def _engine(request: Request) -> Engine:
    return request.app.state.staff.engine  # type: ignore[no-any-return]


def _page(engine: Engine, q: AccessLogQuery, target: str | list[str] | None
          ) -> dict[str, Any]:
    with engine.connect() as c:
        rows = access_log.query(c, since=q.since, until=q.until, subject=q.user,
                                action=q.action, target=target, limit=q.limit + 1,
                                offset=q.offset)
    rows, nxt = paged(rows, q.limit, q.offset)
    return {"items": [{**r, "at": ts(r["at"]), "roles": [x for x in r["roles"].split(",") if x]}
                      for r in rows],
            "limit": q.limit, "offset": q.offset, "next_offset": nxt}


@router.get("/access-log", response_model=AccessLogList,
            summary="The access log, newest first (auditor)")
def get_access_log(_who: Auditing, audit: Auditor, engine: Annotated[Engine, Depends(_engine)],
                   since: Instant | None = None, until: Instant | None = None,
                   user: Annotated[str | None, Query(max_length=256)] = None,
                   action: Annotated[str | None, Query(max_length=64)] = None,
                   target: Annotated[str | None, Query(max_length=512)] = None,
                   limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    try:  # the body's model, built here: its refusal is the query's 422, not a 500
        q = AccessLogQuery(since=since, until=until, user=user, action=action, target=target,
                           limit=limit, offset=offset)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    audit("access_log.read", target or user or action)
    return _page(engine, q, q.target)


@router.post("/access-log/query", response_model=AccessLogList,
             summary="The access log filtered in the body; a holder's ID number is hashed")
def query_access_log(q: AccessLogQuery, _who: Auditing, audit: Auditor, protector: Protector,
                     engine: Annotated[Engine, Depends(_engine)]) -> dict[str, Any]:
    if q.holder is not None:
        targets = access_log.holder_targets(q.holder.id_type, protector.hash(q.holder.id_number))
        audit("access_log.read", targets[0])
        return _page(engine, q, targets)
    audit("access_log.read", q.target or q.user or q.action)
    return _page(engine, q, q.target)
