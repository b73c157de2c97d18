"""A read model that is not there yet is a 503, not a 500.

The counter reads tables the sink creates (its Alembic migration runs when `onewindow
sink` starts). A counter started first, or a database still starting, made every route
that reads the model a plain 500. When a database error reaches the app, this handler
asks the database what it lacks (``onewindow.read_model.queries.missing_schema``):

- tables or columns missing (the migration has not run, or the sink's code is older than
  the counter's): **503**, ``{"error": "not_ready", "detail": ...}``, ``Retry-After: 5``;
- the database does not answer even that: **503** ``{"error": "unavailable"}``, the same
  header;
- the model complete: the error was something else, a **500** as before (logged with its
  traceback by the server).

A browser asking for a page (a ``GET`` accepting ``text/html``: the receipt) gets a short
page saying the same in Chinese and English, which reloads itself after the
``Retry-After``. docs/operations.md, *Health*.
"""

from __future__ import annotations

import asyncio
import html
import logging

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from onewindow.read_model import queries

__all__ = ["RETRY_AFTER_SECONDS", "database_error"]

#: what a client is told to wait before asking again (seconds)
RETRY_AFTER_SECONDS = 5

log = logging.getLogger("onewindow.counter")

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{retry}">
<title>暂不可用 · Not available yet</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body><main>
<h1>数据尚未就绪，请稍候</h1>
<p>{zh}本页将在 {retry} 秒后自动刷新。</p>
<h1 lang="en">Not available yet</h1>
<p lang="en">{en} This page reloads itself in {retry} seconds.</p>
</main></body></html>
"""

_TEXTS = {
    "not_ready": ("办件数据库尚未建好（数据同步服务启动后即会建立）。",
                  "The read model is not ready: its tables are not created yet (the sink "
                  "creates them when it starts)."),
    "unavailable": ("办件数据库暂时无法连接。", "The read model's database does not answer."),
}


def _gaps(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return queries.missing_schema(conn)


async def database_error(request: Request, exc: DBAPIError) -> Response:
    """The app's handler of SQLAlchemy's ``DBAPIError`` (module doc); re-raises ``exc``
    when the model is complete."""
    try:
        gaps = await asyncio.to_thread(_gaps, request.app.state.engine)
    except DBAPIError as again:
        code = "unavailable"
        log.warning("read model unavailable: %s", type(again.orig or again).__name__)
    else:
        if not gaps:
            raise exc
        code = "not_ready"
        log.warning("read model not ready: %d tables or columns missing (%s); is the sink "
                    "running?", len(gaps), ", ".join(gaps[:5]))
    zh, en = _TEXTS[code]
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        page = _PAGE.format(retry=RETRY_AFTER_SECONDS, zh=html.escape(zh), en=html.escape(en))
        return HTMLResponse(page, status_code=503, headers=headers)
    return JSONResponse({"error": code, "detail": en}, status_code=503, headers=headers)
