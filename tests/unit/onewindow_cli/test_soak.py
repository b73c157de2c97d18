"""`onewindow soak`'s pure parts (onewindow_cli/soak.py): naming the stack's processes,
reading RSS and lag, the kill plan, the memory table, the model comparison and its
excluded columns, the report. The soak itself runs a whole stack for minutes: it is run
by hand and its result is in docs/benchmarks.md, "Soak"."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import select

from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.observability.lag import ConsumerLag
from onewindow.read_model.engine import make_engine
from onewindow.read_model.tables import metadata
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics
from onewindow_cli.cli import build_parser
from onewindow_cli.soak import (
    EXCLUDED,
    MemoryRow,
    changed_files,
    code_files,
    compare_models,
    dump_model,
    jvm_heap_kib,
    kill_plan,
    lag_values,
    memory_over,
    memory_rows,
    process_name,
    render_report,
    rss_kib,
    sample_rss,
    slope_per_minute,
    stack_processes,
    table_cache_kib,
    table_memory_of,
)
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from sinks.ingest import Ingestor
from sinks.metrics import SinkMetrics
from sinks.migrations import upgrade
from sinks.rows import Batch, RowMaker
from sinks.unit_of_work import write_batch
from tests.read_model_support import case_outputs, link_records

PY = "/srv/.venv/bin/python3"


def test_processes_are_named_by_their_command_line() -> None:
    assert process_name([PY, "-m", "onewindow_cli", "worker"]) == "worker"
    assert process_name([PY, "-m", "onewindow_cli", "simulate", "--rate", "5"]) == "simulate"
    assert process_name([PY, "/srv/.venv/bin/onewindow", "up", "--simulate"]) == "up"
    assert process_name(["/srv/.venv/bin/onewindow", "sink"]) == "sink"
    assert process_name(["/usr/bin/java", "-Xmx768m", "-cp", "libs/*", "kafka.Kafka",
                         "server.properties"]) == "broker"
    assert process_name(["/usr/bin/java", "-cp", "x", "kafka.tools.StorageTool"]) == "java"
    assert process_name(["/bin/sleep", "30"]) == "sleep"
    assert process_name([]) == "?"


def test_rss_is_read_from_proc_status() -> None:
    status = ("Name:\tpython3\nState:\tS (sleeping)\nVmPeak:\t  973656 kB\n"
              "VmRSS:\t  119504 kB\nRssAnon:\t   90112 kB\nRssFile:\t   29392 kB\n")
    assert rss_kib(status) == (119504, 90112)
    assert rss_kib("Name:\tpython\nState:\tZ (zombie)\n") is None


def test_the_broker_heap_is_read_from_jcmd() -> None:
    out = ("20119:\n garbage-first heap   total 397312K, used 17947K [0x0000000687400000, "
           "0x0000000800000000)\n  region size 4096K, 4 young (16384K), 0 survivors (0K)\n"
           " Metaspace       used 8959K, committed 9152K, reserved 1114112K\n")
    assert jvm_heap_kib(out) == (397312, 17947)
    assert jvm_heap_kib("20119:\nAttachNotSupportedException") is None


def test_the_stack_is_found_under_its_root_with_memory() -> None:
    """A real process tree: a Python parent (the root, named `up`) and its child."""
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, time; c = subprocess.Popen(['sleep', '60']); "
         "print(c.pid, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    child = None
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        # the pid is printed once forked, maybe before the child has exec'd `sleep`
        deadline = time.monotonic() + 30
        while (Path(f"/proc/{child}/comm").read_text().strip() != "sleep"
               and time.monotonic() < deadline):
            time.sleep(0.01)
        procs = stack_processes(parent.pid)
        assert procs == {parent.pid: "up", child: "sleep"}
        rss, anon = sample_rss(procs)
        assert set(rss) == set(anon) == {"up", "sleep"}
        assert rss["up"][parent.pid] > 1000  # KiB: a Python interpreter
        assert 0 < anon["up"][parent.pid] < rss["up"][parent.pid]
        assert rss["sleep"][child] > 0
    finally:
        parent.kill()
        parent.wait()
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)  # the sleep, by its pid


def test_lag_is_read_from_the_real_gauges_pages() -> None:
    worker = CollectorRegistry()
    lag = ConsumerLag(worker)
    lag.update("onewindow-case-state", {("dept.gaj.events", 0): 0, ("dept.gaj.events", 1): 3})
    sink = SinkMetrics()
    sink.lag.update("onewindow-sink", {("onewindow.case-state", 0): 0})  # the same metric
    sink.records.labels("case-state", "accepted").inc(5)  # not a lag
    assert sorted(lag_values(generate_latest(worker).decode())) == [0.0, 3.0]
    assert lag_values(generate_latest(sink.registry).decode()) == [0.0]
    assert lag_values(generate_latest(CollectorRegistry()).decode()) == []


def test_table_memory_is_read_from_the_workers_real_collector(tmp_path: Path) -> None:
    """The soak reads a worker's RocksDB memory from its page (stream_apps.table_store)."""
    from stream_apps import table_store  # noqa: PLC0415

    registry = CollectorRegistry()
    table_store.register_metrics(registry)
    memory = table_store.table_memory() or table_store.configure(64 << 20)
    db = table_store.BoundedRocksDBOptions(use_rocksdict=True).open(tmp_path / "t.db")
    try:
        db[b"k"] = b"v" * 100_000
        kib = table_cache_kib(generate_latest(registry).decode())
        assert kib is not None and kib == memory.usage_bytes() // 1024 > 0
    finally:
        db.close()
    assert table_cache_kib(generate_latest(CollectorRegistry()).decode()) is None
    samples = [{"worker": 1024}, {}, {"worker": 3072, "materials-worker": 5}]
    assert table_memory_of("worker", samples) == {"table_start_kib": 1024,
                                                  "table_end_kib": 3072}
    assert table_memory_of("sink", samples) == {"table_start_kib": None,
                                                "table_end_kib": None}


