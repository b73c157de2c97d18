"""`onewindow bench-rebuild`: `onewindow rebuild` into SQLite and PostgreSQL against a
plain read of the same topics and against the live sink's row-at-a-time path (issue 15,
point 4).

1. Output records made by the pipeline's own code, without Kafka: realistic events
   (`producers.scenarios.ScenarioGenerator`, about 15 a case, in the order they happen,
   5 % sent twice, a few dated in the future and a few unreadable: dead letters) through
   `CaseProcessor` in batches of 1 to 500 records (as the worker's batches come), so
   cases have several superseding states; the activity records through `MaterialRouter`
   and `MaterialIndexer` (the links), 3 % of them again later (a restarted worker
   re-emits), which re-emits their links. Published once, keyed as the stream apps key
   them, to the four output topics under a fresh prefix.
2. Each round, in the same process tree on the same records: a plain confluent-kafka read
   of every partition to its end with the sink's consumer settings (the baseline), then
   `onewindow rebuild --jobs J` (each J of ``--jobs``, 1 and 2 by default) as a process
   into a fresh SQLite file and into a fresh PostgreSQL database (records/s from its own
   report: from its start, the broker's metadata, dropping and creating the model
   included, to its last commit).
3. In the first ``--sink-rounds`` rounds (1 by default), the row-at-a-time path: `onewindow
   sink --batch-size 5000` as a process into a fresh model of each database, until its
   stored offsets reach the ends (records/s from its first commit to its last: its start
   is not counted). That is the path `onewindow rebuild` took before issue 15 (the sink's
   `Ingestor` and unit of work, 5,000 records a transaction) and the live model every
   rebuilt model must equal (`onewindow_cli.soak`'s comparison: every table, every column
   but the commit times).

For every process: its CPU time per record (user and system, its threads and loading
processes included; a machine shared with other work changes it much less than the wall
time) and its peak resident memory (``VmHWM``; of the parent only with ``--jobs``). `--profile DIR` runs one more rebuild into each database
under cProfile and writes the top functions there. A local secured broker of its own
(or ONEWINDOW_KAFKA_BOOTSTRAP), a throwaway PostgreSQL cluster (or `--postgres-url`, a
server whose role may CREATE DATABASE). Speed is measured here, never asserted by a
timed test.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from sqlalchemy import select

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import provision
from onewindow.read_model.engine import make_engine
from onewindow.read_model.tables import OFFSETS
from onewindow.security.id_key import resolve_id_hash_key, with_new_key
from onewindow.security.id_protection import IdProtector
from onewindow.security.kafka_auth import STREAM, kafka_env, producer_config
from onewindow.topics import Topics
from onewindow_cli.bench.children import watch
from onewindow_cli.bench.reporting import loadavg, profile_summary
from onewindow_cli.local_postgres import LocalPostgres, create_database, drop_database
from onewindow_cli.soak import compare_models, dump_model, machine_facts
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from sinks.bootstrap import consumer_config
from sinks.migrations import upgrade
from stream_apps.case_processor import CaseProcessor
from stream_apps.materials_processor import MaterialIndexer, MaterialRouter
from stream_apps.records import InRecord, OutRecord

__all__ = ["BenchOptions", "make_outputs", "render", "run"]

#: records per transaction of the row-at-a-time path (the rebuild's batch before issue 15)
ROW_PATH_BATCH = 5000
DATABASES = ("sqlite", "postgresql")


@dataclass
class BenchOptions:
    events: int = 60_000
    rounds: int = 3
    seed: int = 2026
    out_dir: Path = Path("bench-results")
    postgres_url: str | None = None
    #: rounds that also run the live sink (the row-at-a-time path) into each database
    sink_rounds: int = 1
    #: ``onewindow rebuild --jobs J`` measured for each J (1: one process)
    jobs: tuple[int, ...] = (1, 2)
    profile_dir: Path | None = None


# --------------------------------------------------------------------------- the records


def make_outputs(settings: Settings, topics: Topics, events: int, seed: int
                 ) -> tuple[list[OutRecord], dict[str, int]]:
    """The output records of about ``events`` input events (module docstring, step 1),
    in the order the stream apps would publish them, and what went in."""
    codec = get_codec()
    registry = load_registry(settings.departments_file)
    ids = IdProtector.from_settings(settings)
    rng = random.Random(seed)
    gen = ScenarioGenerator(ScenarioConfig(seed=seed))
    flat: list[dict[str, Any]] = []
    cases = 0
    while len(flat) < events:
        flat.extend(gen.case())
        cases += 1
    flat.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    stream: list[tuple[str, bytes]] = []  # (department, value)
    future = datetime.now(UTC) + timedelta(days=3)
    for e in flat:
        stream.append((e["department"], codec.encode(e)))
        if rng.random() < 0.05:  # sent again, a little later
            stream.insert(len(stream) - rng.randint(0, min(200, len(stream) - 1)),
                          (e["department"], codec.encode(e)))
        if rng.random() < 0.003:  # dated in the future: FUTURE_TIMESTAMP
            bad = dict(e, event_id=f"{e['event_id']}-future", occurred_at=future)
            stream.append((e["department"], codec.encode(bad)))
        if rng.random() < 0.001:  # not Avro at all: UNDECODABLE
            stream.append((e["department"], b"\x00garbage"))
    proc = CaseProcessor(codec=codec, topics=topics, departments=registry.codes,
                         counters=registry.counter_codes,
                         calendar=load_calendar(settings.calendar_override_file), ids=ids)
    store: dict[str, bytes] = {}
    outputs: list[OutRecord] = []
    ts = 1_760_000_000_000
    i = 0
    while i < len(stream):
        n = rng.randint(1, 500)
        recs = []
        for j, (dept, value) in enumerate(stream[i:i + n]):
            key = None
            try:
                key = codec.decode(value)["case_id"].encode()
            except Exception:  # noqa: BLE001, S110 - the unreadable ones have no key
                pass
            recs.append(InRecord(topics.input(dept), 0, i + j, key, value, ts + i + j))
        res = proc.process(recs, lambda cid, _r: store.get(cid))
        for cid, (state, _r) in res.states.items():
            store[cid] = state
        outputs.extend(res.outputs)
        i += n
    # a restarted worker re-emits: 3 % of the activity records again, later
    placed = [(float(k), o) for k, o in enumerate(outputs)]
    activity = [k for k, o in enumerate(outputs) if o.topic == topics.case_activity]
    placed += [(rng.uniform(k + 0.5, len(outputs)), outputs[k])
               for k in rng.sample(activity, len(activity) * 3 // 100)]
    outputs = [o for _k, o in sorted(placed, key=lambda x: x[0])]
    router = MaterialRouter(codec=codec, index_topic=f"{topics.prefix}bench-index", ids=ids)
    acts = [InRecord(o.topic, 0, k, o.key, o.value, ts) for k, o in enumerate(outputs)
            if o.topic == topics.case_activity]
    routed = router.route(acts).outputs
    indexer = MaterialIndexer(codec=codec, links_topic=topics.material_links)
    buckets: dict[str, bytes] = {}
    for k in range(0, len(routed), 500):
        res = indexer.process([InRecord(o.topic, 0, k + j, o.key, o.value, ts)
                               for j, o in enumerate(routed[k:k + 500])],
                              lambda key, _r: buckets.get(key))
        for key, (bucket, _r) in res.buckets.items():
            buckets[key] = bucket
        outputs.extend(res.outputs)
    kinds = Counter(o.topic[len(topics.prefix):] for o in outputs)
    return outputs, {"input_events": len(stream), "cases": cases, **kinds}


def publish(settings: Settings, outputs: list[OutRecord]) -> None:
    prod = Producer({**producer_config(settings, STREAM), "linger.ms": 20,
                     "compression.type": "lz4", "enable.idempotence": True,
                     "queue.buffering.max.messages": 1_000_000})
    for o in outputs:
        while True:
            try:
                prod.produce(o.topic, o.value, o.key)
                break
            except BufferError:
                prod.poll(0.1)
        prod.poll(0)
    if prod.flush(120) != 0:
        raise RuntimeError("the output records were not all acknowledged")


# --------------------------------------------------------------------------- measurements


def _ends(settings: Settings, names: list[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer({**consumer_config(settings), "group.id": _group(settings)})
    try:
        md = consumer.list_topics(timeout=10)
        ends = {}
        for name in names:
            for p in md.topics[name].partitions:
                lo, hi = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                if hi > lo:
                    ends[(name, p)] = hi
        return ends
    finally:
        consumer.close()


def _group(settings: Settings) -> str:
    return f"{settings.topic_prefix}onewindow-sink-bench-{uuid.uuid4().hex}"


def plain_read(settings: Settings, names: list[str]) -> dict[str, Any]:
    """Every record of ``names`` from the beginning to the ends, with the sink's consumer
    settings and nothing else done: records, seconds from creating the consumer to the
    last record, CPU seconds of this process meanwhile (librdkafka's threads included)."""
    pending = _ends(settings, names)
    cpu, t0 = time.process_time(), time.perf_counter()
    consumer = Consumer({**consumer_config(settings), "group.id": _group(settings)})
    n = 0
    try:
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in pending])
        deadline = time.monotonic() + 1800
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 0.5):
                if msg.error() is None and msg.offset() < pending.get(
                        (msg.topic(), msg.partition()), -1):
                    n += 1
            for tp in consumer.position([TopicPartition(t, p) for t, p in pending]):
                if tp.offset >= pending[(tp.topic, tp.partition)]:
                    del pending[(tp.topic, tp.partition)]
                    consumer.pause([tp])
        if pending:
            raise RuntimeError(f"the read did not reach the end of {sorted(pending)}")
    finally:
        consumer.close()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu
    return {"records": n, "seconds": seconds, "rps": n / seconds, "cpu_s": cpu,
            "cpu_us_per_record": cpu / n * 1e6}


