"""`onewindow soak`: the whole stack under simulated load, with a worker or the sink
killed at intervals; resident memory per process at the start and the end, and whether
the read model equals a fresh rebuild from the topics.

What it does, in order (issue #13, docs/benchmarks.md "Soak"):

1. Starts ``onewindow up --simulate --rate R --compression 60 --around-the-clock`` (the
   load of every soak so far, not the demo's pace in service hours) as a child process in
   a data directory of
   its own (default ``var/soak/<UTC time>``) with free loopback ports for the broker, the
   controller, both workers' and the sink's metrics pages, the counter and the gateway
   (the ``ONEWINDOW_*`` settings of ``onewindow/config.py``), so it runs beside a
   ``make run``.
   The read model is a SQLite file in that directory (``--database-url`` for another).
2. Waits until the counter's ``/healthz`` and the three metrics pages answer, then
   ``--warmup`` seconds more, and samples the resident memory (``VmRSS`` of
   ``/proc/<pid>/status``, and its anonymous part ``RssAnon``) of every process of the
   stack: ``up`` itself and each of its descendants, named by their command line
   (``-m onewindow_cli <name>``; the broker's JVM, ``kafka.Kafka``, is ``broker``, whose
   heap is also read with the JDK's ``jcmd GC.heap_info`` where ``jcmd`` exists).
3. For ``--minutes`` minutes, every ``--kill-every`` seconds, SIGKILLs the next of
   ``worker``, ``materials-worker``, ``sink`` (in turn) and notes after how many seconds
   a new process of that name is running again and its metrics page answers (``up``
   restarts it; if ``up`` itself exits, the stack was not supervised: the soak ends
   there, failed). Memory is sampled
   every ``--sample-every`` seconds; the last sample is the end one.
4. Stops the load without stopping ``up``: the simulator is frozen with SIGSTOP (``up``
   sees no exit, so neither stops nor restarts anything), then waits until the pipeline
   has drained: every lag gauge on the two workers' and the sink's metrics pages is 0
   (``onewindow_consumer_lag``, the one lag metric of every consumer, at least one sample
   on each page) and the live model's ``consumed_offsets`` have not changed for
   ``--quiet`` seconds (at most ``--drain-timeout``).
5. Counts the records on the input topics (high minus low watermark of every partition of
   every department's topic: nothing is compacted or expired there during a soak), then
   runs ``onewindow rebuild --database-url <a fresh database>`` against the same broker
   (the broker must be up for it; the rebuild writes only its own database, so the live
   sink may stay up), then stops ``up`` gracefully (SIGTERM; the frozen simulator gets its
   SIGTERM before it is thawed, so it dies without publishing again).
6. Compares the live read model with the rebuilt one, table by table and row by row
   (rows matched by primary key), every column except those in :data:`EXCLUDED`.

The report: RSS per process (start, end, peak, end/start, its anonymous part, and the
trend of the life running at the end in MiB/min), the kills and how soon each victim
served again, the input records published, the events applied, the rows of each table,
"read model equals rebuild: yes/no" with the differing rows; ``--json PATH`` writes it as
JSON with every sample. Exit status 0 only when the models are equal, the pipeline
drained, ``up`` stopped with 0, no process's RSS grew past ``--max-rss-growth``
(end/start), and no code file of the project changed during the run (a killed process
restarts on the code on disk: a shared working tree edited meanwhile would make a
difference that is not the pipeline's); 1 otherwise; 2 for a usage error.

Excluded from the comparison, and why (each is set from the sink's clock when its batch
commits, ``sinks.unit_of_work.write_batch(now=...)``, never from a record, so a live and
a rebuilt model differ there by construction; docs/read-model.md):

- ``cases.recorded_at``, ``timeline_entries.recorded_at``, ``materials.recorded_at``,
  ``material_links.recorded_at``, ``dead_letters.recorded_at``: when the row was written;
- ``consumed_offsets.updated_at``: when the partition's offset last moved.

Every other column, ``consumed_offsets.next_offset`` included, must be equal: a live sink
that missed or doubled a record shows there. Only the read-model tables
(``onewindow.read_model.tables.metadata``) are compared: the staff tables in the same
database (users, sessions, the access log) are not derived from the topics.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select

from onewindow.cli_options import non_negative_float, positive_float
from onewindow.read_model.tables import metadata

__all__ = [
    "EXCLUDED",
    "VICTIMS",
    "MemoryRow",
    "TableDiff",
    "compare_models",
    "dump_model",
    "jvm_heap_kib",
    "kill_plan",
    "lag_values",
    "memory_rows",
    "process_name",
    "render_report",
    "rss_kib",
    "slope_per_minute",
]

#: (table, column) pairs left out of the comparison: set from the sink's clock at commit
#: (see the module docstring), never from a record.
EXCLUDED: frozenset[tuple[str, str]] = frozenset({
    ("cases", "recorded_at"),
    ("timeline_entries", "recorded_at"),
    ("materials", "recorded_at"),
    ("material_links", "recorded_at"),
    ("dead_letters", "recorded_at"),
    ("consumed_offsets", "updated_at"),
})

#: the processes killed, in turn
VICTIMS = ("worker", "materials-worker", "sink")
#: the processes holding RocksDB tables, whose table memory the soak samples
TABLE_WORKERS = ("worker", "materials-worker")

#: the lag gauges that must all read 0 for the pipeline to count as drained
LAG_METRICS = ("onewindow_consumer_lag",)

#: rows listed per table and kind of difference in the report (the counts are complete)
SHOWN = 20


# ---------------------------------------------------------------------------- pure parts


def process_name(argv: Sequence[str]) -> str:
    """The name of a process of the stack from its command line: ``NAME`` for
    ``python -m onewindow_cli NAME ...`` (``up``'s children; ``up`` itself when started
    so), ``broker`` for Kafka's JVM (main class ``kafka.Kafka``), ``onewindow NAME`` for
    the console script, else the program's file name."""
    args = list(argv)
    for i, a in enumerate(args[:-2]):
        if a == "-m" and args[i + 1] == "onewindow_cli":
            return args[i + 2]
    if args and Path(args[0]).name.startswith("java") and "kafka.Kafka" in args:
        return "broker"
    for i, a in enumerate(args[:2]):
        if Path(a).name == "onewindow" and i + 1 < len(args):
            return args[i + 1]
    return Path(args[0]).name if args else "?"


