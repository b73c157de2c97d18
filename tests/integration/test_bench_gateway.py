"""`onewindow bench-gateway` runs end to end on the real broker at a tiny scale and reports
every rate, ratio and latency (a smoke test of the report's shape: no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_bench_gateway_reports_rates_against_the_direct_publish(kafka: str,
                                                                 tmp_path: Path) -> None:
    env = dict(os.environ, ONEWINDOW_KAFKA_BOOTSTRAP=kafka, ONEWINDOW_PARTITIONS="2")
    res = subprocess.run(
        [sys.executable, "-m", "onewindow_cli", "bench-gateway", "--events", "300",
         "--single-events", "20", "--repeats", "1", "--concurrency", "2", "--out",
         str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "gateway, batches of 500" in res.stdout and "x direct" in res.stdout
    (path,) = tmp_path.glob("bench-gateway-*.json")
    summary = json.loads(path.read_text())
    assert (summary["events"], summary["single_events"], summary["repeats"]) == (300, 20, 1)
    (run,) = summary["runs"]
    keys = {"direct_eps", "gateway_b1_eps", "gateway_b50_eps", "gateway_b500_eps"}
    assert set(run) == keys and set(summary["median_eps"]) == keys
    assert all(v > 0 for v in run.values())
    assert set(summary["ratio_to_direct"]) == set(summary["median_ratio_per_repeat"]) == {
        "b1", "b50", "b500"}
    assert summary["ratio_to_direct"]["b500"] == pytest.approx(
        run["gateway_b500_eps"] / run["direct_eps"])
    for lat in summary["request_latency_s"].values():
        assert 0 < lat["p50"] <= lat["p95"]
    assert len(summary["load_average_per_repeat"]) == 1
    # Linux: the CPU an event cost the gateway, its checking process and the direct path
    assert set(summary["cpu_us_per_event"]) == {"direct", "gateway_b500", "checking_b500"}
    assert summary["cpu_us_per_event"]["direct"] > 0
