"""`onewindow bench-reprocess`: `onewindow reprocess` against a plain read of the same
input topics and against the pure step alone (issue 15, point 3; docs/benchmarks.md).

1. Input records as departments send them: realistic events
   (`producers.scenarios.ScenarioGenerator`, about 15 a case) in the order they happen,
   5 % sent again a little later, a few dated in the future and a few unreadable (dead
   letters), published once to the input topics under a fresh prefix, keyed by
   ``case_id`` and placed by murmur2 (the SDK's settings, signed in as the gateway).
2. Each round, on the same records:
   * a plain confluent-kafka read of every input partition to its end, signed in as the
     stream principal, nothing done with the records (from creating the consumer);
   * the pure step: `CaseProcessor` in this process over the same records in batches of
     ``--batch-size`` in the order a consumer of one partition group hands them over,
     a dict as the table (CPU time: `time.process_time`);
   * ``onewindow reprocess --to-prefix <fresh generation> --jobs J`` as a process for each
     J of ``--jobs``: input records per second from its own report (from its start, the
     broker's metadata included, to its last commit, all three stages), its CPU time (its
     processes included) and peak resident memory (of the parent).
3. ``--profile DIR``: one more ``reprocess --jobs 1`` under cProfile, its top functions
   written to DIR.

A local secured broker of its own (or ONEWINDOW_KAFKA_BOOTSTRAP). Speed is measured here,
never asserted by a timed test; the run fails unless every reprocess counted the same
outcomes (applied, duplicate, dead-lettered) as the pure step.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from onewindow.calendar_source import load_calendar
from onewindow.cli_options import add_common, positive_int, settings_from
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.errors import OneWindowError
from onewindow.inputs import INPUT_PRODUCER_CONFIG
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import provision
from onewindow.security.id_key import resolve_id_hash_key, with_new_key
from onewindow.security.id_protection import IdProtector
from onewindow.security.kafka_auth import GATEWAY, STREAM, client_config, kafka_env, producer_config
from onewindow.topics import Topics, partition_for
from onewindow_cli.bench.children import watch
from onewindow_cli.bench.reporting import loadavg, profile_summary
from onewindow_cli.soak import machine_facts
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from stream_apps.case_processor import CaseProcessor
from stream_apps.records import InRecord

__all__ = ["BenchOptions", "Inputs", "add_records", "local_broker", "make_inputs", "publish",
           "register", "render", "reprocess_process", "run"]


@dataclass
class BenchOptions:
    events: int = 100_000
    rounds: int = 3
    seed: int = 2027
    jobs: tuple[int, ...] = (1, 2)
    batch_size: int = 10_000
    out_dir: Path = Path("bench-results")
    profile_dir: Path | None = None


@dataclass
class Inputs:
    """The input records: ``(department, key, value)`` in the order sent."""

    records: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    cases: int = 0


# --------------------------------------------------------------------------- the records


def make_inputs(events: int, seed: int) -> Inputs:
    """About ``events`` input records (module docstring, step 1)."""
    rng = random.Random(seed)
    gen = ScenarioGenerator(ScenarioConfig(seed=seed))
    flat: list[dict[str, Any]] = []
    out = Inputs()
    while len(flat) < events:
        flat.extend(gen.case())
        out.cases += 1
    add_records(out, flat, rng)
    return out


def add_records(out: Inputs, flat: list[dict[str, Any]], rng: random.Random) -> None:
    """Append the events ``flat`` (whole cases) to ``out.records`` as departments send
    them: in the order they happen, 5 % sent again a little later, 0.3 % again dated in
    the future, 0.1 % unreadable records beside them (module docstring, step 1)."""
    codec = get_codec()
    flat.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    future = datetime.now(UTC) + timedelta(days=3)
    recs = out.records
    for e in flat:
        key = e["case_id"].encode()
        recs.append((e["department"], key, codec.encode(e)))
        if rng.random() < 0.05:  # sent again, a little later
            recs.insert(len(recs) - rng.randint(0, min(200, len(recs) - 1)), recs[-1])
        if rng.random() < 0.003:  # dated in the future: FUTURE_TIMESTAMP
            bad = dict(e, event_id=f"{e['event_id']}-future", occurred_at=future)
            recs.append((e["department"], key, codec.encode(bad)))
        if rng.random() < 0.001:  # not Avro at all: UNDECODABLE
            recs.append((e["department"], key, b"\x00garbage"))


def local_broker(settings: Settings, tmp: Path) -> tuple[LocalKafka | None, Settings]:
    """A secured broker of the bench's own under ``tmp`` (started), and the settings that
    reach it; ``(None, settings)`` when ONEWINDOW_KAFKA_BOOTSTRAP names one to use."""
    if os.environ.get("ONEWINDOW_KAFKA_BOOTSTRAP") is not None:
        return None, settings
    broker = LocalKafka(data_dir=tmp / "kafka", port=free_port(),
                        controller_port=free_port(), version=settings.kafka_version,
                        cache_dir=settings.cache_dir, security=settings.kafka_security_protocol,
                        credentials_dir=tmp / "credentials")
    broker.start()
    return broker, settings.model_copy(update={"kafka_bootstrap": broker.bootstrap,
                                               "kafka_credentials_dir": tmp / "credentials"})


def publish(settings: Settings, topics: Topics, inputs: Inputs) -> None:
    """Every record to its department's topic, as the SDK sends (murmur2 placement),
    signed in as the gateway (which may write every input topic)."""
    prod = Producer({**producer_config(settings, GATEWAY), **INPUT_PRODUCER_CONFIG,
                     "linger.ms": 20, "queue.buffering.max.messages": 1_000_000})
    for dept, key, value in inputs.records:
        while True:
            try:
                prod.produce(topics.input(dept), value, key)
                break
            except BufferError:
                prod.poll(0.1)
        prod.poll(0)
    if prod.flush(120) != 0:
        raise RuntimeError("the input records were not all acknowledged")


# --------------------------------------------------------------------------- measurements


def plain_read(settings: Settings, names: list[str]) -> dict[str, Any]:
    """Every record of ``names`` to the end, as the stream principal, nothing done with
    them: records, seconds from creating the consumer to the last, CPU seconds."""
    conf = {**client_config(settings, STREAM), "group.id": f"bench-{uuid.uuid4().hex}",
            "enable.auto.commit": False, "fetch.wait.max.ms": 50,
            "queued.max.messages.kbytes": 65536}
    cpu, t0 = time.process_time(), time.perf_counter()
    consumer = Consumer(conf)
    n = 0
    try:
        md = consumer.list_topics(timeout=10)
        pending = {}
        for name in names:
            for p in md.topics[name].partitions:
                lo, hi = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                if hi > lo:
                    pending[(name, p)] = hi
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in pending])
        deadline = time.monotonic() + 1800
        while pending and time.monotonic() < deadline:
            n += sum(1 for m in consumer.consume(10_000, 0.2) if m.error() is None)
            for tp in consumer.position([TopicPartition(t, p) for t, p in pending]):
                if tp.offset >= pending[(tp.topic, tp.partition)]:
                    del pending[(tp.topic, tp.partition)]
                    consumer.pause([tp])
    finally:
        consumer.close()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu
    return {"records": n, "seconds": seconds, "eps": n / seconds, "cpu_s": cpu,
            "cpu_us_per_event": cpu / n * 1e6}


def pure_step(settings: Settings, topics: Topics, inputs: Inputs, batch: int
              ) -> dict[str, Any]:
    """`CaseProcessor.process` over the records in this process: as one reprocess process
    reads them (each partition's records in order, several partitions in a batch of
    ``batch``), a dict as the table; CPU time per event and the outcomes counted."""
    registry = load_registry(settings.departments_file)
    n = settings.partitions
    processor = CaseProcessor(codec=get_codec(), topics=topics, departments=registry.codes,
                              counters=registry.counter_codes,
                              calendar=load_calendar(settings.calendar_override_file),
                              ids=IdProtector.from_settings(settings), partitions=n)
    by_partition: dict[int, list[InRecord]] = {}
    for i, (dept, key, value) in enumerate(inputs.records):
        p = partition_for(key, n) if key else 0
        by_partition.setdefault(p, []).append(
            InRecord(topics.input(dept), p, i, key, value, 1_760_000_000_000 + i))
    records = [r for p in sorted(by_partition) for r in by_partition[p]]
    table: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    cpu, t0 = time.process_time(), time.perf_counter()
    for i in range(0, len(records), batch):
        result = processor.process(records[i:i + batch], lambda cid, _r: table.get(cid))
        for cid, (state, _r) in result.states.items():
            table[cid] = state
        for (_d, _t, outcome, _reason, _o, _u), k in result.counts.items():
            counts[outcome] = counts.get(outcome, 0) + k
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu
    return {"records": len(records), "seconds": seconds, "eps": len(records) / seconds,
            "cpu_s": cpu, "cpu_us_per_event": cpu / len(records) * 1e6, "counts": counts}


def reprocess_process(settings: Settings, target: str, jobs: int, batch: int, log: Path,
                      profile: Path | None = None) -> dict[str, Any]:
    """``onewindow reprocess --to-prefix target --jobs J`` as a process: its own report
    (records and seconds, each stage's), its wall time, CPU time (its processes included)
    and peak resident memory (of the parent)."""
    head = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
    report = log.with_suffix(".json")
    env = dict(os.environ, ONEWINDOW_TOPIC_PREFIX=settings.topic_prefix, **kafka_env(settings),
               ONEWINDOW_ID_HASH_KEY=resolve_id_hash_key(settings),
               ONEWINDOW_DATA_DIR=str(log.parent / "data"))
    t0 = time.perf_counter()
    with log.open("wb") as f:
        proc = subprocess.Popen([*head, "-m", "onewindow_cli", "reprocess", "--to-prefix",
                                 target, "--jobs", str(jobs), "--batch-size", str(batch),
                                 "--progress", "3600", "--report", str(report)],
                                env=env, stdout=f, stderr=subprocess.STDOUT)
        code, usage, peak = watch(proc)
    wall = time.perf_counter() - t0
    if code != 0 or not report.exists():
        raise OneWindowError(f"onewindow reprocess failed ({code}):\n"
                             f"{log.read_text('utf-8', 'replace')[-3000:]}")
    done = json.loads(report.read_text("utf-8"))
    stages = {s["name"]: s for s in done["stages"]}
    records = stages["fold"]["records"]
    cpu = usage.ru_utime + usage.ru_stime
    return {"records": records, "seconds": done["seconds"], "eps": records / done["seconds"],
            "wall_s": wall, "cpu_s": cpu, "cpu_us_per_event": cpu / records * 1e6,
            "max_rss_kib": peak,
            "stages_s": {name: s["seconds"] for name, s in stages.items()},
            "stage_records": {name: s["records"] for name, s in stages.items()},
            "counts": {k: v for k, v in stages["fold"]["counts"].items() if ":" not in k},
            "outputs": {name: s["outputs"] for name, s in stages.items()}}


# --------------------------------------------------------------------------- the run


def run(settings: Settings, opts: BenchOptions) -> dict[str, Any]:
    """Every measurement (module docstring); returns the summary, also written as JSON to
    ``opts.out_dir``."""
    settings = with_new_key(settings)  # an ephemeral ID hash key for this run
    tmp = Path(tempfile.mkdtemp(prefix="onewindow-bench-reprocess-"))
    broker = None
    facts = machine_facts()
    rounds: list[dict[str, Any]] = []
    profile_text = None
    try:
        broker, ks = local_broker(settings, tmp)
        prefix = f"benchrp{uuid.uuid4().hex[:6]}."
        ks = ks.model_copy(update={"topic_prefix": prefix})
        codes = load_registry(settings.departments_file).codes
        provision(ks, codes)
        topics = Topics(prefix)
        t0 = time.perf_counter()
        inputs = make_inputs(opts.events, opts.seed)
        made_s = time.perf_counter() - t0
        publish(ks, topics, inputs)
        names = topics.inputs(codes)
        for r in range(opts.rounds):
            row: dict[str, Any] = {"loadavg_before": loadavg()}
            row["plain_read"] = plain_read(ks, names)
            row["pure_step"] = pure_step(ks, topics, inputs, opts.batch_size)
            for jobs in opts.jobs:
                target = f"{prefix}r{r}j{jobs}."
                provision(ks.model_copy(update={"topic_prefix": target}), codes)
                row[f"reprocess_jobs{jobs}"] = reprocess_process(
                    ks, target, jobs, opts.batch_size, tmp / f"reprocess-{r}-{jobs}.log")
            row["loadavg_after"] = loadavg()
            rounds.append(row)
        if opts.profile_dir is not None:
            opts.profile_dir.mkdir(parents=True, exist_ok=True)
            prof = opts.profile_dir / f"reprocess-{time.strftime('%Y%m%d-%H%M%S')}.prof"
            target = f"{prefix}profiled."
            provision(ks.model_copy(update={"topic_prefix": target}), codes)
            reprocess_process(ks, target, 1, opts.batch_size, tmp / "profiled.log",
                              profile=prof)
            text = prof.with_suffix(".txt")
            text.write_text(profile_summary(prof, 40))
            profile_text = str(text)
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for row in rounds:  # the same step: the same outcomes
        want = row["pure_step"]["counts"]
        for key, got in row.items():
            if key.startswith("reprocess_") and got["counts"] != want:
                raise OneWindowError(f"{key} counted {got['counts']}, the pure step {want}")
    keys = [k for k in rounds[0] if isinstance(rounds[0][k], dict)]
    med = {k: statistics.median(r[k]["eps"] for r in rounds) for k in keys}
    summary: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": facts,
        "events": len(inputs.records), "cases": inputs.cases, "rounds": opts.rounds,
        "partitions": settings.partitions, "batch_size": opts.batch_size,
        "generation_s": made_s, "jobs": list(opts.jobs), "median_eps": med,
        "range_eps": {k: [min(r[k]["eps"] for r in rounds), max(r[k]["eps"] for r in rounds)]
                      for k in keys},
        "ratio_to_plain": {k: v / med["plain_read"] for k, v in med.items()},
        "median_cpu_us_per_event": {k: statistics.median(r[k]["cpu_us_per_event"]
                                                         for r in rounds) for k in keys},
        "median_stages_s": {k: {s: statistics.median(r[k]["stages_s"][s] for r in rounds)
                                for s in rounds[0][k]["stages_s"]}
                            for k in keys if k.startswith("reprocess_")},
        "max_rss_kib": {k: max(r[k]["max_rss_kib"] for r in rounds)
                        for k in keys if k.startswith("reprocess_")},
        "profile": profile_text, "runs": rounds,
    }
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    path = opts.out_dir / f"bench-reprocess-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2, default=str))
    summary["path"] = str(path)
    return summary


def render(summary: dict[str, Any]) -> str:
    """The table `onewindow bench-reprocess` prints."""
    med, rng = summary["median_eps"], summary["range_eps"]
    cpu, ratio = summary["median_cpu_us_per_event"], summary["ratio_to_plain"]
    lines = [f"reprocess of {summary['events']:,} input records ({summary['cases']:,} cases, "
             f"{summary['partitions']} partitions, batches of {summary['batch_size']:,}), "
             f"medians of {summary['rounds']} rounds:",
             f"  {'':38} {'events/s':>10} {'range':>17} {'x plain':>8} {'CPU us/ev':>9}"]
    names = {"plain_read": "plain confluent-kafka read",
             "pure_step": "pure CaseProcessor, one process"}
    names.update({f"reprocess_jobs{j}": f"onewindow reprocess --jobs {j}"
                  for j in summary["jobs"]})
    for key, name in names.items():
        lo, hi = rng[key]
        lines.append(f"  {name:38} {med[key]:>10,.0f} {f'{lo:,.0f}-{hi:,.0f}':>17} "
                     f"{ratio[key]:>8.3f} {cpu[key]:>9.1f}")
    for key, stages in summary["median_stages_s"].items():
        mib = summary["max_rss_kib"][key] / 1024
        lines.append(f"  stages of {names[key]}: "
                     + ", ".join(f"{s} {v:.1f}s" for s, v in stages.items())
                     + f"; peak RSS of the parent {mib:,.0f} MiB")
    loads = [r["loadavg_before"][:1] + r["loadavg_after"][:1] for r in summary["runs"]]
    lines.append(f"  load average (1 min) before/after each round: {loads}")
    if summary["profile"]:
        lines.append(f"  profile of reprocess --jobs 1: {summary['profile']}")
    lines.append(f"results: {summary['path']}")
    return "\n".join(lines)


def cmd_bench_reprocess(args: argparse.Namespace) -> int:
    summary = run(settings_from(args), BenchOptions(
        events=args.events, rounds=args.rounds, seed=args.seed,
        jobs=tuple(int(j) for j in args.jobs.split(",")), batch_size=args.batch_size,
        out_dir=Path(args.out), profile_dir=None if args.profile is None else Path(args.profile)))
    print(render(summary))  # noqa: T201
    return 0


def register(sub: Any) -> None:
    """Add `bench-reprocess` to `sub` (an argparse subparsers action)."""
    p = sub.add_parser("bench-reprocess",
                       help="onewindow reprocess against a plain read of the same input "
                            "topics and the pure step alone")
    p.add_argument("--events", type=positive_int, default=100_000,
                   help="input records (default 100000)")
    p.add_argument("--rounds", type=positive_int, default=3)
    p.add_argument("--seed", type=int, default=2027)
    p.add_argument("--jobs", default="1,2", metavar="J[,J...]",
                   help="the reprocess --jobs values to measure (default 1,2)")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=10_000,
                   help="records per batch, of reprocess and of the pure step (default 10000)")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="also run reprocess --jobs 1 under cProfile; the profile and its "
                        "top functions go to DIR")
    p.add_argument("--out", default="bench-results", help="directory of the JSON results")
    add_common(p)
    p.set_defaults(func=cmd_bench_reprocess)
