"""`onewindow bench` runs end to end on the real broker (a smoke test: no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_bench_reports_throughput_latency_and_recovery(kafka: str, tmp_path: Path) -> None:
    env = dict(os.environ, ONEWINDOW_KAFKA_BOOTSTRAP=kafka, ONEWINDOW_PARTITIONS="2")
    res = subprocess.run(
        [sys.executable, "-m", "onewindow_cli", "bench", "--events", "600", "--rounds", "1",
         "--latency-events", "150", "--latency-rate", "200", "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "latency, input to case state" in res.stdout
    (path,) = tmp_path.glob("bench-case-state-*.json")
    summary = json.loads(path.read_text())
    (run,) = summary["runs"]
    assert run["events"] >= 600 and run["cases"] > 10
    for key in ("plain_consumer_eps", "pure_processor_eps", "faust_worker_eps",
                "latency_p50_s", "latency_p99_s", "recovery_s"):
        assert run[key] > 0, key
    assert run["latency_p50_s"] <= run["latency_p95_s"] <= run["latency_p99_s"]