def _env(settings: Settings, url: str) -> dict[str, str]:
    return dict(os.environ, ONEWINDOW_TOPIC_PREFIX=settings.topic_prefix,
                ONEWINDOW_DATABASE_URL=url, **kafka_env(settings),
                ONEWINDOW_ID_HASH_KEY=resolve_id_hash_key(settings))


def _cpu(usage: Any, records: int) -> dict[str, float]:
    cpu = usage.ru_utime + usage.ru_stime
    return {"cpu_s": cpu, "cpu_us_per_record": cpu / records * 1e6}


_REPORT = re.compile(r"rebuilt from (\d+) records in ([0-9.]+)s")
_PHASE = re.compile(r"(\w+) ([0-9.]+)s")


def rebuild_process(settings: Settings, url: str, log: Path,
                    profile: Path | None = None, jobs: int = 1) -> dict[str, Any]:
    """``onewindow rebuild --jobs J`` into the model at ``url`` as a process: its own
    report of records, seconds and steps, its wall time, CPU time (its loading processes
    included) and peak resident memory (of the parent; with ``jobs`` above 1, the
    loading processes are not sampled)."""
    head = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
    t0 = time.perf_counter()
    with log.open("wb") as f:
        proc = subprocess.Popen([*head, "-m", "onewindow_cli", "rebuild", "--jobs", str(jobs)],
                                env=_env(settings, url), stdout=f, stderr=subprocess.STDOUT)
        code, usage, peak = watch(proc)
    wall = time.perf_counter() - t0
    text = log.read_text("utf-8", "replace")
    m = _REPORT.search(text)
    if code != 0 or m is None:
        raise RuntimeError(f"onewindow rebuild failed ({code}):\n{text[-3000:]}")
    records, seconds = int(m[1]), float(m[2])
    after = text[m.end():].splitlines()[1:2]  # "  prepare 0.01s, read_map 3.20s, ..."
    phases = {k: float(v) for k, v in _PHASE.findall(after[0])} if after else {}
    return {"records": records, "seconds": seconds, "rps": records / seconds,
            "wall_s": wall, **_cpu(usage, records), "max_rss_kib": peak, "phases": phases}


