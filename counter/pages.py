"""The pages of the counter app: the counter screen (``/``, its window board at
``/board``) and the citizen's progress lookup (``/lookup``).

Plain HTML, CSS and JavaScript modules from ``counter/static/`` (package data), served by
the app itself: no build step, no CDN, nothing fetched from elsewhere. The pages read the
JSON API (``counter.screen_api``) and follow ``GET /api/changes`` (Server-Sent Events).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC", "router", "static_files"]

STATIC = Path(__file__).resolve().parent / "static"

#: HTML is re-read on every visit (the assets it names are small and versioned with it)
_NO_CACHE = {"Cache-Control": "no-cache"}
_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8",
                        headers=_NO_CACHE | {"Content-Security-Policy": _CSP,
                                             "X-Content-Type-Options": "nosniff",
                                             "Referrer-Policy": "no-referrer"})


@router.get("/")
def counter_screen() -> FileResponse:
    """办件查询: search a case by number or applicant ID, the live case card."""
    return _page("index.html")


@router.get("/board")
def window_board() -> FileResponse:
    """窗口看板: the same page, opened on the window board."""
    return _page("index.html")


@router.get("/lookup")
def progress_lookup() -> FileResponse:
    """办件进度查询: the citizen's page (case number + last four characters of the ID)."""
    return _page("lookup.html")


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)
