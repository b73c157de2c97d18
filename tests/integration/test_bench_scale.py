"""`onewindow bench --scale` runs end to end on the real broker and PostgreSQL with a
tiny N (a smoke test of the report's fields and their consistency: no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_bench_scale_reports_memory_disk_and_the_year(kafka: str, postgres_server: str,
                                                      tmp_path: Path) -> None:
    env = dict(os.environ, ONEWINDOW_KAFKA_BOOTSTRAP=kafka, ONEWINDOW_PARTITIONS="2",
               ONEWINDOW_TABLE_MEMORY_MIB="16")
    report = tmp_path / "scale.json"
    res = subprocess.run(
        [sys.executable, "-m", "onewindow_cli", "bench", "--scale", "60", "--scale-steps", "1",
         "--postgres-url", postgres_server, "--out", str(tmp_path), "--json", str(report)],
        env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    for row in ("a year of a city: 60 cases", "case-state worker:", "materials worker:",
                "disk per million more cases", "1,000,000 cases", "500,000,000 events"):
        assert row in res.stdout, row
    s = json.loads(report.read_text())
    (step,) = s["steps"]
    assert s["cases"] == step["cases_held"] == 60
    # every record published went through reprocess's fold
    assert step["reprocess"]["stage_records"]["fold"] == step["load"]["records"] == s["events"]
    assert s["events"] > 60 * 5
    hold = step["hold"]
    for worker in ("case_state", "materials"):
        mem = hold[f"{worker}_memory_mib"]
        assert 0 < mem["pss"] <= mem["rss"] <= mem["rss_max"]
        # the budget in effect is the one the environment set
        assert hold[f"{worker}_table_memory_mib"]["budget"] == 16
        assert hold[f"{worker}_rocksdb_bytes"] > 0
        assert hold[f"{worker}_ready_s"] > 0
    assert s["memory"]["table_memory_mib_setting"] == 16
    # the session broker's log directories are on this machine
    broker = step["broker_bytes"]
    assert broker["total"] == sum(v for k, v in broker.items() if k != "total") > 0
    assert broker["inputs"] > 0 and broker["outputs"] > 0 and broker["changelogs"] > 0
    # the changelogs hold at least one state record a case
    assert step["restored_records"] == step["changelog_records"] >= 60
    rebuilt = s["rebuild"]
    assert rebuilt["records"] > s["events"]  # activity, states and links
    assert rebuilt["database_bytes"] > rebuilt["database_bytes_empty"] > 0
    year = s["year"]
    assert year["total_s"] == pytest.approx(year["reprocess_s"] + year["rebuild_s"])
    assert year["reprocess_s"] == pytest.approx(500_000_000 / s["rates"]["reprocess_eps"])
    assert s["disk_bytes_per_million_cases"]["postgresql"] == pytest.approx(
        (rebuilt["database_bytes"] - rebuilt["database_bytes_empty"]) * 1e6 / 60)
