"""`onewindow bench --profile`: py-spy's raw stacks charged to the parts of the worker
(onewindow_cli.bench.profile), innermost matching frame first, per process and thread."""

from __future__ import annotations

from pathlib import Path

from onewindow_cli.bench.profile import summarise

LOOP = ("thread (11): MainThread;run (stream_apps/faust_base.py:260);"
        "BaseEventLoop._run_once (asyncio/base_events.py:1922)")
CHILD = ('process 10:"python -m onewindow_cli worker";process 12:"python -m onewindow_cli '
         'worker";thread (12): MainThread;_serve (stream_apps/step_process.py:150)')


def test_samples_are_charged_to_the_innermost_part_they_reach(tmp_path: Path) -> None:
    raw = tmp_path / "worker.txt"
    raw.write_text("\n".join([
        # the step's time inside fastavro is the step's
        f"{CHILD};CaseProcessor.process (stream_apps/case_processor.py:230);"
        "_write_fast (onewindow/codec/registry.py:445) 5",
        # a table write's time in RocksDB is the store's, not the agent's
        f"{LOOP};fold_cases (stream_apps/app.py:150);TableAccess.store "
        "(stream_apps/faust_context.py:50);Store._set (faust/stores/rocksdb.py:300) 3",
        # the agent's own frame, where nothing deeper matches
        f"{LOOP};fold_cases (stream_apps/app.py:150) 1",
        # the loop waiting: generic, charged only when nothing specific is on the stack
        f"{LOOP};EpollSelector.select (selectors.py:468) 1",
        "thread (11): MainThread 2",  # no Python frame
        "not a stack line",
    ]))
    summary = summarise(raw)
    assert summary["samples"] == 12
    assert summary["parts"] == {"the pure step (CaseProcessor)": round(5 / 12, 4),
                                "table: RocksDB": round(3 / 12, 4),
                                "(no Python frame)": round(2 / 12, 4),
                                "the agent's shell": round(1 / 12, 4),
                                "event loop, threads and mode": round(1 / 12, 4)}
    assert summary["threads"] == {"child/MainThread": round(5 / 12, 4),
                                  "main/MainThread": round(7 / 12, 4)}
    assert summary["top_self"][0] == ["_write_fast (onewindow/codec/registry.py)",
                                      round(5 / 12, 4)]