def rss_kib(status: str) -> tuple[int, int] | None:
    """``(VmRSS, RssAnon)`` in KiB from the text of ``/proc/<pid>/status``; None for a
    process without memory (a zombie, a kernel thread)."""
    found: dict[str, int] = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon"):
            found[key] = int(rest.split()[0])
    if "VmRSS" not in found:
        return None
    return found["VmRSS"], found.get("RssAnon", 0)


def lag_values(metrics_text: str) -> list[float]:
    """Every sample of the lag gauges (:data:`LAG_METRICS`) on a Prometheus text page."""
    out: list[float] = []
    for family in text_string_to_metric_families(metrics_text):
        if family.name in LAG_METRICS:
            out.extend(s.value for s in family.samples if s.name == family.name)
    return out


def table_cache_kib(metrics_text: str) -> int | None:
    """A stream worker's RocksDB memory (``onewindow_table_memory_bytes{part="cache"}``,
    its shared block cache with the memtables charged to it), KiB; None if absent."""
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "onewindow_table_memory_bytes":
            for sample in family.samples:
                if sample.labels.get("part") == "cache":
                    return int(sample.value) // 1024
    return None


def kill_plan(seconds: float, every: float, victims: Sequence[str] = VICTIMS
              ) -> list[tuple[float, str]]:
    """``(second, process)`` of each kill: at ``every``, ``2 * every``, ... strictly before
    ``seconds``, the victims in turn. ``every <= 0`` means no kills."""
    if every <= 0:
        return []
    plan: list[tuple[float, str]] = []
    n = 1
    while n * every < seconds:
        plan.append((n * every, victims[(n - 1) % len(victims)]))
        n += 1
    return plan


@dataclass
class MemoryRow:
    """One process's resident memory over the soak, KiB (summed over its processes when
    several share the name). ``pids``: every pid seen under the name (a restarted process
    adds one). ``slope_kib_per_min``: the least-squares trend of the last pid's samples
    (the life running at the end; None with fewer than 3 samples or no times): a leak
    shows there even when a kill keeps end/start low."""

    process: str
    start_kib: int | None
    end_kib: int | None
    peak_kib: int
    pids: list[int]
    slope_kib_per_min: float | None = None

    @property
    def ratio(self) -> float | None:
        if not self.start_kib or self.end_kib is None:
            return None
        return self.end_kib / self.start_kib


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(seconds, value)`` points, per minute; None for fewer
    than 3 points or no spread in time."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return None
    return 60 * sum((t - mt) * (v - mv) for t, v in points) / var


def memory_rows(samples: Sequence[Mapping[str, Mapping[int, int]]],
                times: Sequence[float] | None = None) -> list[MemoryRow]:
    """Per process name, the first sample's RSS, the last one's, the peak, the pids and
    (with ``times``, seconds of each sample) the trend of the last life, from ``samples``
    (oldest first, each ``{name: {pid: kib}}``)."""
    names: list[str] = []
    for s in samples:
        names.extend(n for n in s if n not in names)
    rows = []
    for name in names:
        sums = [sum(s[name].values()) if name in s else None for s in samples]
        pids = sorted({pid for s in samples for pid in s.get(name, {})})
        last = next((max(s[name]) for s in reversed(samples) if s.get(name)), None)
        slope = None
        if times is not None and last is not None:
            slope = slope_per_minute([(t, s[name][last]) for t, s in zip(times, samples,
                                                                          strict=True)
                                      if last in s.get(name, {})])
        rows.append(MemoryRow(name, sums[0] if sums else None, sums[-1] if sums else None,
                              max((v for v in sums if v is not None), default=0), pids,
                              slope))
    return rows


def table_memory_of(process: str, table_samples: Sequence[Mapping[str, int]]
                    ) -> dict[str, int | None]:
    """``table_start_kib`` and ``table_end_kib``: a stream worker's RocksDB memory at the
    first and the last sample where its page answered (None for other processes)."""
    values = [t[process] for t in table_samples if process in t]
    return {"table_start_kib": values[0] if values else None,
            "table_end_kib": values[-1] if values else None}


def memory_over(rows: Iterable[MemoryRow], max_growth: float) -> list[str]:
    """The processes whose end/start RSS ratio is above ``max_growth``."""
    return [r.process for r in rows if r.ratio is not None and r.ratio > max_growth]


#: a table as dumped: primary key -> {column: value}
TableRows = dict[tuple[Any, ...], dict[str, Any]]


