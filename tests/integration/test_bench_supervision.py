"""`onewindow bench-supervision` runs end to end on a small year (a smoke test of the
command: no timing asserted): a real process loads a few thousand events through the
sink's unit of work into a database of the session's PostgreSQL and reports every
dataset of /api/supervision for each period and scope, and the home page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from counter.supervision_api import DATASETS
from onewindow.read_model.engine import make_engine
from onewindow.read_model.tables import DEAD, TASK_DECISIONS, TIMELINE

pytestmark = pytest.mark.integration


def test_bench_supervision_reports_every_dataset(postgres_url: str, tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "onewindow_cli", "bench-supervision", "--events", "2500",
         "--repeats", "1", "--database-url", postgres_url, "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    table = res.stdout.split("queries: median")[1]
    for dataset in (*DATASETS, "home"):
        assert f"\n  {dataset} " in table, dataset
    assert "30 days, scjgj" in table and "365 days, scjgj" in table

    (path,) = tmp_path.glob("bench-supervision-*.json")
    summary = json.loads(path.read_text())
    medians = summary["queries"]["median_ms"]
    assert set(medians) == {*DATASETS, "home"}
    for dataset in DATASETS:
        assert set(medians[dataset]) == {"30d", "30d_scjgj", "365d", "365d_scjgj"}, dataset
        assert all(v >= 0 for v in medians[dataset].values()), dataset
    load = summary["load"]
    assert load["made"]["input_events"] > 2000 and load["results"] == {
        "accepted": load["records"]}
    # the year is in the model the command left, the summary and dead letters with it
    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        n = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
             for t in (TIMELINE, DEAD, TASK_DECISIONS)}
    engine.dispose()
    assert n["timeline_entries"] == summary["tables"]["timeline_entries"] > 2000
    assert n["task_decisions"] > 0 and n["dead_letters"] > 0
    assert summary["queries"]["rows"]["decision-times"]["365d"] > 0
