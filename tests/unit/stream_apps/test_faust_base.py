"""The web server every Faust app gets from stream_apps.faust_base: on the metrics host,
none of Faust's views (docs/privacy.md). The running workers are crawled in
tests/integration/test_http_no_plaintext_ids.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from onewindow.config import Settings
from stream_apps.faust_base import new_app


def test_faust_serves_no_view_of_its_own_and_binds_the_metrics_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust reads these from the environment and they would win over new_app's settings
    for name, value in {"WEB_BIND": "0.0.0.0", "WEB_HOST": "example.org",  # noqa: S104
                        "WEB_PORT": "1", "APP_WEB_TABLES_ENABLED": "true",
                        "APP_WEB_ROUTER_ENABLED": "true", "APP_WEB_STATS_ENABLED": "true",
                        "APP_WEB_GRAPH_ENABLED": "true", "APP_WEB_METRICS_ENABLED": "true",
                        "APP_DEBUG": "true"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT")
    app = new_app(settings, app_id="unit-web", worker_name="unit", web_port=16066,
                  batch_max=10)
    assert (app.conf.web_bind, app.conf.web_host, app.conf.web_port) == (
        settings.metrics_host, settings.metrics_host, 16066)
    assert not (app.conf.web_tables_enabled or app.conf.web_router_enabled
                or app.conf.web_stats_enabled or app.conf.web_graph_enabled
                or app.conf.web_metrics_enabled)
    # only the production index ({"status": "OK"}); the apps add /metrics with app.page
    app.web.init_server()
    assert {r.resource.canonical for r in app.web.web_app.router.routes()} == {"/"}