@dataclass
class TableDiff:
    """How one table of the live model differs from the rebuilt one: the keys only in
    either, and the rows present in both whose compared columns differ (``{column:
    (live, rebuilt)}``). Counts are complete; the key lists hold at most :data:`SHOWN`."""

    live_rows: int
    rebuilt_rows: int
    only_live: int = 0
    only_rebuilt: int = 0
    differing: int = 0
    only_live_keys: list[tuple[Any, ...]] = field(default_factory=list)
    only_rebuilt_keys: list[tuple[Any, ...]] = field(default_factory=list)
    differing_rows: list[tuple[tuple[Any, ...], dict[str, tuple[Any, Any]]]] = field(
        default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.only_live or self.only_rebuilt or self.differing)


def compare_models(live: Mapping[str, TableRows], rebuilt: Mapping[str, TableRows],
                   shown: int = SHOWN) -> dict[str, TableDiff]:
    """Table by table, row by row (matched by primary key): every table of either dump,
    with its differences (:class:`TableDiff`; ``equal`` when there are none). Columns
    missing on one side compare as missing (``None`` on neither side is assumed)."""
    out: dict[str, TableDiff] = {}
    for table in sorted(set(live) | set(rebuilt)):
        a, b = live.get(table, {}), rebuilt.get(table, {})
        d = TableDiff(live_rows=len(a), rebuilt_rows=len(b))
        for key in sorted(set(a) - set(b), key=repr):
            d.only_live += 1
            if len(d.only_live_keys) < shown:
                d.only_live_keys.append(key)
        for key in sorted(set(b) - set(a), key=repr):
            d.only_rebuilt += 1
            if len(d.only_rebuilt_keys) < shown:
                d.only_rebuilt_keys.append(key)
        missing = object()
        for key in sorted(set(a) & set(b), key=repr):
            ra, rb = a[key], b[key]
            cols = {c: (ra.get(c, missing), rb.get(c, missing))
                    for c in sorted(set(ra) | set(rb))
                    if ra.get(c, missing) != rb.get(c, missing)}
            if cols:
                d.differing += 1
                if len(d.differing_rows) < shown:
                    d.differing_rows.append((key, {c: (_shown(x), _shown(y))
                                                   for c, (x, y) in cols.items()}))
        out[table] = d
    return out


def _shown(value: Any) -> Any:
    return "<missing column>" if type(value) is object else value


def _mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:,.0f}"


def render_report(report: Mapping[str, Any]) -> str:
    """The human-readable report of a soak (the dict :meth:`Soak.run` returns)."""
    lines = [f"soak: {report['minutes']:g} min, a kill every {report['kill_every']:g} s, "
             f"simulated load {report['rate']:g} events/s; data in {report['data_dir']}"]
    if report.get("aborted"):
        lines.append(f"ABORTED: {report['aborted']}")
    mem = report.get("memory") or []
    if mem:
        lines.append(f"  {'process':<18} {'start MiB':>10} {'end MiB':>10} {'peak MiB':>10} "
                     f"{'end/start':>10} {'anon MiB':>13} {'MiB/min':>8} {'pids':>5}")
        for r in mem:
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
            anon = f"{_mib(r.get('anon_start_kib'))}->{_mib(r.get('anon_end_kib'))}"
            slope = r.get("slope_kib_per_min")
            trend = "-" if slope is None else f"{slope / 1024:+.1f}"
            lines.append(f"  {r['process']:<18} {_mib(r['start_kib']):>10} "
                         f"{_mib(r['end_kib']):>10} {_mib(r['peak_kib']):>10} {ratio:>10} "
                         f"{anon:>13} {trend:>8} {len(r['pids']):>5}")
        tables = [r for r in mem if r.get("table_start_kib") is not None]
        for r in tables:
            grew = r["end_kib"] - r["start_kib"] if r["end_kib"] and r["start_kib"] else None
            inside = r["table_end_kib"] - r["table_start_kib"]
            lines.append(f"  {r['process']}: RocksDB table memory (shared cache, memtables "
                         f"included) {_mib(r['table_start_kib'])} -> "
                         f"{_mib(r['table_end_kib'])} MiB"
                         + ("" if grew is None else
                            f"; RSS outside it {_mib(r['start_kib'] - r['table_start_kib'])}"
                            f" -> {_mib(r['end_kib'] - r['table_end_kib'])} MiB "
                            f"({(grew - inside) / 1024:+.1f} MiB)"))
    heap = report.get("broker_heap")
    if heap:
        lines.append("  broker JVM heap, committed/used MiB: start "
                     f"{_mib(heap['start']['committed_kib'])}/{_mib(heap['start']['used_kib'])},"
                     f" end {_mib(heap['end']['committed_kib'])}/{_mib(heap['end']['used_kib'])}")
    kills = report.get("kills") or []
    back = [k["serving_after_s"] for k in kills if k.get("serving_after_s") is not None]
    planned = report.get("kills_planned", len(kills))
    lines.append(f"kills: {sum(1 for k in kills if k.get('pid'))} of {planned} planned"
                 + (f"; serving again after {min(back):.1f}-{max(back):.1f} s"
                    if back else "")
                 + "".join(f"; {k['process']} at {k['at_s']:.0f} s: {k['note']}"
                           for k in kills if k.get("note")))
    if report.get("input_records") is not None:
        rate = (f" in {report['load_s']:.0f} s ({report['input_records'] / report['load_s']:.1f}"
                "/s)" if report.get("load_s") else "")
        lines.append(f"input records published: {report['input_records']:,}{rate}")
    if report.get("rebuild"):
        rb = report["rebuild"]
        lines.append(f"rebuild: exit {rb['exit_code']}, {rb.get('records')} records in "
                     f"{rb['seconds']:.1f} s")
    tables = report.get("tables") or {}
    if "timeline_entries" in tables and "dead_letters" in tables:
        lines.append(f"applied to the read model: {tables['timeline_entries']['live_rows']:,} "
                     f"events (timeline entries), {tables['dead_letters']['live_rows']:,} "
                     "dead letters")
    drain = report.get("drain")
    if drain:
        lines.append(f"drained: {'yes' if drain['drained'] else 'NO'} "
                     f"after {drain['seconds']:.0f} s")
    if tables:
        lines.append(f"  {'table':<18} {'live':>10} {'rebuilt':>10}  differences")
        for name, t in tables.items():
            diff = ", ".join(f"{t[k]} {label}" for k, label in
                             (("only_live", "only live"), ("only_rebuilt", "only rebuilt"),
                              ("differing", "differing")) if t[k]) or "none"
            lines.append(f"  {name:<18} {t['live_rows']:>10,} {t['rebuilt_rows']:>10,}  {diff}")
            for key in t["only_live_keys"]:
                lines.append(f"      only live: {key}")
            for key in t["only_rebuilt_keys"]:
                lines.append(f"      only rebuilt: {key}")
            for key, cols in t["differing_rows"]:
                lines.append(f"      {key}: " + "; ".join(
                    f"{c} live={v[0]!r} rebuilt={v[1]!r}" for c, v in cols.items()))
    if report.get("read_model_equal") is not None:
        lines.append(f"read model equals rebuild: {'yes' if report['read_model_equal'] else 'NO'}"
                     f" (all columns but {', '.join(sorted(f'{t}.{c}' for t, c in EXCLUDED))})")
    if report.get("code_changed"):
        lines.append(f"CODE CHANGED during the run ({len(report['code_changed'])} files, e.g. "
                     f"{report['code_changed'][0]}): restarted processes ran other code")
    over = report.get("memory_over") or []
    lines.append(f"memory: {'within' if not over else 'OVER'} end/start <= "
                 f"{report['max_rss_growth']:g}" + (f" ({', '.join(over)})" if over else ""))
    lines.append(f"result: {'PASS' if report.get('passed') else 'FAIL'}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the model


def dump_model(engine: Engine) -> dict[str, TableRows]:
    """Every read-model table of ``engine`` as ``{table: {primary key: {column: value}}}``,
    without the :data:`EXCLUDED` columns."""
    out: dict[str, TableRows] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            cols = [c for c in table.columns if (table.name, c.name) not in EXCLUDED]
            keys = [c.name for c in table.primary_key.columns]
            rows: TableRows = {}
            for r in conn.execute(select(*cols)).mappings():
                row = dict(r)
                rows[tuple(row[k] for k in keys)] = row
            out[table.name] = rows
    return out


# ---------------------------------------------------------------------------- processes


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:  # noqa: PTH123 - /proc
            return f.read()
    except OSError:
        return None


def _ppid(pid: int) -> int | None:
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # the command name is in parentheses and may hold spaces: the fields follow the last ")"
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[1]) if len(fields) > 1 else None