def test_kills_take_turns_strictly_inside_the_load_phase() -> None:
    assert kill_plan(600, 60) == [(60 * n, ("worker", "materials-worker", "sink")[(n - 1) % 3])
                                  for n in range(1, 10)]
    assert kill_plan(60, 20) == [(20, "worker"), (40, "materials-worker")]
    assert kill_plan(60, 0) == []
    assert kill_plan(10, 30) == []


def test_memory_rows_take_the_first_last_and_peak_sample_per_name() -> None:
    samples = [
        {"up": {1: 100}, "worker": {2: 200}, "broker": {3: 400}},
        {"up": {1: 110}, "worker": {2: 500}, "broker": {3: 420}},
        # the worker was killed and restarted under a new pid; a new name appeared
        {"up": {1: 105}, "worker": {9: 150}, "broker": {3: 1000}, "extra": {7: 5}},
    ]
    rows = {r.process: r for r in memory_rows(samples)}
    assert rows["up"] == MemoryRow("up", 100, 105, 110, [1])
    assert rows["worker"] == MemoryRow("worker", 200, 150, 500, [2, 9])
    assert rows["worker"].ratio == 0.75
    assert rows["broker"].ratio == 2.5
    assert rows["extra"] == MemoryRow("extra", None, 5, 5, [7])
    assert rows["extra"].ratio is None
    assert memory_over(rows.values(), 1.5) == ["broker"]
    assert memory_over(rows.values(), 3.0) == []
    assert memory_rows([]) == []


def test_the_trend_is_that_of_the_life_running_at_the_end() -> None:
    assert slope_per_minute([(0, 100), (30, 101), (60, 102)]) == pytest.approx(2.0)
    assert slope_per_minute([(0, 100), (60, 102)]) is None
    assert slope_per_minute([(5, 1), (5, 2), (5, 3)]) is None
    # a worker growing 2,048 KiB a minute, killed at 90 s: the new life grows 1,024 a minute
    samples = [{"worker": {2: 100_000}}, {"worker": {2: 101_024}}, {"worker": {2: 102_048}},
               {"worker": {2: 103_072}}, {"worker": {9: 90_000}}, {"worker": {9: 90_512}},
               {"worker": {9: 91_024}}]
    times = [0, 30, 60, 90, 120, 150, 180]
    row = memory_rows(samples, times)[0]
    assert row.slope_kib_per_min == pytest.approx(1024.0)
    assert row.ratio is not None and row.ratio < 1  # the ratio alone would hide the growth
    assert memory_rows(samples)[0].slope_kib_per_min is None


def _dump(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[tuple[Any, ...], Any]]:
    return {t: {(r["k"],): r for r in rs} for t, rs in rows.items()}


