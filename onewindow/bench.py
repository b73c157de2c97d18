"""`onewindow bench`: throughput of the case-state worker against a plain consumer.

Each round pre-loads N realistic events (the scenario generator) under a fresh topic
prefix, then measures, in the same process tree:

- `plain_consumer`: a confluent-kafka consumer reading the same input topics without
  processing (the ceiling the broker and client allow);
- `pure_processor`: `CaseProcessor` in this process over the same records, no Kafka
  (the cost of our own decode, validate, fold and encode);
- `faust_worker`: the real `onewindow worker` process, from the first to the last
  case-state record it emitted (Kafka timestamps), so start-up and rebalancing are
  not counted.

It reports medians over the rounds and the ratios against the plain consumer.
Speed is measured here, never asserted by a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from onewindow.config import Settings


def _plain_consume(bootstrap: str, topics: list[str], n: int) -> float:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800})
    c.subscribe(topics)
    got, first = 0, None
    deadline = time.monotonic() + 300
    while got < n and time.monotonic() < deadline:
        msgs = c.consume(10000, 0.05)  # short waits: a long one would be timed as work
        if msgs and first is None:
            first = time.perf_counter()
        got += sum(1 for m in msgs if m.error() is None)
    end = time.perf_counter()
    c.close()
    return got / (end - (first or end)) if got else 0.0


def _records(bootstrap: str, topics: list[str], n: int) -> list[Any]:
    from confluent_kafka import Consumer

    from stream_apps.case_processor import InRecord

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(topics)
    out: list[InRecord] = []
    deadline = time.monotonic() + 300
    while len(out) < n and time.monotonic() < deadline:
        for m in c.consume(10000, 0.5):
            if m.error() is None:
                out.append(InRecord(m.topic(), m.partition(), m.offset(), m.key(), m.value(),
                                    m.timestamp()[1]))
    c.close()
    return out


def _pure(records: list[Any], settings: Settings, prefix: str) -> float:
    from onewindow.calendar_source import load_calendar
    from onewindow.codec import get_codec
    from onewindow.departments import load_registry
    from onewindow.topics import Topics
    from stream_apps.case_processor import CaseProcessor

    proc = CaseProcessor(codec=get_codec(), topics=Topics(prefix),
                         departments=load_registry(settings.departments_file).codes,
                         calendar=load_calendar(settings.calendar_override_file))
    store: dict[str, bytes] = {}
    start = time.perf_counter()
    for i in range(0, len(records), 1000):
        res = proc.process(records[i:i + 1000], lambda cid, _rec: store.get(cid))
        for cid, (state, _r) in res.states.items():
            store[cid] = state
    return len(records) / (time.perf_counter() - start)


def _worker_rate(bootstrap: str, prefix: str, n_cases: int, data_dir: Path,
                 timeout: float = 600) -> float:
    from confluent_kafka import Consumer, TopicPartition

    from onewindow.kafka_local import free_port
    from onewindow.topics import Topics

    env = dict(os.environ, ONEWINDOW_KAFKA_BOOTSTRAP=bootstrap, ONEWINDOW_TOPIC_PREFIX=prefix,
               ONEWINDOW_DATA_DIR=str(data_dir))
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "worker.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "onewindow.cli", "worker", "--name", "bench",
                             "--web-port", str(free_port())], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    topic = Topics(prefix).case_state
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                  "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10)
        c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
        versions: dict[bytes, int] = {}
        first_ts = last_ts = None
        seen_cases: set[bytes] = set()
        deadline = time.monotonic() + timeout
        idle_since = None
        while time.monotonic() < deadline:
            msgs = [m for m in c.consume(10000, 0.5) if m.error() is None]
            if msgs:
                idle_since = None
                for m in msgs:
                    ts = m.timestamp()[1]
                    first_ts = ts if first_ts is None else min(first_ts, ts)
                    last_ts = ts if last_ts is None else max(last_ts, ts)
                    seen_cases.add(m.key())
                    versions[m.key()] = versions.get(m.key(), 0) + 1
            elif len(seen_cases) >= n_cases:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 3:
                    break
    finally:
        c.close()
        proc.terminate()
        proc.wait(60)
        log.close()
    if first_ts is None or last_ts is None or last_ts == first_ts:
        raise RuntimeError(f"worker emitted nothing measurable; see {data_dir / 'worker.log'}")
    return (last_ts - first_ts) / 1000.0


def run(settings: Settings, *, events: int, rounds: int, out_dir: Path) -> dict[str, Any]:
    from onewindow.codec import get_codec
    from onewindow.departments import load_registry
    from onewindow.kafka_local import LocalKafka, free_port
    from onewindow.provision import ensure_topics, plan
    from onewindow.topics import Topics
    from producers.publisher import Publisher
    from producers.scenarios import ScenarioConfig, ScenarioGenerator

    tmp = Path(tempfile.mkdtemp(prefix="onewindow-bench-"))
    broker = None
    bootstrap = settings.kafka_bootstrap
    if os.environ.get("ONEWINDOW_KAFKA_BOOTSTRAP") is None:
        broker = LocalKafka(data_dir=tmp / "kafka", port=free_port(), controller_port=free_port(),
                            version=settings.kafka_version, cache_dir=settings.cache_dir)
        broker.start()
        bootstrap = broker.bootstrap
    codes = load_registry(settings.departments_file).codes
    results: list[dict[str, float]] = []
    try:
        for r in range(rounds):
            prefix = f"bench{uuid.uuid4().hex[:6]}."
            topics = Topics(prefix)
            ensure_topics(bootstrap, plan(topics, codes, settings.partitions))
            gen = ScenarioGenerator(ScenarioConfig(seed=100 + r))
            batch: list[dict[str, Any]] = []
            n_cases = 0
            while len(batch) < events:
                batch.extend(gen.case())
                n_cases += 1
            with Publisher(bootstrap, topics=topics, departments=codes,
                           codec=get_codec()) as pub:
                for e in batch:
                    pub.send(e, validate_first=False)
            n = len(batch)
            inputs = topics.inputs(codes)
            plain = _plain_consume(bootstrap, inputs, n)
            pure = _pure(_records(bootstrap, inputs, n), settings, prefix)
            seconds = _worker_rate(bootstrap, prefix, n_cases, tmp / f"round{r}")
            results.append({"events": n, "cases": n_cases, "plain_consumer_eps": plain,
                            "pure_processor_eps": pure, "faust_worker_eps": n / seconds})
    finally:
        if broker is not None:
            broker.stop()
    med = {k: statistics.median(x[k] for x in results)
           for k in ("plain_consumer_eps", "pure_processor_eps", "faust_worker_eps")}
    summary = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "events_per_round": events, "rounds": rounds, "partitions": settings.partitions,
        "median_eps": med,
        "ratio_worker_to_plain": med["faust_worker_eps"] / med["plain_consumer_eps"],
        "ratio_pure_to_plain": med["pure_processor_eps"] / med["plain_consumer_eps"],
        "runs": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-case-state-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2))
    summary["path"] = str(path)
    return summary


def cmd_bench(args: argparse.Namespace) -> int:
    from onewindow.cli import settings_from

    s = settings_from(args)
    summary = run(s, events=args.events, rounds=args.rounds, out_dir=Path(args.out))
    med = summary["median_eps"]
    lines = [
        f"case-state throughput, {args.events} events x {args.rounds} rounds "
        f"({summary['partitions']} partitions), medians:",
        f"  {'plain confluent-kafka consumer':34} {med['plain_consumer_eps']:>12,.0f} events/s",
        f"  {'pure CaseProcessor (no Kafka)':34} {med['pure_processor_eps']:>12,.0f} events/s"
        f"  ({summary['ratio_pure_to_plain']:.3f} x plain)",
        f"  {'Faust worker, first to last state':34} {med['faust_worker_eps']:>12,.0f} events/s"
        f"  ({summary['ratio_worker_to_plain']:.3f} x plain)",
        f"results: {summary['path']}",
    ]
    print("\n".join(lines))  # noqa: T201
    return 0


def register(sub: Any) -> None:
    from onewindow.cli import add_common

    p = sub.add_parser("bench", help="benchmark suite: stream throughput against baselines")
    p.add_argument("--events", type=int, default=50_000, help="events pre-loaded per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default="bench-results", help="directory for the JSON results")
    add_common(p)
    p.set_defaults(func=cmd_bench)