def sink_process(settings: Settings, url: str, log: Path,
                 ends: dict[tuple[str, int], int]) -> dict[str, Any]:
    """``onewindow sink --batch-size 5000`` into the empty model at ``url`` as a process,
    until its stored offsets reach ``ends`` (then SIGTERM): records/s from its first
    commit to its last (the records of the first commit not counted), CPU time per
    record (its start-up included, as a rebuild's is) and peak resident memory."""
    engine = make_engine(url)
    upgrade(engine)
    total = sum(ends.values())
    seen: list[tuple[float, int]] = []  # (time, records committed) at each change
    stopping: list[bool] = []

    def tick() -> None:
        with engine.connect() as conn:
            done = sum(conn.execute(select(OFFSETS.c.next_offset)).scalars())
        if done and (not seen or done != seen[-1][1]):
            seen.append((time.perf_counter(), done))
        if done >= total and not stopping:
            stopping.append(True)
            proc.send_signal(signal.SIGTERM)  # once: it finishes and exits 0

    with log.open("wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "onewindow_cli", "sink", "--batch-size",
                                 str(ROW_PATH_BATCH), "--metrics-port", "0"],
                                env=_env(settings, url), stdout=f, stderr=subprocess.STDOUT)
        try:
            code, usage, peak = watch(proc, tick, every=0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
            engine.dispose()
    if code != 0 or not seen or seen[-1][1] < total:
        raise RuntimeError(f"onewindow sink failed ({code}):\n"
                           f"{log.read_text('utf-8', 'replace')[-3000:]}")
    (first_t, first_n), (last_t, _) = seen[0], seen[-1]
    seconds = last_t - first_t
    if len(seen) < 2 or seconds <= 0:  # every record in its first commit: nothing to time
        raise RuntimeError(f"the sink wrote all {total:,} records in one commit: too few to "
                           "time it from its first commit to its last; give more --events")
    return {"records": total, "seconds": seconds, "rps": (total - first_n) / seconds,
            **_cpu(usage, total), "max_rss_kib": peak}




# --------------------------------------------------------------------------- the run




class _Databases:
    """A fresh model per measurement: a SQLite file under ``tmp`` or a database on the
    PostgreSQL server; its dump kept when asked, then removed."""

    def __init__(self, tmp: Path, pg_server: str) -> None:
        self.tmp, self.pg_server = tmp, pg_server

    def run(self, kind: str, name: str, measure: Any, dumps: dict[str, Any] | None
            ) -> dict[str, Any]:
        db = None
        if kind == "sqlite":
            url = f"sqlite:///{self.tmp / f'{name}.db'}"
        else:
            db = f"bench_{name}_{uuid.uuid4().hex[:6]}".replace("-", "_")
            url = create_database(self.pg_server, db)
        try:
            result = measure(url)
            if dumps is not None:
                engine = make_engine(url)
                dumps[name] = dump_model(engine)
                engine.dispose()
        finally:
            if db is not None:
                drop_database(self.pg_server, db)
            for p in self.tmp.glob(f"{name}.db*"):
                p.unlink()
        return result


def _rounds(settings: Settings, dbs: _Databases, opts: BenchOptions, tmp: Path
            ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    names = list(Topics(settings.topic_prefix).outputs())
    ends = _ends(settings, names)
    rounds: list[dict[str, Any]] = []
    dumps: dict[str, Any] = {}
    for r in range(opts.rounds):
        row: dict[str, Any] = {"loadavg_before": loadavg()}
        row["plain_read"] = plain_read(settings, names)
        keep = dumps if r == 0 else None
        for jobs in opts.jobs:
            for kind in DATABASES:
                key = _key(kind, jobs)
                row[key] = dbs.run(kind, key, lambda url, k=key, r=r, j=jobs: rebuild_process(
                    settings, url, tmp / f"rebuild-{k}-{r}.log", jobs=j), keep)
        if r < opts.sink_rounds:
            for kind in DATABASES:
                row[f"sink_{kind}"] = dbs.run(kind, f"sink_{kind}", lambda url, k=kind, r=r:
                                              sink_process(settings, url,
                                                           tmp / f"sink-{k}-{r}.log", ends),
                                              keep)
        row["loadavg_after"] = loadavg()
        rounds.append(row)
    return rounds, dumps


def _key(kind: str, jobs: int) -> str:
    return kind if jobs == 1 else f"{kind}_jobs{jobs}"


def _medians(rounds: list[dict[str, Any]], field: str) -> dict[str, float]:
    keys = [k for k, v in rounds[0].items() if isinstance(v, dict) and field in v]
    return {k: statistics.median(r[k][field] for r in rounds if k in r) for k in keys}


def run(settings: Settings, opts: BenchOptions) -> dict[str, Any]:
    """Every measurement (module docstring); returns the summary, also written as JSON
    to ``opts.out_dir``."""
    settings = with_new_key(settings)  # an ephemeral ID hash key for this run
    tmp = Path(tempfile.mkdtemp(prefix="onewindow-bench-rebuild-"))
    broker = pg = None
    facts = machine_facts()
    profiles: dict[str, str] = {}
    try:
        ks = settings
        if os.environ.get("ONEWINDOW_KAFKA_BOOTSTRAP") is None:
            broker = LocalKafka(data_dir=tmp / "kafka", port=free_port(),
                                controller_port=free_port(), version=settings.kafka_version,
                                cache_dir=settings.cache_dir,
                                security=settings.kafka_security_protocol,
                                credentials_dir=tmp / "credentials")
            broker.start()
            ks = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap,
                                             "kafka_credentials_dir": tmp / "credentials"})
        pg_server = opts.postgres_url
        if pg_server is None:
            pg = LocalPostgres()
            pg_server = pg.start()
        dbs = _Databases(tmp, pg_server)
        prefix = f"benchrb{uuid.uuid4().hex[:6]}."
        ks = ks.model_copy(update={"topic_prefix": prefix})
        provision(ks, load_registry(settings.departments_file).codes)
        t0 = time.perf_counter()
        outputs, made = make_outputs(ks, Topics(prefix), opts.events, opts.seed)
        made_s = time.perf_counter() - t0
        publish(ks, outputs)
        rounds, dumps = _rounds(ks, dbs, opts, tmp)
        if opts.profile_dir is not None:
            opts.profile_dir.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for kind in DATABASES:
                prof = opts.profile_dir / f"rebuild-{kind}-{stamp}.prof"
                dbs.run(kind, f"profiled_{kind}", lambda url, k=kind, p=prof: rebuild_process(
                    ks, url, tmp / f"profile-{k}.log", profile=p), None)
                text = prof.with_suffix(".txt")
                text.write_text(profile_summary(prof, 35))
                profiles[kind] = str(text)
    finally:
        if pg is not None:
            pg.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    equal = {}
    for kind in DATABASES:
        for jobs in opts.jobs:
            if f"sink_{kind}" in dumps:
                diff = compare_models(dumps[f"sink_{kind}"], dumps[_key(kind, jobs)])
                equal[_key(kind, jobs)] = {t: d.equal for t, d in diff.items()}
    med = _medians(rounds, "rps")
    summary: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": facts,
        "events": opts.events, "rounds": opts.rounds, "sink_rounds": opts.sink_rounds,
        "partitions": settings.partitions, "records": made, "records_total": len(outputs),
        "generation_s": made_s, "median_rps": med,
        "ratio_to_plain": {k: v / med["plain_read"] for k, v in med.items()},
        "median_cpu_us_per_record": _medians(rounds, "cpu_us_per_record"),
        "max_rss_kib": {k: max(r[k]["max_rss_kib"] for r in rounds if k in r)
                        for k in _medians(rounds, "max_rss_kib")},
        "jobs": list(opts.jobs),
        "median_phases_s": {k: {p: statistics.median(r[k]["phases"].get(p, 0.0)
                                                     for r in rounds)
                                for p in rounds[0][k]["phases"]}
                            for k in (_key(d, j) for d in DATABASES for j in opts.jobs)},
        "models_equal_to_the_sink": equal, "profiles": profiles,
        "runs": rounds, "loadavg_at_end": loadavg(),
    }
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    path = opts.out_dir / f"bench-rebuild-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2, default=str))
    summary["path"] = str(path)
    return summary


