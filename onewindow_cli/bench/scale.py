"""`onewindow bench --scale N`: memory, disk and time at a city's volume (issue 15,
point 6; docs/benchmarks.md, *A year of a city*).

N cases of scenario traffic (`producers.scenarios`, about 15 events a case, seeded: the
same N and seed give the same events), accepted over one calendar year (2025: the
acceptances ``365 days / N`` apart, so every event lies in the past), are loaded in
``steps`` equal steps into one generation of topics under a fresh prefix. Each step:

1. **load**: its cases' events generated and published to the input topics as
   departments send them (`onewindow_cli.bench.reprocess.add_records`: in order, 5 %
   sent again, a few dated in the future or unreadable);
2. **reprocess**: ``onewindow reprocess`` of that generation into itself (fold, route,
   index; it continues from the offsets the previous step committed, its scratch state
   restored from the changelogs), as a process;
3. **hold**: the live case-state worker (``onewindow worker``) and materials worker
   (``onewindow materials-worker``) of the generation started on their RocksDB
   directories (kept from step to step, as a restarted machine keeps them): each
   restores what the changelogs hold beyond its local state and continues from the
   committed offsets. Once both answer ``/readyz`` they hold every case loaded so far;
   their resident (RSS) and proportional (PSS) memory is sampled for ``settle`` seconds
   (`/proc/<pid>/smaps_rollup`; the case-state worker's step process included), with
   the table memory in effect (``onewindow_table_memory_*`` of their ``/metrics``); then
   they are stopped (SIGTERM);
4. **disk**: the RocksDB directories of both workers, and the broker's log directories of
   this generation's topics (the directories ``log.dirs`` names, when they are on this
   machine: allocated blocks, as ``du`` counts), by kind of topic.

After the last step, ``onewindow rebuild`` (bulk) into a fresh PostgreSQL database (a
throwaway cluster, `onewindow_cli.local_postgres`, or ``--postgres-url``), and that
database's size (``pg_database_size``).

The report: per step the cases held, memory, disk and each stage's rate; per million
cases the disk, memory extrapolated along the line through the last two steps, and the
time a year of a city takes (``YEAR_EVENTS`` input events) at the measured rates:
reprocess, rebuild and a worker's restore. A local secured broker of its own (or
ONEWINDOW_KAFKA_BOOTSTRAP). Speed is measured here, never asserted by a timed test.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import free_port
from onewindow.provision import provision
from onewindow.read_model.engine import make_engine
from onewindow.security.id_key import with_new_key
from onewindow.security.kafka_auth import ADMIN, STREAM, client_config
from onewindow.topics import Topics
from onewindow_cli.bench.case_state import _Child
from onewindow_cli.bench.rebuild import rebuild_process
from onewindow_cli.bench.reporting import loadavg
from onewindow_cli.bench.reprocess import (
    Inputs,
    add_records,
    local_broker,
    publish,
    reprocess_process,
)
from onewindow_cli.local_postgres import LocalPostgres, create_database, drop_database
from onewindow_cli.soak import machine_facts
from producers.scenarios import ScenarioConfig, ScenarioGenerator

__all__ = ["YEAR_EVENTS", "ScaleOptions", "render", "run"]

#: input events a year of a large city (issue 15)
YEAR_EVENTS = 500_000_000
#: the cases a year's figures are also given for (issue 15: 1,000,000 cases held)
TARGET_CASES = 1_000_000
#: the year the generated cases are accepted in, spread evenly over it
YEAR_START = datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
YEAR_MINUTES = 365 * 24 * 60
#: cases generated and published at a time (bounds the bench's own memory)
CHUNK_CASES = 5_000


@dataclass
class ScaleOptions:
    cases: int
    steps: int = 2
    seed: int = 2028
    jobs: int = 1
    batch_size: int = 10_000
    #: seconds the workers' memory is sampled once both are ready
    settle: float = 10.0
    #: a PostgreSQL server whose role may CREATE DATABASE (None: a throwaway cluster)
    postgres_url: str | None = None
    out_dir: Path = Path("bench-results")
    #: seconds to wait for a worker to restore and answer /readyz
    ready_timeout: float = 7200.0


# --------------------------------------------------------------------------- measuring


def _du(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (``du``: blocks, so sparse index files count
    what they use), 0 when it does not exist."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass  # a segment deleted meanwhile
    return total


def broker_log_dirs(settings: Settings) -> list[Path]:
    """The ``log.dirs`` of every broker of the cluster (as the admin principal,
    DescribeConfigs) that exist on this machine; [] when none is readable here."""
    admin = AdminClient(client_config(settings, ADMIN))
    try:
        brokers = admin.describe_cluster(request_timeout=30).result().nodes
        res = [ConfigResource(ResourceType.BROKER, str(b.id)) for b in brokers]
        dirs: list[Path] = []
        for fut in admin.describe_configs(res, request_timeout=30).values():
            conf = fut.result()
            entry = conf.get("log.dirs") or conf.get("log.dir")
            if entry is not None and entry.value:
                dirs += [Path(d) for d in entry.value.split(",")]
    except KafkaException:
        return []
    return [d for d in dirs if d.is_dir()]


def _topic_kind(topic: str, topics: Topics) -> str:
    if ".dept." in f".{topic}" or topic.endswith(".events"):
        return "inputs"
    if topic.endswith("-changelog"):
        return "changelogs"
    if topic in topics.outputs():
        return "outputs"
    return "material-index and internal"


def broker_disk(dirs: list[Path], topics: Topics) -> dict[str, int] | None:
    """Bytes on disk of the partitions of the generation's topics (directories
    ``<topic>-<partition>`` whose topic starts with its prefix), by kind and ``total``;
    None when no log directory is on this machine."""
    if not dirs:
        return None
    out: dict[str, int] = {"total": 0}
    for d in dirs:
        for part in d.iterdir():
            if not part.is_dir() or not part.name.startswith(topics.prefix):
                continue
            kind = _topic_kind(part.name.rsplit("-", 1)[0], topics)
            size = _du(part)
            out[kind] = out.get(kind, 0) + size
            out["total"] += size
    return out


def _ends(settings: Settings, topics: list[str]) -> int:
    """The sum of the end offsets of every partition of ``topics``."""
    c = Consumer({**client_config(settings, STREAM), "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        md = c.list_topics(timeout=30)
        return sum(c.get_watermark_offsets(TopicPartition(t, p), timeout=30)[1]
                   for t in topics if t in md.topics for p in md.topics[t].partitions)
    finally:
        c.close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - loopback
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (OSError, urllib.error.URLError):
        return 0, ""


def table_memory(port: int) -> dict[str, float]:
    """The worker's ``onewindow_table_memory_budget_bytes`` and
    ``onewindow_table_memory_bytes{part}`` from its /metrics, in MiB ({} when absent)."""
    status, text = _get(f"http://127.0.0.1:{port}/metrics")
    out: dict[str, float] = {}
    if status != 200:
        return out
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "onewindow_table_memory_budget_bytes":
                out["budget"] = s.value / 2**20
            elif s.name == "onewindow_table_memory_bytes":
                out[s.labels.get("part", "?")] = s.value / 2**20
    return out


class _Live(_Child):
    """A live worker of the generation (``worker`` or ``materials-worker``) on a data
    directory of its own, kept from step to step."""

    def __init__(self, ks: Settings, prefix: str, data_dir: Path, command: str) -> None:
        self.port = free_port()
        self.name = f"scale-{command}"
        super().__init__(ks, prefix, data_dir, ["onewindow_cli", command, "--name", self.name,
                                                "--web-port", str(self.port)],
                         f"{command}.log")

    def ready(self) -> bool:
        if not self.alive():
            tail = self.log.read_text("utf-8", "replace")[-3000:]
            raise RuntimeError(f"{self.args[1]} exited before it was ready:\n{tail}")
        return _get(f"http://127.0.0.1:{self.port}/readyz")[0] == 200

    def rocksdb_bytes(self) -> int:
        return _du(self.data_dir / "stream" / self.name)


def _hold(ks: Settings, prefix: str, tmp: Path, opts: ScaleOptions) -> dict[str, Any]:
    """Start both live workers, time each until ready, sample their memory, stop them."""
    workers = {"case_state": _Live(ks, prefix, tmp / "worker", "worker"),
               "materials": _Live(ks, prefix, tmp / "materials", "materials-worker")}
    out: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        for w in workers.values():
            w.start()
        pending = dict(workers)
        deadline = time.monotonic() + opts.ready_timeout
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready within {opts.ready_timeout:.0f}s: {list(pending)}")
            for name, w in list(pending.items()):
                if w.ready():
                    out[f"{name}_ready_s"] = time.perf_counter() - t0
                    del pending[name]
            time.sleep(0.5)
        samples: dict[str, list[dict[str, float]]] = {n: [] for n in workers}
        end = time.monotonic() + opts.settle
        while True:
            for name, w in workers.items():
                samples[name].append(w.memory_mib())
            if time.monotonic() >= end:
                break
            time.sleep(1.0)
        for name, w in workers.items():
            last = samples[name][-1]
            rss = [s.get("main_rss", 0.0) + s.get("child_rss", 0.0) for s in samples[name]]
            out[f"{name}_memory_mib"] = {
                **last, "rss": rss[-1], "rss_max": max(rss),
                "pss": last.get("main_pss", 0.0) + last.get("child_pss", 0.0)}
            out[f"{name}_table_memory_mib"] = table_memory(w.port)
    finally:
        for w in workers.values():
            w.kill(signal.SIGTERM)
    for name, w in workers.items():
        out[f"{name}_rocksdb_bytes"] = w.rocksdb_bytes()
    return out


# --------------------------------------------------------------------------- the run


def _load(ks: Settings, topics: Topics, gen: ScenarioGenerator, rng: random.Random,
          cases: int) -> dict[str, Any]:
    """Generate and publish ``cases`` more cases, a chunk at a time."""
    records = made = 0
    t0 = time.perf_counter()
    gen_s = 0.0
    while made < cases:
        n = min(CHUNK_CASES, cases - made)
        g0 = time.perf_counter()
        chunk = Inputs(cases=n)
        add_records(chunk, [e for case in gen.cases(n) for e in case], rng)
        gen_s += time.perf_counter() - g0
        publish(ks, topics, chunk)
        records += len(chunk.records)
        made += n
    seconds = time.perf_counter() - t0
    return {"cases": cases, "records": records, "seconds": seconds,
            "generate_s": gen_s, "eps": records / seconds}


def _pg_size(url: str) -> int:
    """Bytes of the database at ``url`` (``pg_database_size``: tables, indexes, TOAST)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())"))
                       .scalar_one())
    finally:
        engine.dispose()