def _argv(pid: int) -> list[str]:
    raw = _read(f"/proc/{pid}/cmdline") or ""
    return [a for a in raw.split("\0") if a]


def stack_processes(root: int) -> dict[int, str]:
    """``{pid: name}`` of ``root`` (named ``up``) and every live descendant of it
    (:func:`process_name`), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _ppid(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found = {root: "up"} if os.path.exists(f"/proc/{root}") else {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        argv = _argv(pid)
        if argv:  # a zombie has no command line: it holds no memory either
            found[pid] = process_name(argv)
        todo.extend(children.get(pid, []))
    return found


def sample_rss(procs: Mapping[int, str]
               ) -> tuple[dict[str, dict[int, int]], dict[str, dict[int, int]]]:
    """``{name: {pid: VmRSS KiB}}`` and ``{name: {pid: RssAnon KiB}}`` of ``procs`` (a
    process gone meanwhile is left out). RssAnon is the part no file backs (heaps,
    arenas): growth there, not in mapped files, is what a leak looks like."""
    rss_out: dict[str, dict[int, int]] = {}
    anon_out: dict[str, dict[int, int]] = {}
    for pid, name in procs.items():
        status = _read(f"/proc/{pid}/status")
        rss = None if status is None else rss_kib(status)
        if rss is not None:
            rss_out.setdefault(name, {})[pid] = rss[0]
            anon_out.setdefault(name, {})[pid] = rss[1]
    return rss_out, anon_out


def jvm_heap_kib(jcmd_output: str) -> tuple[int, int] | None:
    """``(committed, used)`` heap in KiB from ``jcmd <pid> GC.heap_info`` (the line
    ``garbage-first heap   total 262144K, used 123456K ...``); None if absent."""
    m = re.search(r"heap\s+total (\d+)K, used (\d+)K", jcmd_output)
    return (int(m.group(1)), int(m.group(2))) if m else None


def broker_heap(pids: Iterable[int]) -> dict[str, int] | None:
    """The broker JVM's heap (committed and used KiB) through the JDK's ``jcmd``, if it
    is installed and answers within 20 s; None otherwise."""
    jcmd = shutil.which("jcmd")
    for pid in pids:
        if jcmd is None:
            return None
        try:
            res = subprocess.run([jcmd, str(pid), "GC.heap_info"], capture_output=True,  # noqa: S603
                                 text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        heap = jvm_heap_kib(res.stdout)
        if heap is not None:
            return {"committed_kib": heap[0], "used_kib": heap[1]}
    return None


#: folders under the project root that hold no code a process of the stack loads
NOT_CODE = frozenset({"tests", "var", "docs", "build", "dist", "bench-results", "node_modules"})


def code_files(root: Path) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime ns)}`` of every ``.py`` file under ``root`` outside
    hidden folders (``.venv``) and :data:`NOT_CODE`: what a restarted process would load.
    Taken at the start and the end of a soak: a killed process restarts on the code on
    disk, so a file changed meanwhile makes the comparison meaningless."""
    out: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in NOT_CODE
                   and d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                path = Path(folder) / name
                try:
                    st = path.stat()
                except OSError:
                    continue
                out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def changed_files(before: Mapping[str, tuple[int, int]],
                  after: Mapping[str, tuple[int, int]]) -> list[str]:
    """The paths added, removed or changed between two :func:`code_files` snapshots."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports free right now (bound to port 0, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _get(url: str, timeout: float = 5.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
            return resp.read().decode("utf-8", "replace") if resp.status == 200 else None
    except (OSError, ValueError):
        return None


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, memory, kernel and Python of this machine, and its load average
    now (other work on a shared machine shows there), for the report."""
    cpu = _read("/proc/cpuinfo") or ""
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines()
                  if line.startswith("model name")), None)
    mem = _read("/proc/meminfo") or ""
    total = next((int(line.split()[1]) for line in mem.splitlines()
                  if line.startswith("MemTotal:")), None)
    return {"cpu": model, "cores": os.cpu_count(), "memory_kib": total,
            "kernel": os.uname().release, "python": sys.version.split()[0],
            "loadavg_at_start": (_read("/proc/loadavg") or "").split()[:3]}


