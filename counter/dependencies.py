"""What every router of the counter app shares: the parts ``create_app`` keeps on
``app.state`` (read model, calendar, clock, ID protector, department registry,
metrics), the read-only connection of a request, its paging parameters and the
documented error responses."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import BeforeValidator
from sqlalchemy import Connection, Engine

from counter.limits import Limits
from counter.metrics import CounterMetrics
from counter.schemas import ErrorOut
from onewindow.departments import Registry
from onewindow.domain.calendar import WorkingCalendar
from onewindow.security.id_protection import IdProtector

__all__ = ["ERRORS", "Calendar", "Conn", "Departments", "IsoDay", "Limit", "Metrics", "Now",
           "Offset", "Protector", "ReadModel", "SearchLimits", "paged"]


def _conn(request: Request) -> Iterator[Connection]:
    """A read-only connection for one request."""
    with request.app.state.engine.connect() as c:
        yield c


async def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


async def _now(request: Request) -> datetime:
    """The time of this request, from the app's clock (tests set it)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


async def _calendar(request: Request) -> WorkingCalendar:
    return request.app.state.calendar  # type: ignore[no-any-return]


async def _protector(request: Request) -> IdProtector:
    return request.app.state.protector  # type: ignore[no-any-return]


async def _departments(request: Request) -> Registry:
    return request.app.state.departments  # type: ignore[no-any-return]


async def _limits(request: Request) -> Limits:
    return request.app.state.limits  # type: ignore[no-any-return]


async def _metrics(request: Request) -> CounterMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


Conn = Annotated[Connection, Depends(_conn)]
#: the engine itself, for what opens its own connections (health check, change feed)
ReadModel = Annotated[Engine, Depends(_engine)]
Now = Annotated[datetime, Depends(_now)]
Calendar = Annotated[WorkingCalendar, Depends(_calendar)]
Protector = Annotated[IdProtector, Depends(_protector)]
Departments = Annotated[Registry, Depends(_departments)]
Metrics = Annotated[CounterMetrics, Depends(_metrics)]
#: the request limits (searches by ID number, lookups)
SearchLimits = Annotated[Limits, Depends(_limits)]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
#: bounded: a larger offset is a 422, never a database error (SQLite's integers are 64-bit)
MAX_OFFSET = 10_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}, 422: {"model": ErrorOut}}

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _only_iso_day(value: Any) -> Any:
    """A day in a query is ``YYYY-MM-DD`` and nothing else: pydantic's lax ``date`` also
    takes ``2026-11-01T00:00``, ``2026-11-01 00:00Z`` and a Unix time at midnight UTC
    (``1740960000``), which a user who typed them did not mean as a day."""
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("a day is written YYYY-MM-DD (2026-11-01)")
    return value


#: a day parameter: an ISO date ``YYYY-MM-DD`` (a real one: 2026-02-30 is refused too);
#: anything else is a 422 naming the parameter
IsoDay = Annotated[date, BeforeValidator(_only_iso_day)]


def paged(items: list[Any], limit: int, offset: int) -> tuple[list[Any], int | None]:
    """``items`` fetched with ``limit + 1``: the page and the next offset (or None)."""
    if len(items) > limit:
        return items[:limit], offset + limit
    return items, None