def test_models_are_compared_table_by_table_row_by_row() -> None:
    live = _dump({"a": [{"k": 1, "v": "x"}, {"k": 2, "v": "y"}, {"k": 3, "v": "z"}],
                  "b": [{"k": 1, "v": 1}]})
    same = compare_models(live, live)
    assert all(d.equal for d in same.values()) and set(same) == {"a", "b"}

    rebuilt = _dump({"a": [{"k": 1, "v": "x"}, {"k": 2, "v": "Y"}, {"k": 4, "v": "w"}],
                     "b": [{"k": 1, "v": 1}], "c": [{"k": 5}]})
    d = compare_models(live, rebuilt)
    assert d["b"].equal
    a = d["a"]
    assert not a.equal
    assert (a.live_rows, a.rebuilt_rows) == (3, 3)
    assert (a.only_live, a.only_live_keys) == (1, [(3,)])
    assert (a.only_rebuilt, a.only_rebuilt_keys) == (1, [(4,)])
    assert (a.differing, a.differing_rows) == (1, [((2,), {"v": ("y", "Y")})])
    assert (d["c"].only_rebuilt, d["c"].live_rows) == (1, 0)


def test_the_comparison_counts_every_difference_but_lists_a_few() -> None:
    live = _dump({"a": [{"k": i, "v": i} for i in range(100)]})
    rebuilt = _dump({"a": [{"k": i, "v": -i} for i in range(1, 100)]})
    a = compare_models(live, rebuilt, shown=5)["a"]
    assert (a.only_live, a.differing) == (1, 99)
    assert len(a.differing_rows) == 5


def _load(url: str, topics: Topics, records: list[tuple[str, bytes]], settings: Settings,
          now: datetime, batch: int) -> None:
    engine = make_engine(url, writer=True)
    upgrade(engine)
    codec = get_codec()
    ing = Ingestor(topics, codec, RowMaker(codec, IdProtector.from_settings(settings)))
    offsets: dict[str, int] = {}
    for i in range(0, len(records), batch):
        b = Batch()
        for topic, value in records[i:i + batch]:
            offsets[topic] = offsets.get(topic, -1) + 1
            ing.add(b, topic, 0, offsets[topic], value)
        with engine.begin() as conn:
            write_batch(conn, b, now)
        now += timedelta(seconds=1)
    engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_excluded_columns_are_exactly_those_a_rebuild_changes(
        tmp_path: Path, settings: Settings, topics: Topics) -> None:
    """The same records written at another time and in other batches (as a rebuild writes
    them): every table has rows, and the columns that differ are exactly EXCLUDED."""
    codec = get_codec()
    events = [e for c in ScenarioGenerator(ScenarioConfig(seed=3)).cases(40) for e in c]
    bad = dict(events[0], case_id="")  # a dead letter
    records = case_outputs([*events, bad], topics)
    records += [(topics.material_links, codec.encode_record("MaterialLink", r))
                for r in link_records(events)]
    live, rebuilt = f"sqlite:///{tmp_path / 'live.db'}", f"sqlite:///{tmp_path / 'rebuilt.db'}"
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    _load(live, topics, records, settings, t0, batch=7)
    _load(rebuilt, topics, records, settings, t0 + timedelta(days=3), batch=len(records))

    def everything(url: str) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
        engine = make_engine(url)
        out = {}
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                keys = [c.name for c in table.primary_key.columns]
                out[table.name] = {tuple(r[k] for k in keys): dict(r)
                                   for r in conn.execute(select(table)).mappings()}
        engine.dispose()
        return out

    full = compare_models(everything(live), everything(rebuilt), shown=10**6)
    assert all(d.live_rows > 0 for d in full.values()), {t: d.live_rows for t, d in full.items()}
    changed = {(t, c) for t, d in full.items() for _, cols in d.differing_rows for c in cols}
    assert changed == EXCLUDED
    assert all(d.only_live == d.only_rebuilt == 0 for d in full.values())

    le, re_ = make_engine(live), make_engine(rebuilt)
    assert all(d.equal for d in compare_models(dump_model(le), dump_model(re_)).values())
    le.dispose()
    re_.dispose()