# ---------------------------------------------------------------------------- the soak


@dataclass
class SoakOptions:
    minutes: float = 10.0
    kill_every: float = 60.0
    rate: float = 50.0
    warmup: float = 60.0
    sample_every: float = 30.0
    quiet: float = 20.0
    drain_timeout: float = 300.0
    start_timeout: float = 300.0
    max_rss_growth: float = 1.5
    data_dir: Path | None = None
    database_url: str | None = None
    rebuild_database_url: str | None = None


KEY_VARIABLES = ("ONEWINDOW_ID_HASH_KEY", "ONEWINDOW_ID_HASH_KEY_FILE",
                 "ONEWINDOW_INSECURE_DEV_KEY")


class Soak:
    """One soak run (see the module docstring); :meth:`run` returns the report."""

    def __init__(self, opts: SoakOptions, *, out: Callable[[str], None] = print) -> None:
        self.opts = opts
        self.say = out
        self.stop = threading.Event()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.data_dir = (opts.data_dir or Path.cwd() / "var" / "soak" / stamp).resolve()
        ports = free_ports(7)
        self.ports = dict(zip(("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "WORKER_WEB_PORT",
                               "MATERIALS_WEB_PORT", "SINK_METRICS_PORT", "COUNTER_PORT",
                               "GATEWAY_PORT"),
                              ports, strict=True))
        self.live_url = opts.database_url or f"sqlite:///{self.data_dir / 'onewindow.db'}"
        self.rebuilt_url = (opts.rebuild_database_url
                            or f"sqlite:///{self.data_dir / 'rebuilt.db'}")
        self.up: subprocess.Popen[bytes] | None = None
        self.samples: list[dict[str, dict[int, int]]] = []
        self.anon_samples: list[dict[str, dict[int, int]]] = []
        self.heap_samples: list[dict[str, int] | None] = []
        self.table_samples: list[dict[str, int]] = []
        self.sample_times: list[float] = []
        self.kills_planned = 0
        self.started = time.monotonic()

    # ------------------------------------------------------------------ environment

    def env(self) -> dict[str, str]:
        """The environment of ``up`` and of the rebuild: this data directory, read model
        and ports; the operator's own ID hash key if set, else the stack's generated key
        file (``up`` creates it on its first start)."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("ONEWINDOW_KAFKA_BOOTSTRAP", "ONEWINDOW_KAFKA_CREDENTIALS_DIR",
                            "ONEWINDOW_KAFKA_USERNAME", "ONEWINDOW_KAFKA_PASSWORD",
                            "ONEWINDOW_KAFKA_PASSWORD_FILE")}
        env.update({f"ONEWINDOW_{k}": str(v) for k, v in self.ports.items()})
        env["ONEWINDOW_DATA_DIR"] = str(self.data_dir)
        env["ONEWINDOW_DATABASE_URL"] = self.live_url
        return env

    def key_env(self) -> dict[str, str]:
        if any(k in os.environ for k in KEY_VARIABLES):
            return {}
        return {"ONEWINDOW_ID_HASH_KEY_FILE": str(self.data_dir / "secrets" / "id-hash.key")}

    def url(self, port_name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[port_name]}{path}"

    @property
    def metrics_pages(self) -> dict[str, str]:
        return {"worker": self.url("WORKER_WEB_PORT", "/metrics"),
                "materials-worker": self.url("MATERIALS_WEB_PORT", "/metrics"),
                "sink": self.url("SINK_METRICS_PORT", "/metrics")}

    # ------------------------------------------------------------------ processes

    def processes(self) -> dict[int, str]:
        if self.up is None:
            return {}
        return stack_processes(self.up.pid)

    def up_exited(self) -> int | None:
        return None if self.up is None else self.up.poll()

    def sample(self, t0: float) -> None:
        procs = self.processes()
        rss, anon = sample_rss(procs)
        self.samples.append(rss)
        self.anon_samples.append(anon)
        self.heap_samples.append(broker_heap(p for p, n in procs.items() if n == "broker"))
        tables: dict[str, int] = {}
        for name in TABLE_WORKERS:
            page = _get(self.metrics_pages[name], 2.0)
            kib = None if page is None else table_cache_kib(page)
            if kib is not None:
                tables[name] = kib
        self.table_samples.append(tables)
        self.sample_times.append(time.monotonic() - t0)

    def pids_of(self, name: str) -> list[int]:
        return [pid for pid, n in self.processes().items() if n == name]

    # ------------------------------------------------------------------ phases

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        log = (self.data_dir / "up.log").open("ab")
        # the simulator's pace before the demo's (issue 16): clock time at 60 x, so the
        # load holds for the whole backlog, whatever the hour of the centre
        argv = [sys.executable, "-m", "onewindow_cli", "up", "--simulate",
                "--rate", str(self.opts.rate), "--compression", "60", "--around-the-clock"]
        self.say(f"soak: starting `onewindow up --simulate --rate {self.opts.rate:g} "
                 "--compression 60 --around-the-clock` in "
                 f"{self.data_dir} (Kafka on 127.0.0.1:{self.ports['KAFKA_PORT']}, "
                 f"counter on {self.ports['COUNTER_PORT']})")
        self.started = time.monotonic()
        self.up = subprocess.Popen(argv, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def wait_ready(self) -> str | None:
        """None once the counter and every metrics page answer; else why not."""
        deadline = time.monotonic() + self.opts.start_timeout
        pages = [self.url("COUNTER_PORT", "/healthz"), *self.metrics_pages.values()]
        while time.monotonic() < deadline and not self.stop.is_set():
            rc = self.up_exited()
            if rc is not None:
                return f"`up` exited with {rc} while starting; see {self.data_dir}/up.log"
            if all(_get(p) is not None for p in pages):
                return None
            self.stop.wait(2.0)
        return "stopped" if self.stop.is_set() else \
            f"the stack was not up within {self.opts.start_timeout:g} s"

    def soak(self, kills: list[dict[str, Any]]) -> str | None:
        """The load phase with its kills; None when it ran to its end, else why not."""
        t0 = time.monotonic()
        self.sample(t0)
        end = self.opts.minutes * 60
        plan = kill_plan(end, self.opts.kill_every)
        self.kills_planned = len(plan)
        next_sample = self.opts.sample_every
        self.say(f"soak: start sample taken; {len(plan)} kills planned over "
                 f"{self.opts.minutes:g} min")
        while not self.stop.is_set():
            now = time.monotonic() - t0
            rc = self.up_exited()
            if rc is not None:
                last = f" after killing {kills[-1]['process']}" if kills else ""
                return (f"`up` exited with {rc}{last}: the stack did not survive "
                        f"(not supervised?); see {self.data_dir}/up.log")
            if plan and now >= plan[0][0]:
                kills.append(self.kill(plan.pop(0)[1], t0))
                continue
            if now >= end:
                break
            if now >= next_sample:
                self.sample(t0)
                next_sample += self.opts.sample_every
            self.stop.wait(min(1.0, max(0.05, end - now)))
        if self.stop.is_set():
            return "stopped"
        self.sample(t0)  # the end sample, still under load
        return None

    def kill(self, victim: str, t0: float) -> dict[str, Any]:
        """SIGKILL the running ``victim`` and wait (up to ``kill_every`` seconds) for a new
        process of that name (``back_after_s``) and for its metrics page to answer again
        (``serving_after_s``)."""
        rec: dict[str, Any] = {"at_s": round(time.monotonic() - t0, 1), "process": victim,
                               "pid": None, "new_pid": None, "back_after_s": None,
                               "serving_after_s": None, "note": None}
        pids = self.pids_of(victim)
        if not pids:
            rec["note"] = "not running: not killed"
            return rec
        pid = pids[0]
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            rec["note"] = "gone before the kill"
            return rec
        rec["pid"] = pid
        self.say(f"soak: {rec['at_s']:.0f} s: SIGKILL {victim} (pid {pid})")
        killed = time.monotonic()
        limit = killed + max(self.opts.kill_every, 5.0)
        while time.monotonic() < limit and not self.stop.is_set() and self.up_exited() is None:
            if rec["new_pid"] is None:
                new = [p for p in self.pids_of(victim) if p != pid]
                if new:
                    rec["new_pid"] = new[0]
                    rec["back_after_s"] = round(time.monotonic() - killed, 1)
            if rec["new_pid"] is not None and _get(self.metrics_pages[victim], 1.0):
                rec["serving_after_s"] = round(time.monotonic() - killed, 1)
                break
            self.stop.wait(0.5)
        if rec["serving_after_s"] is None and self.up_exited() is None \
                and not self.stop.is_set():
            rec["note"] = (f"not {'serving' if rec['new_pid'] else 'back'} within "
                           f"{max(self.opts.kill_every, 5.0):g} s")
        return rec

    def freeze_load(self) -> list[int]:
        """SIGSTOP every simulator of the stack (``up`` sees no exit)."""
        frozen = self.pids_of("simulate")
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        return frozen

    def drained(self) -> dict[str, Any]:
        """Wait until every lag gauge is 0 and the live offsets stopped moving."""
        from onewindow.read_model.engine import make_engine  # noqa: PLC0415 - SQLAlchemy

        t0 = time.monotonic()
        deadline = t0 + self.opts.drain_timeout
        engine = make_engine(self.live_url)
        last: Any = None
        since = time.monotonic()
        lags: dict[str, list[float] | None] = {}
        try:
            while time.monotonic() < deadline and not self.stop.is_set():
                if self.up_exited() is not None:
                    break
                lags = {}
                for name, url in self.metrics_pages.items():
                    text = _get(url)
                    lags[name] = None if text is None else lag_values(text)
                with engine.connect() as conn:
                    tbl = metadata.tables["consumed_offsets"]
                    offsets = sorted(conn.execute(
                        select(tbl.c.topic, tbl.c.partition, tbl.c.next_offset)).all())
                if offsets != last:
                    last, since = offsets, time.monotonic()
                zero = all(v and not any(v) for v in lags.values())
                if zero and time.monotonic() - since >= self.opts.quiet:
                    return {"drained": True, "seconds": round(time.monotonic() - t0, 1),
                            "lags": lags}
                self.stop.wait(2.0)
        finally:
            engine.dispose()
        return {"drained": False, "seconds": round(time.monotonic() - t0, 1), "lags": lags}

    def input_records(self) -> int | None:
        """Records on every department's input topic (sum of high - low watermarks)."""
        from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415

        from onewindow.config import Settings  # noqa: PLC0415
        from onewindow.departments import load_registry  # noqa: PLC0415
        from onewindow.security.kafka_auth import STREAM, client_config  # noqa: PLC0415
        from onewindow.topics import Topics  # noqa: PLC0415

        s = Settings(kafka_port=self.ports["KAFKA_PORT"], data_dir=self.data_dir,
                     kafka_bootstrap=f"127.0.0.1:{self.ports['KAFKA_PORT']}",
                     kafka_credentials_dir=self.data_dir / "credentials",
                     kafka_username=None, kafka_password=None, kafka_password_file=None)
        topics = Topics(s.topic_prefix).inputs(load_registry(s.departments_file).codes)
        consumer = Consumer({**client_config(s, STREAM), "group.id": "onewindow-soak-count"})
        try:
            md = consumer.list_topics(timeout=10)
            total = 0
            for name in topics:
                for p in md.topics[name].partitions if name in md.topics else {}:
                    lo, hi = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                    total += max(0, hi - max(lo, 0))
            return total
        except Exception as exc:  # noqa: BLE001 - a count is not worth failing the soak
            self.say(f"soak: input records not counted: {exc}")
            return None
        finally:
            consumer.close()

    def rebuild(self) -> dict[str, Any]:
        """``onewindow rebuild`` into the fresh database, against the stack's broker."""
        argv = [sys.executable, "-m", "onewindow_cli", "rebuild",
                "--database-url", self.rebuilt_url]
        t0 = time.monotonic()
        with (self.data_dir / "rebuild.log").open("wb") as log:
            rc = subprocess.run(argv, env={**self.env(), **self.key_env()}, stdout=log,  # noqa: S603
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=1800, check=False).returncode
        text = (self.data_dir / "rebuild.log").read_text("utf-8", "replace")
        m = re.search(r"rebuilt from (\d+) records", text)
        return {"exit_code": rc, "records": int(m.group(1)) if m else None,
                "seconds": round(time.monotonic() - t0, 1)}

    def stop_up(self, frozen: Sequence[int] = ()) -> int | None:
        """SIGTERM ``up`` (each child finishes and commits); the frozen simulators get
        their SIGTERM first and are thawed after, so they die without publishing.
        Whatever is left after 180 s is killed."""
        if self.up is None:
            return None
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.up.poll() is None:
            self.up.send_signal(signal.SIGTERM)
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        try:
            return self.up.wait(180)
        except subprocess.TimeoutExpired:
            self.say("soak: `up` did not stop within 180 s; killing the stack")
            # only what is alive under `up` now: a pid seen earlier may belong to another
            # process by now
            for pid in stack_processes(self.up.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return self.up.wait(30)

    # ------------------------------------------------------------------ the run

    def run(self) -> dict[str, Any]:
        from onewindow.read_model.engine import make_engine  # noqa: PLC0415 - SQLAlchemy

        o = self.opts
        report: dict[str, Any] = {
            "command": "onewindow soak", "argv": sys.argv[1:],
            "started_at": datetime.now(UTC).isoformat(), "machine": machine_facts(),
            "minutes": o.minutes, "kill_every": o.kill_every, "rate": o.rate,
            "warmup_s": o.warmup, "max_rss_growth": o.max_rss_growth,
            "data_dir": str(self.data_dir), "ports": self.ports,
            "excluded_columns": sorted(f"{t}.{c}" for t, c in EXCLUDED),
            "aborted": None, "kills": [], "passed": False}
        kills: list[dict[str, Any]] = report["kills"]
        frozen: list[int] = []
        code_root = Path(__file__).resolve().parents[1]
        code_before = code_files(code_root)
        try:
            self.start()
            why = self.wait_ready()
            if why is None:
                self.say(f"soak: the stack is up; warming up {o.warmup:g} s")
                why = "stopped" if self.stop.wait(o.warmup) else self.soak(kills)
            if why is not None:
                report["aborted"] = why
            else:
                frozen = self.freeze_load()
                report["load_s"] = round(time.monotonic() - self.started, 1)
                self.say(f"soak: load stopped (simulator frozen: {frozen}); draining")
                report["drain"] = self.drained()
                if self.stop.is_set():
                    report["aborted"] = "stopped"
                else:
                    report["input_records"] = self.input_records()
                    self.say("soak: rebuilding the read model into a fresh database")
                    report["rebuild"] = self.rebuild()
        finally:
            self.say("soak: stopping the stack")
            report["up_exit_code"] = self.stop_up(frozen)
        report["kills_planned"] = self.kills_planned
        rows = memory_rows(self.samples, self.sample_times)
        anon = {r.process: r for r in memory_rows(self.anon_samples)}
        report["memory"] = [dict(asdict(r), ratio=r.ratio,
                                 anon_start_kib=anon[r.process].start_kib,
                                 anon_end_kib=anon[r.process].end_kib,
                                 **table_memory_of(r.process, self.table_samples))
                            for r in rows]
        report["samples"] = [
            {"t_s": round(t, 1), "rss_kib": s, "anon_kib": a, "broker_heap": h,
             "table_cache_kib": tc}
            for t, s, a, h, tc in zip(self.sample_times, self.samples, self.anon_samples,
                                      self.heap_samples, self.table_samples, strict=True)]
        heaps = [h for h in self.heap_samples if h is not None]
        report["broker_heap"] = {"start": heaps[0], "end": heaps[-1]} if heaps else None
        report["memory_over"] = memory_over(rows, o.max_rss_growth)
        if report["aborted"] is None and report["rebuild"]["exit_code"] == 0:
            live_e, rebuilt_e = make_engine(self.live_url), make_engine(self.rebuilt_url)
            try:
                diffs = compare_models(dump_model(live_e), dump_model(rebuilt_e))
            finally:
                live_e.dispose()
                rebuilt_e.dispose()
            report["tables"] = {k: dict(asdict(d), equal=d.equal) for k, d in diffs.items()}
            report["read_model_equal"] = all(d.equal for d in diffs.values())
        else:
            report["read_model_equal"] = None
        changed = changed_files(code_before, code_files(code_root))
        report["code_changed"] = changed
        if changed:
            self.say(f"soak: {len(changed)} code file(s) under {code_root} changed during "
                     f"the run ({', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''})"
                     ": a restarted process ran other code; the result does not count")
        report["finished_at"] = datetime.now(UTC).isoformat()
        report["loadavg_at_end"] = (_read("/proc/loadavg") or "").split()[:3]
        report["passed"] = bool(report["read_model_equal"]
                                and (report.get("drain") or {}).get("drained")
                                and not report["memory_over"] and not changed
                                and report["up_exit_code"] == 0)
        return report


def cmd_soak(args: argparse.Namespace) -> int:
    opts = SoakOptions(minutes=args.minutes, kill_every=args.kill_every, rate=args.rate,
                       warmup=args.warmup, sample_every=args.sample_every, quiet=args.quiet,
                       drain_timeout=args.drain_timeout, start_timeout=args.start_timeout,
                       max_rss_growth=args.max_rss_growth,
                       data_dir=Path(args.data_dir) if args.data_dir else None,
                       database_url=args.database_url,
                       rebuild_database_url=args.rebuild_database_url)
    soak = Soak(opts, out=lambda line: print(line, flush=True))  # noqa: T201
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: soak.stop.set())
    report = soak.run()
    print(render_report(report), flush=True)  # noqa: T201
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n",
                        encoding="utf-8")
        print(f"report: {path}")  # noqa: T201
    return 0 if report["passed"] else 1


