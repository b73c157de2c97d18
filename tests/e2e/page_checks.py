"""What a browser test checks of a page besides its content: the fonts Chromium drew its
Chinese text with (Chrome DevTools Protocol ``CSS.getPlatformFontsForNode``, compared with
the families fontconfig says cover Chinese), that it asked nothing of another host (every
other request is aborted, as on a machine without Internet, and recorded), and the
operations Swagger UI lists at ``/docs``."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from playwright.sync_api import BrowserContext, Page, Route

#: the methods of an OpenAPI path item that are operations
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def cjk_families() -> set[str]:
    """Every font family fontconfig knows that covers Chinese (``fc-list :lang=zh
    family``; a family's names in several languages each count)."""
    exe = shutil.which("fc-list")
    assert exe, "fc-list is missing: apt-get install fontconfig (ops/install-system-deps.sh)"
    out = subprocess.run([exe, ":lang=zh", "family"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return {name.strip() for line in out.splitlines() for name in line.split(",")
            if name.strip()}


def platform_fonts(context: BrowserContext, page: Page, selector: str) -> dict[str, int]:
    """Family -> glyphs Chromium drew with it, for the text of the element ``selector``
    (its own text nodes): the fonts of the platform it used, fallbacks included."""
    cdp = context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, f"no element {selector}"
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        cdp.detach()
    used: dict[str, int] = {}
    for f in fonts:
        used[f["familyName"]] = used.get(f["familyName"], 0) + int(f["glyphCount"])
    return used


def only_from(context: BrowserContext, base: str) -> list[str]:
    """Let ``context`` load only from ``base`` (the app under test): any other request is
    aborted as if the machine were offline. Returns the list the refused URLs are added
    to."""
    refused: list[str] = []

    def route(r: Route) -> None:
        url = r.request.url
        if url == base or url.startswith(base + "/"):
            r.continue_()
        else:
            refused.append(url)
            r.abort("internetdisconnected")

    context.route("**/*", route)
    return refused


def spec_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation of an OpenAPI document."""
    return {(method.upper(), path) for path, item in spec["paths"].items()
            for method in item if method in HTTP_METHODS}


def listed_operations(page: Page, timeout: float = 30_000) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation Swagger UI lists on ``page`` (once it has drawn
    them)."""
    page.locator(".opblock .opblock-summary-method").first.wait_for(timeout=timeout)
    return {(row[0].strip().upper(), row[1]) for row in page.eval_on_selector_all(
        ".opblock",
        """els => els.map(e => [e.querySelector('.opblock-summary-method').textContent,
                                e.querySelector('.opblock-summary-path').dataset.path])""")}
