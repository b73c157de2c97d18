"""`onewindow bench-step` end to end, small: this tree and the commit before the lean step
(issue 15) measured side by side on the same records, and the run fails unless both
produce the same case states and the same number of each output record. A smoke test of
the command and an equivalence test of the step against the code it replaced; no timing
is asserted."""

from __future__ import annotations

import json
from pathlib import Path

from onewindow_cli.bench.step import PRE_LEAN_COMMIT, make_records, report, run


def test_the_records_are_delivered_a_topic_partition_at_a_time() -> None:
    records = make_records(200, seed=3, partitions=3, chunk=5)
    assert len(records) >= 200
    for topic, partition in {(r[0], r[1]) for r in records}:
        offsets = [r[2] for r in records if (r[0], r[1]) == (topic, partition)]
        assert offsets == list(range(len(offsets)))  # in order, none missing
    runs = [(records[i][0], records[i][1]) for i in range(len(records))
            if i == 0 or (records[i][0], records[i][1]) != (records[i - 1][0], records[i - 1][1])]
    assert len(runs) > len({(r[0], r[1]) for r in records})  # round robin, in chunks


def test_bench_step_measures_both_trees_and_finds_the_same_outputs(tmp_path: Path) -> None:
    summary = run(events=300, rounds=1, baseline=PRE_LEAN_COMMIT, out_dir=tmp_path)
    assert summary["outputs"]["onewindow.case-activity"] >= 290
    for tree in ("current", "baseline"):
        assert summary[tree]["step_us"] > 0 and summary[tree]["floor_us"] > 0
        assert summary[tree]["profile"]["by_module_us"]
    assert summary["speedup"] > 0
    saved = json.loads(Path(summary["path"]).read_text())
    assert saved["baseline_ref"] == PRE_LEAN_COMMIT
    assert "faster than the baseline" in report(summary)