def register(sub: Any) -> None:
    """Add `soak` to `sub` (an argparse subparsers action)."""
    p = sub.add_parser("soak", help="the whole stack under simulated load with kills of a "
                                    "worker and the sink: memory per process, and whether "
                                    "the read model equals a fresh rebuild")
    p.add_argument("--minutes", type=positive_float, default=10.0,
                   help="length of the load phase, after the warm-up (default 10)")
    p.add_argument("--kill-every", type=non_negative_float, default=60.0, dest="kill_every",
                   help="seconds between kills of worker, materials-worker, sink in turn "
                        "(0: none; default 60)")
    p.add_argument("--rate", type=positive_float, default=50.0,
                   help="the simulator's cap, events per second (default 50; the scenarios' "
                        "own timing gives less while the simulated backlog fills)")
    p.add_argument("--warmup", type=non_negative_float, default=60.0,
                   help="seconds after start-up before the first memory sample (default 60)")
    p.add_argument("--sample-every", type=positive_float, default=30.0, dest="sample_every",
                   help="seconds between memory samples (default 30)")
    p.add_argument("--quiet", type=positive_float, default=20.0,
                   help="seconds the live offsets must stay still, lag 0, to count as "
                        "drained (default 20)")
    p.add_argument("--drain-timeout", type=positive_float, default=300.0, dest="drain_timeout")
    p.add_argument("--start-timeout", type=positive_float, default=300.0, dest="start_timeout")
    p.add_argument("--max-rss-growth", type=positive_float, default=1.5, dest="max_rss_growth",
                   help="fail when a process's end/start RSS is above this (default 1.5)")
    p.add_argument("--data-dir", dest="data_dir",
                   help="the stack's data directory (default: var/soak/<UTC time>)")
    p.add_argument("--database-url", dest="database_url",
                   help="the live read model (default: SQLite in the data directory)")
    p.add_argument("--rebuild-database-url", dest="rebuild_database_url",
                   help="an empty database for the rebuild (default: SQLite in the data "
                        "directory)")
    p.add_argument("--json", help="also write the report as JSON to this file")
    p.set_defaults(func=cmd_soak)
