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
         "--latency-events", "150", "--latency-rate", "200", "--hold-cases", "300",
         "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    for row in ("plain confluent-kafka consumer", "do-nothing Faust agent, same settings",
                "pure CaseProcessor, no Kafka", "Faust worker, end to end",
                "latency, input to case state", "300 cases held"):
        assert row in res.stdout, row
    (path,) = tmp_path.glob("bench-case-state-*.json")
    summary = json.loads(path.read_text())
    (run,) = summary["runs"]
    assert run["events"] >= 600 and run["cases"] > 10
    for key in ("plain_consumer_eps", "faust_noop_eps", "pure_processor_eps",
                "faust_worker_eps", "latency_p50_s", "latency_p99_s", "restore_s",
                "recovery_kept_s", "recovery_wiped_s"):
        assert run[key] > 0, key
    assert run["held_cases"] == 300 and run["held_bytes"] > 300 * 100
    assert run["latency_p50_s"] <= run["latency_p95_s"] <= run["latency_p99_s"]
    assert summary["ratio_worker_to_noop"] == pytest.approx(
        run["faust_worker_eps"] / run["faust_noop_eps"])
