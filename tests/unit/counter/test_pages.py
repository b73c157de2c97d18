"""The pages and their assets (counter.pages, counter/static/): served by the app, nothing
from elsewhere."""

from __future__ import annotations

import re

from counter.pages import STATIC


def test_pages_and_assets_are_served_by_the_app(client) -> None:
    for path, marker in (("/", "counter.js"), ("/board", "counter.js"),
                         ("/lookup", "lookup.js")):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert marker in r.text and 'name="viewport"' in r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
    for name in ("counter.js", "lookup.js", "common.js", "i18n.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200, name
    assert "javascript" in client.get("/static/counter.js").headers["content-type"]
    assert client.get("/static/nope.js").status_code == 404
    assert "/" not in client.get("/openapi.json").json()["paths"]
    deps = {d["code"]: d for d in client.get("/api/departments").json()}
    assert deps["scjgj"]["name"] == "市场监督管理局"


def test_no_external_assets() -> None:
    """No CDN, no font or script from elsewhere: every URL in the pages is the app's own.
    (``static/vendor/``: third-party files as published, pinned by their hashes,
    tests/unit/ops/test_vendor_echarts.py; the browser tests refuse any other host.)"""
    for f in STATIC.iterdir():
        if f.is_dir():
            assert f.name == "vendor", f
            continue
        text = f.read_text("utf-8")
        assert not re.search(r"https?://|//cdn|@import", text), f.name
        if f.suffix == ".html":
            for url in re.findall(r'(?:src|href)="([^"]+)"', text):
                assert url.startswith("/") or url.startswith("data:"), (f.name, url)
