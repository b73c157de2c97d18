"""`onewindow bench`: the case-state worker's throughput, latency and recovery.

Each round pre-loads N realistic events (the scenario generator) under a fresh topic
prefix, then measures, in the same process tree:

- `plain_consumer`: a confluent-kafka consumer reading the same input topics without
  processing (the ceiling the broker and client allow);
- `pure_processor`: `CaseProcessor` in this process over the same records, no Kafka
  (the cost of our own decode, validate, fold and encode);
- `faust_worker`: the real `onewindow worker` process over the backlog, from the first
  to the last case-state record it emitted (Kafka timestamps), so start-up and
  rebalancing are not counted;
- latency: then a steady stream at a set rate; for each case-state record, its Kafka
  timestamp minus that of the input record that produced it (`source_timestamp`):
  p50, p95, p99;
- recovery: the worker is killed with SIGKILL, its local RocksDB wiped (as on a new
  machine: the table comes back from the changelog), restarted, and given one new
  case: the seconds from the restart to that case's final state.

It reports medians over the rounds and the ratios against the plain consumer.
Speed is measured here, never asserted by a timed test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import provision
from onewindow.security.id_key import resolve_id_hash_key, with_new_key
from onewindow.security.id_protection import IdProtector
from onewindow.security.kafka_auth import (
    ADMIN,
    client_config,
    department_principal,
    kafka_env,
    producer_config,
)
from onewindow.topics import Topics
from producers.publisher import DepartmentPublishers
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from stream_apps.case_processor import CaseProcessor
from stream_apps.records import InRecord


def _reader(ks: Settings) -> dict[str, Any]:
    """Settings of the benchmark's own readers: the broker's principal (an operator's
    tool), read_committed."""
    return client_config(ks, ADMIN)


def _plain_consume(ks: Settings, topics: list[str], n: int) -> float:
    c = Consumer({**_reader(ks), "group.id": f"bench-{uuid.uuid4().hex}",
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


def _records(ks: Settings, topics: list[str], n: int) -> list[Any]:
    c = Consumer({**_reader(ks), "group.id": f"bench-{uuid.uuid4().hex}",
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

    registry = load_registry(settings.departments_file)
    proc = CaseProcessor(codec=get_codec(), topics=Topics(prefix),
                         departments=registry.codes, counters=registry.counter_codes,
                         calendar=load_calendar(settings.calendar_override_file),
                         ids=IdProtector.from_settings(settings),
                         partitions=settings.partitions)
    store: dict[str, bytes] = {}
    start = time.perf_counter()
    for i in range(0, len(records), 1000):
        res = proc.process(records[i:i + 1000], lambda cid, _rec: store.get(cid))
        for cid, (state, _r) in res.states.items():
            store[cid] = state
    return len(records) / (time.perf_counter() - start)


class _Worker:
    """The real `onewindow worker` process, and a reader of the case-state it emits."""

    def __init__(self, ks: Settings, prefix: str, data_dir: Path) -> None:
        self.ks, self.prefix, self.data_dir = ks, prefix, data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        topic = Topics(prefix).case_state
        self.consumer = Consumer({**_reader(ks), "group.id": f"bench-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False})
        md = self.consumer.list_topics(topic, timeout=10)
        self.consumer.assign([TopicPartition(topic, p, 0)
                              for p in md.topics[topic].partitions])

    def start(self) -> None:

        env = dict(os.environ, ONEWINDOW_TOPIC_PREFIX=self.prefix,
                   ONEWINDOW_DATA_DIR=str(self.data_dir), **kafka_env(self.ks),
                   ONEWINDOW_ID_HASH_KEY=resolve_id_hash_key(self.ks))  # the run's own
        with open(self.data_dir / "worker.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "onewindow_cli", "worker", "--name", "bench",
                 "--web-port", str(free_port())], env=env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(60)

    def wipe_local_state(self) -> None:
        """As on a new machine: the worker must restore its table from the changelog."""
        shutil.rmtree(self.data_dir / "stream", ignore_errors=True)

    def states(self, done: Callable[[dict[bytes, int]], bool], timeout: float = 600
               ) -> list[Any]:
        """Case-state records until `done(latest version per case)` holds."""

        codec = get_codec()
        latest: dict[bytes, int] = {}
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.consumer.consume(10000, 0.2):
                if m.error() is None:
                    out.append(m)
                    v = codec.decode_record(m.value())["version"]
                    latest[m.key()] = max(v, latest.get(m.key(), 0))
            if done(latest):
                return out
            if self.proc is not None and self.proc.poll() is not None:
                break
        raise RuntimeError(f"the worker did not finish; see {self.data_dir / 'worker.log'}")

    def close(self) -> None:
        self.kill()
        self.consumer.close()


def _versions(cases: list[list[dict[str, Any]]]) -> dict[bytes, int]:
    return {c[0]["case_id"].encode(): len({e["event_id"] for e in c}) for c in cases}


def _reached(want: dict[bytes, int]) -> Callable[[dict[bytes, int]], bool]:
    return lambda latest: all(latest.get(k, 0) >= v for k, v in want.items())


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _worker_phases(ks: Settings, prefix: str, data_dir: Path, preloaded: list[list[Any]],
                   more: Callable[[int], list[list[dict[str, Any]]]],
                   publish: Callable[[list[dict[str, Any]], float | None], None],
                   latency_events: int, latency_rate: float) -> dict[str, float]:
    """Throughput over the pre-loaded backlog, latency at a steady rate, recovery after
    SIGKILL with the local state wiped."""

    w = _Worker(ks, prefix, data_dir)
    try:
        w.start()
        msgs = w.states(_reached(_versions(preloaded)))
        stamps = [m.timestamp()[1] for m in msgs]
        # Kafka timestamps have millisecond resolution: a backlog small enough to fit in
        # one batch can be emitted within one millisecond.
        seconds = max(max(stamps) - min(stamps), 1) / 1000.0
        events = sum(len(c) for c in preloaded)

        steady = more(latency_events)
        publish([e for c in steady for e in sorted(c, key=lambda e: e["occurred_at"])],
                 latency_rate)
        msgs = w.states(_reached(_versions(steady)))
        codec = get_codec()
        keys = set(_versions(steady))
        lat = []
        for m in msgs:
            if m.key() in keys:
                src = codec.decode_record(m.value())["source_timestamp"]
                lat.append(m.timestamp()[1] / 1000.0 - src.timestamp())

        w.kill(signal.SIGKILL)
        w.wipe_local_state()
        probe = more(1)
        restarted = time.monotonic()
        w.start()
        publish([e for c in probe for e in c], None)
        w.states(_reached(_versions(probe)))
        recovery = time.monotonic() - restarted
    finally:
        w.close()
    return {"faust_worker_eps": events / seconds,
            "latency_p50_s": _percentile(lat, 0.5), "latency_p95_s": _percentile(lat, 0.95),
            "latency_p99_s": _percentile(lat, 0.99),
            "recovery_s": recovery}


def _rounds(settings: Settings, ks: Settings, *, events: int, rounds: int, tmp: Path,
            latency_events: int, latency_rate: float) -> list[dict[str, float]]:
    codes = load_registry(settings.departments_file).codes
    results: list[dict[str, float]] = []
    for r in range(rounds):
        prefix = f"bench{uuid.uuid4().hex[:6]}."
        topics = Topics(prefix)
        provision(ks.model_copy(update={"topic_prefix": prefix}), codes)
        gen = ScenarioGenerator(ScenarioConfig(seed=100 + r))

        def more(n_events: int, gen: ScenarioGenerator = gen) -> list[list[dict[str, Any]]]:
            cases: list[list[dict[str, Any]]] = []
            while sum(len(c) for c in cases) < n_events:
                cases.append(gen.case())
            return cases

        def publish(batch: list[dict[str, Any]], rate: float | None,
                    topics: Topics = topics) -> None:
            started = time.monotonic()
            with DepartmentPublishers(
                    ks.kafka_bootstrap, topics=topics, departments=codes, codec=get_codec(),
                    config_for=lambda d: producer_config(ks, department_principal(d))) as pub:
                for i, e in enumerate(batch):
                    if rate is not None:  # paced: the latency of a steady stream
                        time.sleep(max(0.0, started + i / rate - time.monotonic()))
                    pub.send(e, validate_first=False)

        preloaded = more(events)
        publish([e for c in preloaded for e in c], None)
        n = sum(len(c) for c in preloaded)
        inputs = topics.inputs(codes)
        plain = _plain_consume(ks, inputs, n)
        pure = _pure(_records(ks, inputs, n), settings, prefix)
        phases = _worker_phases(ks, prefix, tmp / f"round{r}", preloaded, more,
                                publish, latency_events, latency_rate)
        results.append({"events": n, "cases": len(preloaded), "plain_consumer_eps": plain,
                        "pure_processor_eps": pure, **phases})
    return results


def _medians(results: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(x[k] for x in results)
            for k in ("plain_consumer_eps", "pure_processor_eps", "faust_worker_eps",
                      "latency_p50_s", "latency_p95_s", "latency_p99_s", "recovery_s")}


def run(settings: Settings, *, events: int, rounds: int, out_dir: Path,
        latency_events: int = 3000, latency_rate: float = 300.0,
        plaintext_baseline: bool = False) -> dict[str, Any]:
    """Every measurement, `rounds` times on a local secured broker of its own (or the
    configured cluster when ONEWINDOW_KAFKA_BOOTSTRAP is set), medians and ratios; with
    `plaintext_baseline`, the same rounds again on an open broker in the same process
    tree, and the secured worker's throughput as a ratio of the open one's."""
    settings = with_new_key(settings)  # an ephemeral ID hash key for this run
    tmp = Path(tempfile.mkdtemp(prefix="onewindow-bench-"))
    profiles = [settings.kafka_security_protocol]
    if plaintext_baseline and settings.kafka_security_protocol != "PLAINTEXT":
        profiles.append("PLAINTEXT")
    by_profile: dict[str, list[dict[str, float]]] = {}
    for profile in profiles:
        broker = None
        ks = settings
        if os.environ.get("ONEWINDOW_KAFKA_BOOTSTRAP") is None:
            broker = LocalKafka(data_dir=tmp / profile / "kafka", port=free_port(),
                                controller_port=free_port(), version=settings.kafka_version,
                                cache_dir=settings.cache_dir, security=profile,
                                credentials_dir=tmp / profile / "credentials")
            broker.start()
            ks = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap,
                                             "kafka_security_protocol": profile,
                                             "kafka_credentials_dir": tmp / profile /
                                             "credentials"})
        try:
            by_profile[profile] = _rounds(settings, ks, events=events, rounds=rounds,
                                          tmp=tmp / profile, latency_events=latency_events,
                                          latency_rate=latency_rate)
        finally:
            if broker is not None:
                broker.stop()
    results = by_profile[profiles[0]]
    med = _medians(results)
    summary = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "events_per_round": events, "rounds": rounds, "partitions": settings.partitions,
        "latency_phase": {"events": latency_events, "rate_eps": latency_rate},
        "median_eps": med,
        "ratio_worker_to_plain": med["faust_worker_eps"] / med["plain_consumer_eps"],
        "ratio_pure_to_plain": med["pure_processor_eps"] / med["plain_consumer_eps"],
        "runs": results,
        "security": profiles[0],
    }
    if len(profiles) > 1:
        base = _medians(by_profile["PLAINTEXT"])
        summary["plaintext_median_eps"] = base
        summary["ratio_secured_to_plaintext_worker"] = \
            med["faust_worker_eps"] / base["faust_worker_eps"]
        summary["plaintext_runs"] = by_profile["PLAINTEXT"]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-case-state-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2))
    summary["path"] = str(path)
    return summary