def run(settings: Settings, opts: ScaleOptions) -> dict[str, Any]:
    """Every step and the rebuild (module docstring); returns the summary, also written as
    JSON to ``opts.out_dir``."""
    if opts.cases < opts.steps or opts.steps < 1:
        raise ValueError("--scale needs at least one case a step")
    settings = with_new_key(settings)  # an ephemeral ID hash key for this run
    tmp = Path(tempfile.mkdtemp(prefix="onewindow-bench-scale-"))
    broker = pg = None
    facts = machine_facts()
    steps: list[dict[str, Any]] = []
    rebuilt: dict[str, Any] = {}
    try:
        broker, ks = local_broker(settings, tmp)
        prefix = f"benchsc{uuid.uuid4().hex[:6]}."
        ks = ks.model_copy(update={"topic_prefix": prefix})
        codes = load_registry(settings.departments_file).codes
        provision(ks, codes)
        topics = Topics(prefix)
        log_dirs = broker_log_dirs(ks)
        gen = ScenarioGenerator(ScenarioConfig(seed=opts.seed, start=YEAR_START,
                                               spacing_minutes=YEAR_MINUTES / opts.cases))
        rng = random.Random(opts.seed)
        changelogs = [topics.case_fold_changelog, topics.material_index_changelog]
        held = 0
        for i in range(1, opts.steps + 1):
            more = opts.cases * i // opts.steps - held
            row: dict[str, Any] = {"loadavg_before": loadavg()}
            row["load"] = _load(ks, topics, gen, rng, more)
            held += more
            row["cases_held"] = held
            row["reprocess"] = reprocess_process(ks, prefix, opts.jobs, opts.batch_size,
                                                 tmp / f"reprocess-{i}.log")
            before = _ends(ks, changelogs)  # what the workers restore beyond last step's
            row["hold"] = _hold(ks, prefix, tmp, opts)
            row["changelog_records"] = _ends(ks, changelogs)
            row["restored_records"] = row["changelog_records"] - (
                steps[-1]["changelog_records"] if steps else 0)
            row["changelog_written_by_workers"] = row["changelog_records"] - before
            row["broker_bytes"] = broker_disk(log_dirs, topics)
            row["loadavg_after"] = loadavg()
            steps.append(row)
        pg_server = opts.postgres_url
        if pg_server is None:
            pg = LocalPostgres()
            pg_server = pg.start()
        db = f"bench_scale_{uuid.uuid4().hex[:6]}"
        url = create_database(pg_server, db)
        try:
            empty = _pg_size(url)
            rebuilt = rebuild_process(ks, url, tmp / "rebuild.log")
            rebuilt["database_bytes_empty"] = empty
            rebuilt["database_bytes"] = _pg_size(url)
        finally:
            drop_database(pg_server, db)
    finally:
        if pg is not None:
            pg.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = summarise(steps, rebuilt, opts, facts, settings)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    path = opts.out_dir / f"bench-scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2, default=str))
    summary["path"] = str(path)
    return summary


