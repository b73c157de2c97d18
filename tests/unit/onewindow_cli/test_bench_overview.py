"""`onewindow bench --all`'s one table (onewindow_cli/bench/overview.py): each path's row
from its part's summary, compared with issue 15's target on the right side of it."""

from __future__ import annotations

from typing import Any

import pytest

from onewindow_cli.bench.overview import render, rows


def _case_state(*, worker_ratio: float, p99_s: float, kept_s: float,
                held: int = 100_000) -> dict[str, Any]:
    return {"median_eps": {"plain_consumer_eps": 200_000.0, "faust_noop_eps": 6_000.0,
                           "pure_processor_eps": 12_000.0, "faust_worker_eps": 3_000.0,
                           "latency_p99_s": p99_s, "recovery_kept_s": kept_s},
            "ratio_worker_to_noop_per_round": worker_ratio, "held_cases": held,
            "latency_phase": {"rate_eps": 1000.0}, "path": "cs.json"}


def _parts(**case_state: Any) -> dict[str, Any]:
    return {
        "case_state": _case_state(**case_state),
        "step": {"current": {"step_us": 40.0}, "speedup": 2.0, "baseline_ref": "553d2ff8"},
        "reprocess": {"jobs": [1, 2], "median_eps": {"reprocess_jobs1": 30_000.0,
                                                     "reprocess_jobs2": 51_000.0},
                      "ratio_to_plain": {"reprocess_jobs1": 0.1, "reprocess_jobs2": 0.2}},
        "rebuild": {"jobs": [1], "median_rps": {"sqlite": 21_000.0, "postgresql": 12_000.0},
                    "ratio_to_plain": {"sqlite": 0.1, "postgresql": 0.05}},
        "materials": {"materials_per_second": 6_000.0, "equal_to_pure_rules": False,
                      "index": {"largest_bucket": 64}},
    }


def _met(parts: dict[str, Any]) -> dict[str, bool | None]:
    return {r.path: r.met for r in rows(parts)}


def test_each_target_is_compared_on_its_own_side() -> None:
    met = _met(_parts(worker_ratio=0.8, p99_s=0.3, kept_s=4.0))
    assert met["plain confluent-kafka consumer"] is None  # a baseline: no target
    assert met["Faust worker, end to end"] is True  # >= 0.75
    assert met["latency p99, input to case state, 1,000 events/s"] is False  # 300 ms
    assert met["restart after SIGKILL, 100,000 cases held"] is True  # < 5 s
    assert met["pure step per event (CPU)"] is False  # 2 x, not 5 x
    assert met["onewindow reprocess --jobs 1"] is False
    assert met["onewindow reprocess --jobs 2"] is True
    assert met["onewindow rebuild into SQLite"] is True  # 20,000
    assert met["onewindow rebuild into PostgreSQL"] is False  # 50,000
    # fast enough, but links that differ from the pure rules meet nothing
    assert met["materials worker"] is False


def test_a_restart_holding_fewer_cases_than_the_target_is_not_judged() -> None:
    met = _met(_parts(worker_ratio=0.5, p99_s=0.1, kept_s=1.0, held=10_000))
    assert met["restart after SIGKILL, 10,000 cases held"] is None
    assert met["Faust worker, end to end"] is False
    assert met["latency p99, input to case state, 1,000 events/s"] is True


@pytest.mark.parametrize("missing", ["case_state", "step", "reprocess", "rebuild",
                                     "materials"])
def test_a_part_not_run_gives_no_rows_and_the_table_still_prints(missing: str) -> None:
    parts = _parts(worker_ratio=0.8, p99_s=0.1, kept_s=1.0)
    del parts[missing]
    text = render(parts)
    assert missing not in text.splitlines()[0]
    assert "targets not met:" in text


def test_the_table_names_every_unmet_target() -> None:
    text = render(_parts(worker_ratio=0.8, p99_s=0.3, kept_s=4.0))
    unmet = text.split("targets not met: ")[1].splitlines()[0]
    assert unmet.split("; ") == [
        "latency p99, input to case state, 1,000 events/s", "pure step per event (CPU)",
        "onewindow reprocess --jobs 1", "onewindow rebuild into PostgreSQL",
        "materials worker"]
    assert "results of case_state: cs.json" in text
