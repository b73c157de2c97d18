"""`onewindow bench --scale`'s arithmetic: slopes, per-million figures and the year, from
the figures of two steps (the run itself: tests/integration/test_bench_scale.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from onewindow.config import Settings
from onewindow.topics import Topics
from onewindow_cli.bench.scale import ScaleOptions, _topic_kind, render, summarise


def _step(cases: int, rss: float, rocks: int, broker: int, changelog: int) -> dict[str, Any]:
    events = cases * 15
    mem = {"rss": rss, "pss": rss * 0.8, "rss_max": rss + 1}
    return {
        "cases_held": cases, "loadavg_before": ["1.0"], "loadavg_after": ["2.0"],
        "load": {"records": events // 2, "seconds": 10.0},
        "reprocess": {"records": events // 2, "seconds": 5.0, "eps": events / 10,
                      "stages_s": {"fold": 3.0, "route": 1.0, "index": 1.0},
                      "stage_records": {"fold": events // 2, "route": 100, "index": 50}},
        "hold": {"case_state_ready_s": 4.0, "materials_ready_s": 2.0,
                 "case_state_memory_mib": mem, "materials_memory_mib": mem,
                 "case_state_table_memory_mib": {"budget": 64.0},
                 "materials_table_memory_mib": {"budget": 64.0},
                 "case_state_rocksdb_bytes": rocks, "materials_rocksdb_bytes": rocks},
        "changelog_records": changelog, "restored_records": changelog // 2,
        "broker_bytes": {"total": broker, "inputs": broker},
    }


def test_slopes_per_million_and_the_year() -> None:
    steps = [_step(1000, 200.0, 1_000_000, 5_000_000, 4000),
             _step(2000, 210.0, 1_500_000, 9_000_000, 8000)]
    rebuilt = {"records": 45_000, "rps": 9000.0, "database_bytes": 17_000_000,
               "database_bytes_empty": 7_000_000}
    s = summarise(steps, rebuilt, ScaleOptions(cases=2000), {}, Settings())
    assert s["cases"] == 2000 and s["events"] == 7500 + 15000
    # 10 MiB more for 1,000 more cases: 1 MiB per 100 cases, 100 MiB per 100,000
    assert s["memory"]["case_state_rss_mib_per_100k_cases"] == pytest.approx(1000.0)
    assert s["memory"]["case_state_rss_mib_at_target"] == pytest.approx(210 + 998 * 10)
    # per million more cases: the difference between the steps, not the fixed part
    per_m = s["disk_bytes_per_million_cases"]
    assert per_m["case_state_rocksdb"] == pytest.approx(500_000 * 1000)
    assert per_m["broker_total"] == pytest.approx(4_000_000 * 1000)
    assert per_m["postgresql"] == pytest.approx(10_000_000 * 500)
    assert s["rates"]["reprocess_eps"] == pytest.approx(22500 / 10)
    assert s["rates"]["restore_rps"] == pytest.approx((2000 + 4000) / 8.0)
    year = s["year"]
    assert year["reprocess_s"] == pytest.approx(500_000_000 / 2250)
    assert year["rebuild_s"] == pytest.approx(500_000_000 * (45_000 / 22500) / 9000)
    assert year["total_s"] == pytest.approx(year["reprocess_s"] + year["rebuild_s"])
    assert s["at_target_cases"]["met_500_mb"] is False
    s["path"] = str(Path("x.json"))
    table = render(s)
    assert "2,000" in table and "1,000,000 cases" in table and "500,000,000" in table


def test_topic_kinds() -> None:
    t = Topics("p.")
    assert _topic_kind("p.dept.amr.events", t) == "inputs"
    assert _topic_kind(t.case_state, t) == "outputs"
    assert _topic_kind(t.case_fold_changelog, t) == "changelogs"
