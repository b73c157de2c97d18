"""The pages of the counter app: the counter screen (``/``, clerk), its window board
(``/board``, supervisor), the supervisor view (``/supervision``, supervisor: charts drawn
by Apache ECharts, vendored into ``static/vendor/echarts/``, docs/supervisor.md), the
access log (``/audit``, auditor), the sign-in page
(``/login``) and the citizen's progress lookup (``/lookup``); the last two are public.
A browser without a session that asks for a staff page is sent to ``/login`` (``app.py``).

Plain HTML, CSS and JavaScript modules from ``counter/static/`` (package data), served by
the app itself: no build step, no CDN, nothing fetched from elsewhere. The pages read the
JSON API (``counter.screen_api``) and follow ``GET /api/changes`` (Server-Sent Events).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from counter.auth import require
from onewindow.domain.access import Permission, Principal

__all__ = ["STATIC", "router", "static_files"]

STATIC = Path(__file__).resolve().parent / "static"

_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

#: the headers of every HTML page: no caching of what a signed-in user saw, no framing,
#: no inline script, nothing from elsewhere
PAGE_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": _CSP,
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY"}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8",
                        headers=PAGE_HEADERS)


@router.get("/")
def counter_screen(
        _who: Annotated[Principal, Depends(require(Permission.READ_CASES))]) -> FileResponse:
    """办件查询: search a case by number or applicant ID, the live case card."""
    return _page("index.html")


@router.get("/board")
def window_board(
        _who: Annotated[Principal, Depends(require(Permission.READ_BOARD))]) -> FileResponse:
    """窗口看板: the same page, opened on the window board."""
    return _page("index.html")


@router.get("/supervision")
def supervisor_view(
        _who: Annotated[Principal, Depends(require(Permission.READ_BOARD))]) -> FileResponse:
    """主管视图: the supervisor's charts over ``/api/supervision/*``."""
    return _page("supervision.html")


@router.get("/audit")
def access_log_page(
        _who: Annotated[Principal, Depends(require(Permission.READ_ACCESS_LOG))]
) -> FileResponse:
    """访问日志: the auditor's page over ``/api/access-log``."""
    return _page("audit.html")


@router.get("/login")
def login_page() -> FileResponse:
    """登录: user name and password, or the city's identity provider."""
    return _page("login.html")


@router.get("/lookup")
def progress_lookup() -> FileResponse:
    """办件进度查询: the citizen's page (case number + the receipt's query code)."""
    return _page("lookup.html")


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)
