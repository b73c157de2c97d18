"""`onewindow bench`: the case-state worker's throughput against its baselines, its
latency, and its recovery.

Each round pre-loads N realistic events (the scenario generator) under a fresh topic
prefix, then measures, in the same process tree and on the same backlog:

- `plain_consumer`: a confluent-kafka consumer reading the same input topics without
  processing (the ceiling the broker and client allow);
- `faust_noop`: the do-nothing Faust agent (`onewindow_cli.bench.faust_noop`): the
  worker's app settings, topics, sign-in and `take_events` batches, no work (the ceiling
  the framework allows; issue 15 measures the worker against it);
- `pure_processor`: `CaseProcessor` in this process over the same records, no Kafka
  (the cost of our own decode, validate, fold and encode);
- `faust_worker`: the real `onewindow worker` process over the backlog, from the first
  to the last case-state record it emitted (Kafka timestamps), so start-up and
  rebalancing are not counted; the agent is timed the same way, first to last batch;
- latency: then a steady stream at a set rate (1,000 events/s by default); for each
  case-state record, its Kafka timestamp minus that of the input record that produced it
  (`source_timestamp`): p50, p95, p99;
- recovery, with `hold` cases held (100,000 by default): the worker is stopped, the held
  cases are written straight into its table's changelog topic (copies of the round's real
  fold states under new case ids: `_hold_cases`; far cheaper than folding 1.5 million
  events through the worker), and the worker started again, which restores them into its
  RocksDB (`restore_s`, to its first new state). Then it is killed with SIGKILL and
  restarted on its local RocksDB, as a restarted machine or container would
  (`recovery_kept_s`), and killed again and restarted with its local state wiped, as on a
  new machine (`recovery_wiped_s`: the table comes back from the changelog). Each is the
  seconds from the restart to the final state of one new case published right then.
  The worker's memory (its process and its step process, resident and proportional)
  is read while it holds them.

It reports medians over the rounds, the ratios against the plain consumer and against
the do-nothing agent, and the load average before and after each round (the machines are
shared). With `profile_dir`, py-spy samples the first round's do-nothing agent and
worker while they work through the backlog (`onewindow_cli.bench.profile`).
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

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import Grant, provision, wait_on_every_broker
from onewindow.security.id_key import resolve_id_hash_key, with_new_key
from onewindow.security.id_protection import IdProtector
from onewindow.security.kafka_auth import (
    ADMIN,
    STREAM,
    client_config,
    department_principal,
    kafka_env,
    producer_config,
)
from onewindow.topics import Topics, partition_for
from onewindow_cli.bench import profile as bench_profile
from producers.publisher import DepartmentPublishers
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from stream_apps.case_processor import CaseProcessor
from stream_apps.records import InRecord

#: Cases the worker holds when its restarts are timed (issue 15: under 5 s with 100,000).
HOLD_CASES = 100_000
#: The do-nothing agent's app id after the topic prefix (`_noop_agent`).
NOOP_APP = "bench-noop-agent"
#: the record that warms each department's producer before the paced stream (`_rounds`)
WARM_UP_KEY, WARM_UP_VALUE = b"bench-warm-up", b"warm-up"
#: The case-state table's name (`stream_apps.app`) and so its changelog topic's suffix.
_TABLE = "case-fold"
#: The paced stream's producers are not idempotent. An idempotent librdkafka producer
#: allows five requests in flight per partition and, while a partition is at that limit
#: with records past linger.ms waiting, its broker thread polls with a zero timeout:
#: a busy loop. The paced stream sends a case's events one after another (about 14 in
#: 14 ms to one partition), so an ack slower than ~15 ms put several of the twelve
#: producers' threads in that loop (up to 400,000 polls/s, 0.7-1.2 cores), on the two
#: cores the broker and the worker have here (a department system's producer spins on
#: its own machine), and the broker, starved, acked later still: stalls of 1-3 s at the
#: stream's start in some rounds (docs/benchmarks.md, "The latency tail"). acks=all and
#: the records are unchanged.
PACED_PRODUCER = {"enable.idempotence": False}

#: The medians reported (every round has them).
_MEDIANS = ("plain_consumer_eps", "faust_noop_eps", "pure_processor_eps", "faust_worker_eps",
            "latency_p50_s", "latency_p95_s", "latency_p99_s", "restore_s",
            "recovery_kept_s", "recovery_wiped_s")


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
        asked = time.perf_counter()
        msgs = c.consume(10000, 0.05)  # short waits: a long one would be timed as work
        if msgs and first is None:
            first = asked  # from the call that got the first records: a small backlog
            # comes in one call, and timing from its end would divide by almost nothing
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


def _pure(records: list[Any], settings: Settings, prefix: str
          ) -> tuple[float, dict[str, bytes]]:
    """The pure step's events/s over ``records``, and the fold states it wrote (case id ->
    the table's value)."""
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
    return len(records) / (time.perf_counter() - start), store


