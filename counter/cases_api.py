"""Cases in the read model: one case (its SLA status computed at read time), the list and
the progress lookup by applicant ID, the timeline, and the live change feed.

``GET /api/changes`` is a Server-Sent Events stream with no end of its own: a client that
goes away ends it (Starlette's ``StreamingResponse`` listens for ``http.disconnect``), and
so does the server's shutdown: uvicorn waits for open responses *before* it runs the
lifespan shutdown, for at most ``timeout_graceful_shutdown`` seconds (``onewindow
counter`` sets it), then cancels them. The browser's ``EventSource`` reconnects by itself
(``retry:``), to the restarted app.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from counter import present
from counter.auth import Auditor, require, still_signed_in
from counter.dependencies import (
    ERRORS,
    Calendar,
    Conn,
    Limit,
    Now,
    Offset,
    Protector,
    ReadModel,
    SearchLimits,
    paged,
)
from counter.limits import StreamSlots, spend_search
from counter.schemas import CaseList, CaseOut, ErrorOut, IdNumber, IdType, TimelineOut
from onewindow.domain.access import Permission, Principal
from onewindow.read_model import queries
from onewindow.staff.access_log import holder_target

__all__ = ["router"]

log = logging.getLogger("onewindow.counter")

router = APIRouter(prefix="/api", tags=["cases"], responses=ERRORS)

#: seconds without a change after which the feed sends a comment (keeps proxies from
#: closing an idle stream)
KEEP_ALIVE = 15.0

#: a signed-in user allowed to read cases (clerk, supervisor)
CaseReader = Annotated[Principal, Depends(require(Permission.READ_CASES))]


@router.get("/cases/{case_id}", response_model=CaseOut,
            summary="The case state, SLA status computed now")
def get_case(case_id: str, _who: CaseReader, audit: Auditor, c: Conn, now: Now,
             calendar: Calendar) -> dict[str, Any]:
    row = queries.get_case(c, case_id, tasks_limit=present.CASE_TASKS)
    audit("case.read", case_id, "ok" if row else "not_found")
    if row is None:
        raise HTTPException(404, f"case {case_id!r} is not in the read model")
    return present.case_out(row, now, calendar)


@router.get("/cases", response_model=CaseList,
            summary="Cases, newest first; the progress lookup by applicant ID")
def list_cases(who: CaseReader, audit: Auditor, limits: SearchLimits, c: Conn, now: Now,
               calendar: Calendar, protector: Protector,
               status: str | None = None, department: str | None = None,
               service_code: str | None = None,
               applicant_id_type: IdType | None = None,
               applicant_id_number: Annotated[IdNumber | None, Query()] = None,
               limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    applicant = None
    if applicant_id_number is not None:
        if applicant_id_type is None:
            raise RequestValidationError([{
                "loc": ("query", "applicant_id_type"), "type": "missing",
                "msg": "required with applicant_id_number"}])
        spend_search(limits, who, audit)
        applicant = (applicant_id_type, protector.hash(applicant_id_number))
    rows = queries.list_cases(c, status=status, department=department,
                              service_code=service_code, applicant=applicant,
                              limit=limit + 1, offset=offset, tasks_limit=present.LIST_TASKS)
    rows, nxt = paged(rows, limit, offset)
    if applicant is not None:
        audit("search", holder_target(*applicant), "ok" if rows else "not_found")
    else:
        filters = {"status": status, "department": department, "service_code": service_code}
        audit("cases.list", None, "ok", json.dumps({k: v for k, v in filters.items() if v}
                                                   | {"offset": offset, "rows": len(rows)}))
    return {"items": [present.case_out(r, now, calendar) for r in rows],
            "limit": limit, "offset": offset, "next_offset": nxt}


@router.get("/cases/{case_id}/timeline", response_model=TimelineOut,
            summary="The applied events of the case, by occurred_at")
def get_timeline(case_id: str, _who: CaseReader, audit: Auditor, c: Conn, limit: Limit = 100,
                 offset: Offset = 0) -> dict[str, Any]:
    rows = queries.timeline(c, case_id, limit=limit + 1, offset=offset)
    if not rows and not queries.case_exists(c, case_id):
        audit("case.timeline", case_id, "not_found")
        raise HTTPException(404, f"case {case_id!r} is not in the read model")
    audit("case.timeline", case_id)
    rows, nxt = paged(rows, limit, offset)
    return {"case_id": case_id, "items": [present.timeline_entry_out(r) for r in rows],
            "limit": limit, "offset": offset, "next_offset": nxt}


#: the change feed polls the read model at most this often (seconds)
MIN_POLL = 1.0
#: seconds between two checks that the feed's user is still signed in
RECHECK = 30.0


def _slots(request: Request) -> StreamSlots:
    return request.app.state.stream_slots  # type: ignore[no-any-return]


@router.get("/changes", response_class=StreamingResponse,
            responses={429: {"model": ErrorOut}},
            summary="Server-Sent Events: one `case` event per committed case change")
def changes(request: Request, who: CaseReader, audit: Auditor, engine: ReadModel, now: Now,
            slots: Annotated[StreamSlots, Depends(_slots)],
            poll: Annotated[float, Query(ge=MIN_POLL, le=10)] = 2.0,
            max_seconds: Annotated[float | None, Query(ge=0)] = None,
            since_seconds: Annotated[float, Query(ge=0, le=86400)] = 0.0
            ) -> StreamingResponse:
    """Open feeds are capped per user and in total (429 beyond), each polling at most
    once a second; a feed ends when its user's session or token no longer holds
    (checked every ``RECHECK`` seconds)."""
    if not slots.acquire(who.subject):
        audit("feed.open", None, "limited")
        raise HTTPException(429, "too many open change feeds; close another tab",
                            headers={"Retry-After": "10"})
    audit("feed.open", None)
    feed = _feed(engine, now - timedelta(seconds=since_seconds), poll, max_seconds,
                 lambda: slots.release(who.subject), lambda: still_signed_in(request))
    return StreamingResponse(feed, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


async def _feed(engine: Engine, since: datetime, poll: float, max_seconds: float | None,
                release: Callable[[], None], allowed: Callable[[], bool]
                ) -> AsyncIterator[str]:
    """The case rows committed after ``since``, polled every ``poll`` seconds; endless
    unless ``max_seconds`` is given (see the module doc for how it ends) or ``allowed``
    says no more; ``release`` runs when it ends, however."""
    try:
        async for chunk in _changes(engine, since, poll, max_seconds, allowed):
            yield chunk
    finally:
        release()


async def _changes(engine: Engine, since: datetime, poll: float, max_seconds: float | None,
                   allowed: Callable[[], bool]) -> AsyncIterator[str]:
    stop_at = None if max_seconds is None else time.monotonic() + max_seconds
    recheck_at = time.monotonic() + RECHECK
    # retry: how soon a browser's EventSource reconnects after the stream ends
    yield "retry: 1000\n: onewindow case changes\n\n"
    quiet = 0.0
    while stop_at is None or time.monotonic() < stop_at:
        if time.monotonic() >= recheck_at:
            recheck_at = time.monotonic() + RECHECK
            if not await asyncio.to_thread(allowed):
                yield "event: signed-out\ndata: {}\n\n"
                return
        try:
            rows = await asyncio.to_thread(_changed, engine, since)
        except SQLAlchemyError as exc:  # e.g. the sink has not created the model yet
            log.warning("change feed: read model unavailable (%s)", type(exc).__name__)
            rows = []
        for r in rows:
            since = max(since, r["recorded_at"])
            data = {"case_id": r["case_id"], "version": r["version"], "status": r["status"]}
            yield f"event: case\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        quiet = 0.0 if rows else quiet + poll
        if quiet >= KEEP_ALIVE:
            quiet = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(poll)


def _changed(engine: Engine, since: datetime) -> list[dict[str, Any]]:
    with engine.connect() as c:
        return queries.changed_cases(c, since)
