"""Helpers of the ops integration tests: a worker on a known /metrics port, reading it."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from onewindow.topics import Topics
from tests.integration.streams import worker_env


def start_worker_on(kafka: str, topics: Topics, data_dir: Path, web_port: int,
                    name: str = "w1", command: str = "worker") -> subprocess.Popen[bytes]:
    """`onewindow worker` (or materials-worker) serving /metrics on ``web_port``."""
    log = open(data_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "onewindow_cli", command, "--name", name,
         "--web-port", str(web_port)],
        env=worker_env(kafka, topics, data_dir), stdout=log, stderr=subprocess.STDOUT)


def scrape(port: int) -> dict[str, float]:
    """Sample name -> sum over its label sets, from http://127.0.0.1:port/metrics;
    empty while the page does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out