class _Child:
    """A process of the bench: ``python -m <args>`` with the run's environment (its
    broker, credentials, topic prefix, data directory and ID hash key), its output in
    ``data_dir/<log>``; `profile` samples it with py-spy until `kill`."""

    def __init__(self, ks: Settings, prefix: str, data_dir: Path, args: list[str],
                 log: str) -> None:
        self.ks, self.prefix, self.data_dir, self.args = ks, prefix, data_dir, args
        self.log = data_dir / log
        data_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.profiler: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, ONEWINDOW_TOPIC_PREFIX=self.prefix,
                   ONEWINDOW_DATA_DIR=str(self.data_dir), **kafka_env(self.ks),
                   ONEWINDOW_ID_HASH_KEY=resolve_id_hash_key(self.ks))  # the run's own
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", *self.args], env=env,
                                         stdout=log, stderr=subprocess.STDOUT)

    def profile(self, out: Path) -> None:
        """Sample the running process into ``out`` from now until `end_profile`."""
        assert self.proc is not None
        with open(self.log, "ab") as log:
            self.profiler = bench_profile.attach(self.proc.pid, out, log=log)

    def end_profile(self) -> None:
        if self.profiler is not None:
            bench_profile.stop(self.profiler)
            self.profiler = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def memory_mib(self) -> dict[str, float]:
        """`_memory_of` the process (``main_rss``, ``main_pss``) and of its child
        processes together (``child_rss``, ``child_pss``)."""
        if self.proc is None:
            return {}
        out = {f"main_{k}": v for k, v in _memory_of(self.proc.pid).items()}
        kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        for pid in kids.read_text().split() if kids.exists() else []:
            for k, v in _memory_of(int(pid)).items():
                out[f"child_{k}"] = out.get(f"child_{k}", 0.0) + v
        return out

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user and system) the process and its child processes (the
        worker's step process) have used so far: ``{"main": ..., "child": ...}``; empty
        where /proc is not there (Linux only)."""
        if self.proc is None:
            return {}
        main = _cpu_of(self.proc.pid)
        if main is None:
            return {}
        kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = kids.read_text().split() if kids.exists() else []
        return {"main": main, "child": sum(_cpu_of(int(p)) or 0.0 for p in pids)}

    def kill(self, sig: int = signal.SIGTERM) -> None:
        self.end_profile()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _cpu_of(pid: int) -> float | None:
    """User plus system CPU seconds of process ``pid`` (/proc/<pid>/stat), None when it
    cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _memory_of(pid: int) -> dict[str, float]:
    """Resident (``rss``) and proportional (``pss``: shared pages split between the
    processes sharing them, as the worker and its forked step process do) memory of
    process ``pid`` in MiB (/proc/<pid>/smaps_rollup); empty when it cannot be read."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            out[name.lower()] = int(rest.split()[0]) / 1024
    return out


def _cpu_per_event(before: dict[str, float], after: dict[str, float], events: int
                   ) -> dict[str, float]:
    """CPU microseconds an event between two `cpu_seconds` readings, by process and in
    all (``total``)."""
    if not before or not after or events <= 0:
        return {}
    out = {k: (after[k] - before.get(k, 0.0)) * 1e6 / events for k in after}
    out["total"] = sum(out.values())
    return out


class _Worker(_Child):
    """The real `onewindow worker` process, and a reader of the case-state it emits."""

    def __init__(self, ks: Settings, prefix: str, data_dir: Path) -> None:
        super().__init__(ks, prefix, data_dir,
                         ["onewindow_cli", "worker", "--name", "bench",
                          "--web-port", str(free_port())], "worker.log")
        topic = Topics(prefix).case_state
        self.consumer = Consumer({**_reader(ks), "group.id": f"bench-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False})
        md = self.consumer.list_topics(topic, timeout=10)
        self.consumer.assign([TopicPartition(topic, p, 0)
                              for p in md.topics[topic].partitions])

    def wipe_local_state(self) -> None:
        """As on a new machine: the worker must restore its table from the changelog."""
        shutil.rmtree(self.data_dir / "stream", ignore_errors=True)

    def states(self, done: Callable[[dict[bytes, int]], bool], timeout: float = 900,
               on_first: Callable[[], None] | None = None) -> list[Any]:
        """Case-state records until `done(latest version per case)` holds; ``on_first()``
        when the first one is read."""

        codec = get_codec()
        latest: dict[bytes, int] = {}
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.consumer.consume(10000, 0.2):
                if m.error() is None:
                    if not out and on_first is not None:
                        on_first()
                    out.append(m)
                    v = codec.decode_record(m.value())["version"]
                    latest[m.key()] = max(v, latest.get(m.key(), 0))
            if done(latest):
                return out
            if not self.alive():
                break
        raise RuntimeError(f"the worker did not finish; see {self.log}")

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


def _grant_noop_agent(ks: Settings, topics: Topics, timeout: float = 30.0) -> None:
    """On a secured cluster, let `svc-stream` run the do-nothing agent: READ its consumer
    group and ALL on its internal topics, as provisioning grants the worker's app id
    (`onewindow.provision.acl_plan`). The bench signs in as the broker's principal."""
    if ks.kafka_security_protocol == "PLAINTEXT":
        return
    app = f"{topics.prefix}{NOOP_APP}"
    grants = [Grant(STREAM, "GROUP", "LITERAL", app, "READ"),
              Grant(STREAM, "TOPIC", "PREFIXED", f"{app}-", "ALL")]
    admin = AdminClient(producer_config(ks, ADMIN))
    for fut in admin.create_acls([g.binding() for g in grants], request_timeout=15).values():
        fut.result()
    # until every broker enforces them (each applies them on its own: provisioning)
    wait_on_every_broker(producer_config(ks, ADMIN), grants, timeout=timeout)


def _noop_agent(ks: Settings, prefix: str, data_dir: Path, n: int,
                profile: Path | None) -> tuple[float, dict[str, float]]:
    """The do-nothing agent's events/s over the round's backlog of ``n`` events, and its
    CPU microseconds an event from its first batch on (`_cpu_per_event`)."""
    out = data_dir / "noop-agent.json"
    agent = _Child(ks, prefix, data_dir,
                   ["onewindow_cli.bench.faust_noop", "--app-id", f"{prefix}{NOOP_APP}",
                    "--events", str(n), "--out", str(out),
                    "--web-port", str(free_port())], "noop-agent.log")
    agent.start()
    cpu: list[dict[str, float]] = []
    try:
        deadline = time.monotonic() + 600
        first = out.with_suffix(".first")
        while not out.exists():
            if not agent.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the do-nothing agent did not finish; see {agent.log}")
            if not cpu and first.exists():
                cpu.append(agent.cpu_seconds())
                if profile is not None:
                    agent.profile(profile)
            time.sleep(0.02)
        cpu.append(agent.cpu_seconds())
        agent.end_profile()
    finally:
        agent.kill()
    seen = json.loads(out.read_text())
    eps = float(seen["events"]) / max(seen["last"] - seen["first"], 0.001)
    return eps, _cpu_per_event(cpu[0] if cpu else {}, cpu[-1] if cpu else {},
                               int(seen["events"]))


def _hold_cases(ks: Settings, topics: Topics, partitions: int, states: dict[str, bytes],
                n: int) -> int:
    """Write ``n`` cases into the case-state table's changelog topic, as the worker's
    table writes would leave them: the fold states in ``states`` (case id -> value),
    copied round-robin under new case ids ``<case id>-H<number>`` (the id replaced
    inside the state too, so each copy is a valid state of its own id), keyed by the
    id, on the partition of the key. Returns the bytes written. The worker must not be
    running (it is the table's only writer)."""
    changelog = f"{topics.case_state_app}-{_TABLE}-changelog"
    producer = Producer({**producer_config(ks, ADMIN), "linger.ms": 20,
                         "batch.num.messages": 10000, "compression.type": "lz4",
                         "queue.buffering.max.messages": 200000})
    items = sorted(states.items())
    written = 0
    for i in range(n):
        case_id, value = items[i % len(items)]
        new = f"{case_id}-H{i:06d}"
        value = value.replace(f'"{case_id}'.encode(), f'"{new}'.encode())
        key = new.encode()
        while True:
            try:
                producer.produce(changelog, value, key, partition=partition_for(key, partitions))
                break
            except BufferError:
                producer.poll(0.05)
        written += len(key) + len(value)
    if producer.flush(120):
        raise RuntimeError("the held cases were not all acknowledged")
    return written


def _worker_phases(ks: Settings, prefix: str, data_dir: Path, preloaded: list[list[Any]],
                   more: Callable[[int], list[list[dict[str, Any]]]],
                   publish: Callable[[list[dict[str, Any]], float | None], None], *,
                   latency_events: int, latency_rate: float, states: dict[str, bytes],
                   hold: int, partitions: int, profile: Path | None) -> dict[str, float]:
    """Throughput over the pre-loaded backlog, latency at a steady rate, then the
    restarts with ``hold`` cases held (module docstring)."""

    w = _Worker(ks, prefix, data_dir)

    def probe(wipe: bool) -> float:
        """SIGKILL (when running), restart, publish one new case: seconds from the
        restart to its final state."""
        w.kill(signal.SIGKILL)
        if wipe:
            w.wipe_local_state()
        case = more(1)
        restarted = time.monotonic()
        w.start()
        publish([e for c in case for e in c], None)
        w.states(_reached(_versions(case)))
        return time.monotonic() - restarted

    cpu: list[dict[str, float]] = []

    def first_state() -> None:
        cpu.append(w.cpu_seconds())
        if profile is not None:
            w.profile(profile)

    try:
        w.start()
        msgs = w.states(_reached(_versions(preloaded)), on_first=first_state)
        cpu.append(w.cpu_seconds())
        w.end_profile()
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

        w.kill()  # the table's only writer stops while the held cases are written
        held_bytes = _hold_cases(ks, Topics(prefix), partitions, states, hold)
        restore = probe(wipe=False)  # restores the held cases into its RocksDB
        memory = w.memory_mib()  # holding them
        kept = probe(wipe=False)
        wiped = probe(wipe=True)
    finally:
        w.close()
    return {"faust_worker_eps": events / seconds,
            "worker_cpu_us_per_event": _cpu_per_event(cpu[0], cpu[-1], events),
            "latency_p50_s": _percentile(lat, 0.5), "latency_p95_s": _percentile(lat, 0.95),
            "latency_p99_s": _percentile(lat, 0.99), "latency_states": len(lat),
            "held_cases": hold, "held_bytes": held_bytes, "worker_memory_mib": memory,
            "restore_s": restore, "recovery_kept_s": kept, "recovery_wiped_s": wiped}


def _rounds(settings: Settings, ks: Settings, *, events: int, rounds: int, tmp: Path,
            latency_events: int, latency_rate: float, hold: int,
            profile_dir: Path | None) -> list[dict[str, float]]:
    codes = load_registry(settings.departments_file).codes
    results: list[dict[str, float]] = []
    for r in range(rounds):
        load_before = os.getloadavg()[0]
        prefix = f"bench{uuid.uuid4().hex[:6]}."
        topics = Topics(prefix)
        provision(ks.model_copy(update={"topic_prefix": prefix}), codes)
        _grant_noop_agent(ks, topics)
        gen = ScenarioGenerator(ScenarioConfig(seed=100 + r))

        def more(n_events: int, gen: ScenarioGenerator = gen) -> list[list[dict[str, Any]]]:
            cases: list[list[dict[str, Any]]] = []
            while sum(len(c) for c in cases) < n_events:
                cases.append(gen.case())
            return cases

        def publish(batch: list[dict[str, Any]], rate: float | None,
                    topics: Topics = topics) -> None:
            with DepartmentPublishers(
                    ks.kafka_bootstrap, topics=topics, departments=codes, codec=get_codec(),
                    config_for=lambda d: {**producer_config(ks, department_principal(d)),
                                          **(PACED_PRODUCER if rate is not None else {})}
                    ) as pub:
                if rate is not None:  # signed in and warm before the clock starts: a
                    # department system publishes over a connection it holds. The first
                    # events of a paced stream waited for twelve sign-ins (up to a second),
                    # then, signed in, for twelve cold producers' first sends: 0.7 to 1.4
                    # cores for up to 2 s, starving the broker and the worker, and the
                    # slowest 1 % of every run came from those seconds (docs/benchmarks.md,
                    # "The latency tail"). One record per department, acknowledged, warms
                    # them; the worker dead-letters it (not Avro), outside the measurement.
                    departments = sorted({str(e["department"]) for e in batch})
                    pub.connect(departments)
                    for code in departments:
                        pub.send_raw(topics.input(code), WARM_UP_KEY, WARM_UP_VALUE)
                    pub.flush()
                started = time.monotonic()
                for i, e in enumerate(batch):
                    if rate is not None:  # paced: the latency of a steady stream
                        time.sleep(max(0.0, started + i / rate - time.monotonic()))
                    pub.send(e, validate_first=False)

        preloaded = more(events)
        publish([e for c in preloaded for e in c], None)
        n = sum(len(c) for c in preloaded)
        inputs = topics.inputs(codes)
        plain = _plain_consume(ks, inputs, n)
        pure, states = _pure(_records(ks, inputs, n), settings, prefix)
        profile = profile_dir if r == 0 else None
        noop, noop_cpu = _noop_agent(ks, prefix, tmp / f"round{r}", n,
                                     None if profile is None else profile / "faust-noop.txt")
        phases = _worker_phases(ks, prefix, tmp / f"round{r}", preloaded, more, publish,
                                latency_events=latency_events, latency_rate=latency_rate,
                                states=states, hold=hold, partitions=ks.partitions,
                                profile=None if profile is None
                                else profile / "faust-worker.txt")
        results.append({"events": n, "cases": len(preloaded), "plain_consumer_eps": plain,
                        "faust_noop_eps": noop, "noop_cpu_us_per_event": noop_cpu,
                        "pure_processor_eps": pure, **phases,
                        "load_average": [load_before, os.getloadavg()[0]]})
    return results


def _medians(results: list[dict[str, Any]]) -> dict[str, float]:
    return {k: statistics.median(x[k] for x in results) for k in _MEDIANS}


def _cpu_medians(results: list[dict[str, Any]]) -> dict[str, float]:
    """Medians of the CPU microseconds an event: ``noop_total``, ``worker_main`` (the
    worker's own process), ``worker_child`` (its step process), ``worker_total``."""
    out: dict[str, float] = {}
    for name, key in (("noop", "noop_cpu_us_per_event"), ("worker", "worker_cpu_us_per_event")):
        for part in ("main", "child", "total"):
            values = [x[key][part] for x in results if part in x.get(key, {})]
            if values:
                out[f"{name}_{part}"] = statistics.median(values)
    return out


def _ranges(results: list[dict[str, Any]]) -> dict[str, list[float]]:
    return {k: [min(x[k] for x in results), max(x[k] for x in results)] for k in _MEDIANS}


def run(settings: Settings, *, events: int, rounds: int, out_dir: Path,
        latency_events: int = 10_000, latency_rate: float = 1000.0, hold: int = HOLD_CASES,
        plaintext_baseline: bool = False, profile_dir: Path | None = None) -> dict[str, Any]:
    """Every measurement, `rounds` times on a local secured broker of its own (or the
    configured cluster when ONEWINDOW_KAFKA_BOOTSTRAP is set), medians and ratios; with
    `plaintext_baseline`, the same rounds again on an open broker in the same process
    tree, and the secured worker's throughput as a ratio of the open one's; with
    `profile_dir`, py-spy profiles of the first round's do-nothing agent and worker
    there, and their summaries (`onewindow_cli.bench.profile.summarise`)."""
    settings = with_new_key(settings)  # an ephemeral ID hash key for this run
    tmp = Path(tempfile.mkdtemp(prefix="onewindow-bench-"))
    profiles = [settings.kafka_security_protocol]
    if plaintext_baseline and settings.kafka_security_protocol != "PLAINTEXT":
        profiles.append("PLAINTEXT")
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    by_profile: dict[str, list[dict[str, Any]]] = {}
    try:  # its brokers' data (hundreds of MB a run) goes with it
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
                by_profile[profile] = _rounds(
                    settings, ks, events=events, rounds=rounds, tmp=tmp / profile,
                    latency_events=latency_events, latency_rate=latency_rate, hold=hold,
                    profile_dir=profile_dir if profile == profiles[0] else None)
            finally:
                if broker is not None:
                    broker.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results = by_profile[profiles[0]]
    med = _medians(results)
    summary: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "events_per_round": events, "rounds": rounds, "partitions": settings.partitions,
        "latency_phase": {"events": latency_events, "rate_eps": latency_rate},
        "held_cases": hold,
        "median_eps": med,
        "range": _ranges(results),
        "cpu_us_per_event": _cpu_medians(results),
        "ratio_worker_to_plain": med["faust_worker_eps"] / med["plain_consumer_eps"],
        "ratio_pure_to_plain": med["pure_processor_eps"] / med["plain_consumer_eps"],
        "ratio_noop_to_plain": med["faust_noop_eps"] / med["plain_consumer_eps"],
        "ratio_worker_to_noop": med["faust_worker_eps"] / med["faust_noop_eps"],
        "ratio_pure_to_noop": med["pure_processor_eps"] / med["faust_noop_eps"],
        # within each round, then the median: both ran in the same minutes
        "ratio_worker_to_noop_per_round": statistics.median(
            x["faust_worker_eps"] / x["faust_noop_eps"] for x in results),
        "runs": results,
        "security": profiles[0],
    }
    if len(profiles) > 1:
        base = _medians(by_profile["PLAINTEXT"])
        summary["plaintext_median_eps"] = base
        summary["ratio_secured_to_plaintext_worker"] = \
            med["faust_worker_eps"] / base["faust_worker_eps"]
        summary["plaintext_runs"] = by_profile["PLAINTEXT"]
    if profile_dir is not None:
        summary["profiles"] = {p.stem: bench_profile.summarise(p)
                               for p in sorted(profile_dir.glob("faust-*.txt"))}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-case-state-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2))
    summary["path"] = str(path)
    return summary