def test_the_report_says_what_differs_and_is_json() -> None:
    diffs = compare_models(
        _dump({"cases": [{"k": "C1", "version": 3}], "dead_letters": [{"k": 1}],
               "timeline_entries": [{"k": i} for i in range(1200)]}),
        _dump({"cases": [{"k": "C1", "version": 4}], "dead_letters": [{"k": 1}],
               "timeline_entries": [{"k": i} for i in range(1200)]}))
    report = {
        "minutes": 10.0, "kill_every": 60.0, "rate": 20.0, "data_dir": "/tmp/x",
        "aborted": None, "max_rss_growth": 1.5, "memory_over": ["broker"],
        "memory": [{"process": "broker", "start_kib": 400 * 1024, "end_kib": 700 * 1024,
                    "peak_kib": 700 * 1024, "pids": [3], "ratio": 1.75,
                    "anon_start_kib": 300 * 1024, "anon_end_kib": 600 * 1024,
                    "slope_kib_per_min": 30 * 1024},
                   {"process": "worker", "start_kib": 120 * 1024, "end_kib": 150 * 1024,
                    "peak_kib": 150 * 1024, "pids": [4], "ratio": 1.25,
                    "anon_start_kib": 90 * 1024, "anon_end_kib": 120 * 1024,
                    "slope_kib_per_min": 3 * 1024, "table_start_kib": 10 * 1024,
                    "table_end_kib": 39 * 1024}],
        "broker_heap": {"start": {"committed_kib": 256 * 1024, "used_kib": 100 * 1024},
                        "end": {"committed_kib": 512 * 1024, "used_kib": 200 * 1024}},
        "kills": [{"at_s": 60.0, "process": "worker", "pid": 9, "new_pid": 10,
                   "back_after_s": 1.5, "serving_after_s": 12.0, "note": None},
                  {"at_s": 120.0, "process": "sink", "pid": None, "new_pid": None,
                   "back_after_s": None, "serving_after_s": None,
                   "note": "not running: not killed"}],
        "kills_planned": 9, "input_records": 12345, "load_s": 700.0,
        "rebuild": {"exit_code": 0, "records": 50000, "seconds": 9.5},
        "drain": {"drained": True, "seconds": 24.0},
        "tables": {k: {**vars(d), "equal": d.equal} for k, d in diffs.items()},
        "read_model_equal": False, "passed": False,
    }
    text = render_report(report)
    assert "read model equals rebuild: NO" in text
    assert "('C1',): version live=3 rebuilt=4" in text
    assert "broker" in text and "1.75" in text and "300->600" in text and "OVER" in text
    assert "+30.0" in text
    assert ("worker: RocksDB table memory (shared cache, memtables included) 10 -> 39 MiB; "
            "RSS outside it 110 -> 111 MiB (+1.0 MiB)") in text
    assert "broker JVM heap, committed/used MiB: start 256/100, end 512/200" in text
    assert "kills: 1 of 9 planned" in text and "not running: not killed" in text
    assert "serving again after 12.0-12.0 s" in text
    assert "input records published: 12,345 in 700 s (17.6/s)" in text
    assert "applied to the read model: 1,200 events (timeline entries), 1 dead letters" in text
    assert "CODE CHANGED" not in text
    assert "CODE CHANGED during the run (1 files, e.g. sinks/rows.py)" in render_report(
        {**report, "code_changed": ["sinks/rows.py"]})
    assert text.endswith("result: FAIL")
    json.dumps(report, default=str)


def test_a_code_file_changed_during_the_run_is_named(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "rows.py").write_text("A = 1\n")
    (tmp_path / "pkg" / "notes.txt").write_text("not code")
    for hidden in (".venv", "tests", "var"):
        (tmp_path / hidden).mkdir()
        (tmp_path / hidden / "x.py").write_text("")
    before = code_files(tmp_path)
    assert set(before) == {"pkg/rows.py"}
    assert changed_files(before, code_files(tmp_path)) == []
    (tmp_path / "pkg" / "rows.py").write_text("A = 22\n")
    (tmp_path / "pkg" / "new.py").write_text("")
    (tmp_path / "tests" / "x.py").write_text("changed, but not loaded by the stack")
    assert changed_files(before, code_files(tmp_path)) == ["pkg/new.py", "pkg/rows.py"]


def test_soak_is_a_command_with_its_options() -> None:
    args = build_parser().parse_args(["soak", "--minutes", "10", "--kill-every", "30",
                                      "--json", "r.json"])
    assert (args.minutes, args.kill_every, args.json) == (10.0, 30.0, "r.json")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["soak", "--minutes", "0"])


@pytest.mark.parametrize(("args", "why"), [
    (["--warmup", "-1"], "-1 is not a number of 0 or more"),
    (["--kill-every", "-5"], "-5 is not a number of 0 or more"),
    (["--minutes", "0"], "0 is not a number greater than 0"),
    (["--minutes", "abc"], "'abc' is not a number"),
])
def test_bad_durations_are_refused_before_anything_starts(
        args: list[str], why: str, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse  # noqa: PLC0415

    from onewindow_cli import soak  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="onewindow")
    soak.register(parser.add_subparsers())
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["soak", *args])
    assert stop.value.code == 2
    assert why in capsys.readouterr().err
    # 0 stays what the help says: no kills, no warm-up
    ok = parser.parse_args(["soak", "--kill-every", "0", "--warmup", "0"])
    assert (ok.kill_every, ok.warmup) == (0.0, 0.0)