# --------------------------------------------------------------------------- the report


def _line(xs: list[float], ys: list[float], at: float) -> float:
    """``y`` at ``at`` on the line through the last two points (flat with one)."""
    if len(xs) < 2 or xs[-1] == xs[-2]:
        return ys[-1]
    slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return ys[-1] + slope * (at - xs[-1])


def summarise(steps: list[dict[str, Any]], rebuilt: dict[str, Any], opts: ScaleOptions,
              facts: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The summary of a run: each step's figures (``steps``), totals, rates of each stage,
    per million cases, and the extrapolations (module docstring)."""
    last = steps[-1]
    cases = last["cases_held"]
    events = sum(s["load"]["records"] for s in steps)
    rp_records = sum(s["reprocess"]["records"] for s in steps)
    rp_seconds = sum(s["reprocess"]["seconds"] for s in steps)
    stages: dict[str, dict[str, float]] = {}
    for s in steps:
        for name, secs in s["reprocess"]["stages_s"].items():
            st = stages.setdefault(name, {"records": 0, "seconds": 0.0})
            st["records"] += s["reprocess"]["stage_records"][name]
            st["seconds"] += secs
    for st in stages.values():
        st["rps"] = st["records"] / st["seconds"] if st["seconds"] else 0.0
    restored = sum(s["restored_records"] for s in steps)
    restore_s = sum(max(s["hold"]["case_state_ready_s"], s["hold"]["materials_ready_s"])
                    for s in steps)
    rates = {
        "load_eps": events / sum(s["load"]["seconds"] for s in steps),
        "reprocess_eps": rp_records / rp_seconds,
        "reprocess_stages": stages,
        "restore_rps": restored / restore_s if restore_s else 0.0,
        "rebuild_rps": rebuilt.get("rps", 0.0),
    }
    held = [float(s["cases_held"]) for s in steps]
    memory: dict[str, Any] = {"table_memory_mib_setting": settings.table_memory_mib}
    for w in ("case_state", "materials"):
        for k in ("rss", "pss"):
            ys = [s["hold"][f"{w}_memory_mib"][k] for s in steps]
            memory[f"{w}_{k}_mib"] = ys[-1]
            memory[f"{w}_{k}_mib_at_target"] = _line(held, ys, TARGET_CASES)
            memory[f"{w}_{k}_mib_per_100k_cases"] = (
                _line(held, ys, held[-1] + 100_000) - ys[-1]) if len(ys) > 1 else None
        memory[f"{w}_table_memory_mib"] = last["hold"][f"{w}_table_memory_mib"]
    per_m = 1e6 / cases

    def sizes(step: dict[str, Any]) -> dict[str, int]:
        out = {"case_state_rocksdb": step["hold"]["case_state_rocksdb_bytes"],
               "materials_rocksdb": step["hold"]["materials_rocksdb_bytes"]}
        out.update({f"broker_{k}": v for k, v in (step["broker_bytes"] or {}).items()})
        return out

    disk = {**sizes(last), "postgresql": rebuilt.get("database_bytes", 0)}
    # per million cases: what each more case adds (between the last two steps; a
    # fresh database's own size taken off PostgreSQL's), not the fixed overheads
    per_million = {k: v * per_m for k, v in disk.items()}
    if len(steps) > 1:
        first, span = sizes(steps[-2]), cases - steps[-2]["cases_held"]
        per_million.update({k: (v - first.get(k, 0)) * 1e6 / span
                            for k, v in sizes(last).items()})
    per_million["postgresql"] = (disk["postgresql"] - rebuilt.get("database_bytes_empty", 0)
                                 ) * per_m
    outputs_per_event = rebuilt.get("records", 0) / events if events else 0.0
    changelog_per_case = last["changelog_records"] / cases
    year = {
        "events": YEAR_EVENTS,
        "reprocess_s": YEAR_EVENTS / rates["reprocess_eps"],
        "rebuild_s": (YEAR_EVENTS * outputs_per_event / rates["rebuild_rps"]
                      if rates["rebuild_rps"] else None),
        "events_per_case": events / cases,
        "cases": YEAR_EVENTS / (events / cases),
    }
    year["total_s"] = year["reprocess_s"] + (year["rebuild_s"] or 0.0)
    year["disk_bytes"] = {k: v * year["cases"] / 1e6 for k, v in per_million.items()}
    target = {"cases": TARGET_CASES, "events": TARGET_CASES * events / cases,
              "reprocess_s": TARGET_CASES * events / cases / rates["reprocess_eps"],
              "restore_s": (TARGET_CASES * changelog_per_case / rates["restore_rps"]
                            if rates["restore_rps"] else None),
              "case_state_rss_mib": memory["case_state_rss_mib_at_target"],
              "met_500_mb": memory["case_state_rss_mib_at_target"] * 2**20 < 500e6}
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": facts,
        "cases": cases, "steps_count": opts.steps, "events": events,
        "partitions": settings.partitions, "jobs": opts.jobs, "batch_size": opts.batch_size,
        "seed": opts.seed, "rates": rates, "memory": memory,
        "disk_bytes": disk, "disk_bytes_per_million_cases": per_million,
        "rebuild": rebuilt, "outputs_per_event": outputs_per_event,
        "changelog_records_per_case": changelog_per_case,
        "at_target_cases": target, "year": year, "steps": steps,
    }


def _mib(b: float) -> str:
    return f"{b / 2**20:,.1f} MiB" if b < 2**30 * 10 else f"{b / 2**30:,.1f} GiB"


def _dur(s: float | None) -> str:
    if s is None:
        return "n/a"
    return f"{s:,.0f} s" if s < 3600 else f"{s / 3600:,.1f} h ({s / 86400:,.1f} days)"


def render(summary: dict[str, Any]) -> str:
    """The one table `onewindow bench --scale` prints."""
    r, mem, y, t = summary["rates"], summary["memory"], summary["year"], \
        summary["at_target_cases"]
    lines = [f"a year of a city: {summary['cases']:,} cases, {summary['events']:,} input "
             f"records in {summary['steps_count']} step(s), {summary['partitions']} "
             f"partitions, reprocess --jobs {summary['jobs']}, table memory "
             f"{mem['table_memory_mib_setting']} MiB a worker (ONEWINDOW_TABLE_MEMORY_MIB)",
             f"  {'cases held':>10} {'reprocess ev/s':>14} {'ready s':>8} "
             f"{'case-state RSS':>14} {'PSS':>7} {'materials RSS':>13} "
             f"{'RocksDB':>10} {'broker':>10} {'load':>10}"]
    for s in summary["steps"]:
        h = s["hold"]
        broker = s["broker_bytes"]["total"] if s["broker_bytes"] else None
        load = f"{s['loadavg_before'][:1][0] if s['loadavg_before'] else '?'}-" \
               f"{s['loadavg_after'][:1][0] if s['loadavg_after'] else '?'}"
        lines.append(
            f"  {s['cases_held']:>10,} {s['reprocess']['eps']:>14,.0f} "
            f"{max(h['case_state_ready_s'], h['materials_ready_s']):>8.1f} "
            f"{h['case_state_memory_mib']['rss']:>10,.0f} MiB "
            f"{h['case_state_memory_mib']['pss']:>7,.0f} "
            f"{h['materials_memory_mib']['rss']:>9,.0f} MiB "
            f"{_mib(h['case_state_rocksdb_bytes'] + h['materials_rocksdb_bytes']):>10} "
            f"{_mib(broker) if broker is not None else 'n/a':>10} {load:>10}")
    st = ", ".join(f"{n} {v['rps']:,.0f}/s" for n, v in r["reprocess_stages"].items())
    lines += [
        f"  rates: load {r['load_eps']:,.0f} events/s; reprocess {r['reprocess_eps']:,.0f} "
        f"input events/s ({st}); workers' restore {r['restore_rps']:,.0f} changelog "
        f"records/s; rebuild into PostgreSQL {r['rebuild_rps']:,.0f} records/s "
        f"({summary['outputs_per_event']:.2f} an input event)",
        "  disk per million more cases: " + ", ".join(
            f"{k.replace('_', ' ')} {_mib(v)}"
            for k, v in summary["disk_bytes_per_million_cases"].items()),
    ]
    for w in ("case_state", "materials"):
        per = mem[f"{w}_rss_mib_per_100k_cases"]
        tm = mem[f"{w}_table_memory_mib"]
        lines.append(
            f"  {w.replace('_', '-')} worker: {mem[f'{w}_rss_mib']:,.0f} MiB resident "
            f"({mem[f'{w}_pss_mib']:,.0f} proportional) holding {summary['cases']:,} cases"
            + (f", {per:+,.1f} MiB per 100,000 cases" if per is not None else "")
            + f"; at {TARGET_CASES:,} cases {mem[f'{w}_rss_mib_at_target']:,.0f} MiB"
            + (f"; table memory {tm.get('budget', 0):,.0f} MiB budget, "
               + ", ".join(f"{k} {v:,.1f}" for k, v in tm.items() if k != "budget")
               if tm else ""))
    lines += [
        f"  {TARGET_CASES:,} cases ({t['events']:,.0f} events): reprocess {_dur(t['reprocess_s'])}, "
        f"workers' restore from the changelogs {_dur(t['restore_s'])}, case-state worker "
        f"{t['case_state_rss_mib']:,.0f} MiB resident (target under 500 MB: "
        f"{'met' if t['met_500_mb'] else 'not met'}, extrapolated)",
        f"  a year, {y['events']:,} events ({y['cases']:,.0f} cases): reprocess "
        f"{_dur(y['reprocess_s'])}, rebuild {_dur(y['rebuild_s'])}, in all "
        f"{_dur(y['total_s'])} at these rates; disk "
        + ", ".join(f"{k.replace('_', ' ')} {_mib(v)}" for k, v in y["disk_bytes"].items()
                    if not k.startswith("broker_") or k == "broker_total"),
        f"results: {summary['path']}",
    ]
    return "\n".join(lines)
