"""The facts a benchmark reports beside its numbers (onewindow_cli.bench.reporting)."""

from __future__ import annotations

import cProfile
from pathlib import Path

from onewindow_cli.bench.reporting import loadavg, profile_summary


def _work() -> int:
    return sum(i * i for i in range(10_000))


def test_the_load_average_is_three_numbers() -> None:
    got = loadavg()
    assert len(got) == 3 and all(float(x) >= 0 for x in got)


def test_a_profile_summary_names_the_profiled_function(tmp_path: Path) -> None:
    prof = tmp_path / "run.prof"
    profiler = cProfile.Profile()
    profiler.runcall(_work)
    profiler.dump_stats(prof)
    text = profile_summary(prof, 5)
    assert "_work" in text and "cumulative" in text and "tottime" in text