def render(summary: dict[str, Any]) -> str:
    """The table `onewindow bench-rebuild` prints: records/s (wall), its ratio to the
    plain read, CPU µs per record (user + system of the process, its threads included:
    what a loaded machine changes much less) and peak resident memory."""
    med, made = summary["median_rps"], summary["records"]
    cpu, rss = summary["median_cpu_us_per_record"], summary["max_rss_kib"]
    kinds = ", ".join(f"{v:,} {k.removeprefix('onewindow.')}" for k, v in sorted(made.items())
                      if k.startswith("onewindow."))
    loads = [r["loadavg_before"][:1] + r["loadavg_after"][:1] for r in summary["runs"]]
    lines = [f"rebuild of {summary['records_total']:,} output records ({kinds}; "
             f"{made['cases']:,} cases, {made['input_events']:,} input events), medians of "
             f"{summary['rounds']} rounds (the sink: {summary['sink_rounds']}):",
             f"  {'':40} {'records/s':>10} {'x plain':>8} {'CPU us/rec':>10} {'peak MiB':>9}"]
    names = {"plain_read": "plain confluent-kafka read"}
    for kind, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        for jobs in summary["jobs"]:
            names[_key(kind, jobs)] = f"onewindow rebuild into {label}" + (
                f", --jobs {jobs}" if jobs > 1 else "")
    names.update({"sink_sqlite": "row at a time (the sink), SQLite",
                  "sink_postgresql": "row at a time (the sink), PostgreSQL"})
    for key, name in names.items():
        if key not in med:
            continue
        mib = f"{rss[key] / 1024:,.0f}" if key in rss else "-"
        lines.append(f"  {name:40} {med[key]:>10,.0f} {summary['ratio_to_plain'][key]:>8.3f} "
                     f"{cpu[key]:>10,.1f} {mib:>9}")
    for kind in DATABASES:
        if f"sink_{kind}" in med:
            lines.append(f"  rebuild into {kind} (one process) / the sink: "
                         f"{med[kind] / med[f'sink_{kind}']:.1f} x the records/s, "
                         f"{cpu[f'sink_{kind}'] / cpu[kind]:.1f} x less CPU per record")
    for kind, steps in summary["median_phases_s"].items():
        lines.append(f"  steps of the rebuild ({kind}): "
                     + ", ".join(f"{k} {v:.2f}s" for k, v in steps.items()))
    for kind, tables in summary["models_equal_to_the_sink"].items():
        bad = [t for t, ok in tables.items() if not ok]
        lines.append(f"  rebuilt model ({kind}) equals the sink's: "
                     f"{'yes' if not bad else 'NO: ' + ', '.join(bad)}")
    lines.append(f"  load average (1 min) before/after each round: {loads}")
    for kind, path in summary["profiles"].items():
        lines.append(f"  profile ({kind}): {path}")
    lines.append(f"results: {summary['path']}")
    return "\n".join(lines)
