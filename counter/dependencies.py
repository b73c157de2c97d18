"""What every router of the counter app shares: the read-only connection of a request,
its paging parameters and the documented error responses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy import Connection

from counter.schemas import ErrorOut


def _conn(request: Request) -> Iterator[Connection]:
    """A read-only connection for one request."""
    with request.app.state.engine.connect() as c:
        yield c


Conn = Annotated[Connection, Depends(_conn)]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, description="rows to skip")]
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}, 422: {"model": ErrorOut}}
