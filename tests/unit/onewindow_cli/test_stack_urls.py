"""What `onewindow up` prints (issue 16: `make run` omitted two metrics URLs): a page for
every process it started, each process's /metrics, on the ports of the settings. The
integration test in tests/integration/test_supervision.py fetches them on a real stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from onewindow.cli_options import MAX_LOCAL_WORKERS
from onewindow.config import Settings
from onewindow_cli.stack import service_urls, url_lines, worker_commands

CHILDREN = ["worker", "materials-worker", "sink", "counter", "gateway", "simulate"]


def test_every_started_process_has_its_metrics_url_on_its_port() -> None:
    s = Settings(counter_port=18000, gateway_port=18001, worker_web_port=16066,
                 materials_web_port=16067, sink_metrics_port=19102)
    urls = dict(service_urls(s, CHILDREN))
    assert urls == {
        "sign in": "http://127.0.0.1:18000/login",
        "counter screen": "http://127.0.0.1:18000/",
        "window board": "http://127.0.0.1:18000/board",
        "supervisor view": "http://127.0.0.1:18000/supervision",
        "progress lookup": "http://127.0.0.1:18000/lookup",
        "access log": "http://127.0.0.1:18000/audit",
        "API docs": "http://127.0.0.1:18000/docs",
        "ingest gateway": "http://127.0.0.1:18001/docs",
        "counter metrics": "http://127.0.0.1:18000/metrics",
        "gateway metrics": "http://127.0.0.1:18001/metrics",
        "worker metrics": "http://127.0.0.1:16066/metrics",
        "materials metrics": "http://127.0.0.1:16067/metrics",
        "sink metrics": "http://127.0.0.1:19102/metrics",
    }


def test_only_what_was_started_and_where_a_browser_reaches_it(tmp_path: Path) -> None:
    s = Settings(metrics_host="0.0.0.0", gateway_tls_cert_file=tmp_path / "c.pem",  # noqa: S104
                 gateway_tls_key_file=tmp_path / "k.pem")
    urls = dict(service_urls(s, ["sink", "gateway"]))
    assert urls == {"ingest gateway": "https://127.0.0.1:8001/docs",
                    "gateway metrics": "https://127.0.0.1:8001/metrics",
                    "sink metrics": "http://127.0.0.1:9102/metrics"}
    assert dict(service_urls(Settings(metrics_host="10.0.0.5"), ["worker"])) == {
        "worker metrics": "http://10.0.0.5:6066/metrics"}
    assert service_urls(Settings(), ["simulate"]) == []


@pytest.mark.parametrize("workers", [1, 2, MAX_LOCAL_WORKERS])
def test_every_url_starts_in_one_column(workers: int) -> None:
    """A newcomer's `up --workers 2` printed "materials 2 metrics" one column off: every
    label is padded to the longest one, the tail's too."""
    started = [name for name, _ in worker_commands(Settings(), workers)] + CHILDREN[2:]
    lines = url_lines(Settings(), started, [("simulated traffic", "300x"), ("logs", "var/")])
    assert len(lines) == 7 + 1 + 3 + 2 * workers + 2  # pages, gateway, metrics, tail
    # where each text starts: a URL, or the tail's texts (one word each)
    starts = {line.index("http") if "http" in line else line.rindex(" ") + 1
              for line in lines}
    assert len(starts) == 1, "\n".join(lines)
    assert any(f"materials {workers} metrics" in line for line in lines) == (workers > 1)
