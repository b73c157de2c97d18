"""`onewindow bench --brokers 3 --workers 1,2`: the case-state worker on a three-node
cluster (issue 17): throughput with each number of workers, the failover after a worker
SIGKILL (with and without standby replicas), and the pause in case-state output after a
broker SIGKILL.

The bench starts its own secured cluster from the jars (`onewindow.kafka_local.
LocalKafkaCluster`, the code `onewindow up --brokers 3` runs: three combined nodes,
replication 3, `min.insync.replicas` 2, unclean leader election off), under a temporary
directory, on free ports; it kills one of its nodes, so it never uses a configured one.
Each run has a topic prefix of its own, provisioned (topics, principals, ACLs), and its
workers are real `onewindow worker` processes with their own state directories. A run
(`plan`):

1. writes ``hold`` cases straight into the table's changelog (as `onewindow bench` does
   for its restarts: copies of real fold states under new case ids), so the workers
   hold state worth restoring, then starts ``workers`` workers with ``standby`` standby
   replicas (`onewindow_cli.stack.standby_for`, what `up --workers N` sets, and 0 to
   compare) and waits until the group is stable: every worker a member with partitions
   (and standbys of partitions it does not own when ``standby`` > 0), each ready;
2. **throughput**: publishes ``events`` events at full speed (encoded beforehand, one
   producer signed in as the gateway) and times the workers draining them, from the first
   to the last case-state record written (Kafka timestamps), as `onewindow bench` does on
   one broker. The workers join before the backlog is published, so a rebalance (the
   second worker joining) is never inside the measured window; the publishing takes
   about a second, far less than the drain. The CPU of the workers (their step processes
   included) and of the three brokers over the drain, and the machine's busy share of
   all its cores, are read from /proc;
3. **failover** (two or more workers): steady input at ``rate`` events/s (new cases, each
   event published as its department); once every case-state partition has output, the
   last worker is SIGKILLed. The failover time is from the kill until a case-state record
   written after the kill (so by a survivor) has reached the bench's reader for the cases
   of every input partition the dead worker owned (`resumed` with ``home``: the
   case-state topic keeps librdkafka's default partitioner, so a worker writes to all of
   its partitions); also when the group dropped it (the 15 s session timeout of static
   membership) and the first of its partitions back;
4. **broker pause** (the one-worker run; a run of its own when 1 is not among the worker
   counts): steady input, then the node leading most case-state partitions is SIGKILLed
   (`onewindow.kafka_local.leader_of_most`); output is watched until every partition has
   output written after the kill, then 5 s more. The pause is the longest gap between two
   case-state records reaching the reader (read_committed, as the sink reads) from 5 s
   before the kill to the end (`longest_gap`), and the same over the records' own
   timestamps (when the worker wrote them; records written just before the kill become
   visible only once the dead node is out of the ISRs, so the two differ). The node is
   started again, once the run's load has stopped, and every replica waited in sync
   before the next run.

Runs are interleaved by round (each round runs every kind once), so the machine's load
falls on all of them alike; medians over the rounds are reported, with ranges and the
load average. Speed is measured here, never asserted by a timed test; the pure parts
(`parse_workers`, `plan`, `longest_gap`, `resumed`, `summarise`, `render`) are unit-tested.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupState, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from onewindow.cli_options import MAX_LOCAL_WORKERS, positive_float
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.errors import ConfigError
from onewindow.inputs import INPUT_PRODUCER_CONFIG
from onewindow.kafka_local import (
    LocalKafkaCluster,
    free_port,
    leader_of_most,
    partition_leaders,
    wait_in_sync,
)
from onewindow.provision import provision
from onewindow.security.id_key import resolve_id_hash_key, with_new_key
from onewindow.security.kafka_auth import (
    ADMIN,
    GATEWAY,
    client_config,
    department_principal,
    kafka_env,
    producer_config,
)
from onewindow.topics import Topics, min_insync_for, partition_for
from onewindow_cli.bench.case_state import _cpu_of, _hold_cases, _pure, _reached, _versions
from onewindow_cli.stack import standby_for
from producers.publisher import DepartmentPublishers
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from stream_apps.records import InRecord

#: the defaults with --brokers 3 (a full run at these sizes: about 15 minutes on the
#: shared 2-core machines, docs/benchmarks.md)
EVENTS = 10_000
HOLD = 20_000
RATE = 200.0
WORKERS = (1, 2)
#: nodes of the cluster
BROKERS = 3
#: seconds of steady output before a kill (after every partition has some)
WARMUP_S = 5.0
#: seconds of output watched after every partition resumed, in the broker phase
SETTLE_S = 5.0
#: seconds before the kill from which the broker phase's gaps are counted
BEFORE_S = 5.0
#: seconds any one condition is waited for (a restore of the held cases under load, a
#: failover, a node's restart)
WAIT_S = 300.0
#: workers of a run started again (as `onewindow up` restarts them) when they exit before
#: the group is stable: Faust 0.15.3's recovery can crash (``ValueError: Offset must be a
#: positive integer`` seeking its new standby partitions) when a rebalance, the next
#: worker joining, comes while it restores; each restart is in the results. A worker
#: that exits once the measuring has begun ends the bench.
MAX_JOIN_RESTARTS = 3
#: cases whose fold states the held cases are copied from
_STATE_SOURCES = 300


# --------------------------------------------------------------------------- the pure part


def parse_workers(text: str) -> tuple[int, ...]:
    """An argparse type: ``"1,2"`` -> ``(1, 2)``: distinct whole numbers from 1 to
    `MAX_LOCAL_WORKERS`, comma-separated, in the order given. Raises
    argparse.ArgumentTypeError naming what is wrong."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            n = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: {part!r} is not a whole number (give counts like 1,2)") from None
        if not 1 <= n <= MAX_LOCAL_WORKERS:
            raise argparse.ArgumentTypeError(
                f"{text!r}: {n} workers is not between 1 and {MAX_LOCAL_WORKERS}")
        if n in out:
            raise argparse.ArgumentTypeError(f"{text!r}: {n} is given twice")
        out.append(n)
    return tuple(out)


@dataclass(frozen=True)
class RunSpec:
    """One run of a round: ``workers`` workers with ``standby`` standby replicas; what it
    measures after its throughput: a worker's failover, the broker pause."""

    workers: int
    standby: int
    throughput: bool = True
    failover: bool = False
    broker: bool = False

    @property
    def key(self) -> str:
        """Its name in the results: ``w2-s1`` (2 workers, 1 standby replica)."""
        return f"w{self.workers}-s{self.standby}"


def plan(workers: Sequence[int]) -> list[RunSpec]:
    """The runs of one round for the worker counts ``workers``: each count with the
    standby replicas `up --workers N` gives it (`standby_for`), measuring its throughput
    and, from two workers on, a worker's failover; each count from two on again without
    standby replicas (the failover without a warm copy, and the throughput without the
    copies' cost); the broker pause in the one-worker run, or in a run of its own (one
    worker, no throughput) when 1 is not among ``workers``."""
    runs = [RunSpec(w, standby_for(w), failover=w >= 2, broker=w == 1) for w in workers]
    runs += [RunSpec(w, 0, failover=True) for w in workers if w >= 2 and standby_for(w) != 0]
    if 1 not in workers:
        runs.append(RunSpec(1, 0, throughput=False, broker=True))
    return runs


@dataclass(frozen=True)
class Seen:
    """A case-state record the bench's reader got: its partition of the case-state topic,
    when the worker wrote it (its Kafka timestamp) and when it reached the reader, both
    in Unix seconds, and ``home``: the input partition of its case (murmur2 of the key),
    whose owner wrote it. The case-state topic keeps librdkafka's default partitioner, so
    every worker writes to every one of its partitions: a worker's records are told by
    ``home``, not ``partition``."""

    partition: int
    written: float
    arrived: float
    home: int = -1


def longest_gap(times: Iterable[float], start: float, end: float) -> tuple[float, float]:
    """The longest stretch of ``[start, end]`` without any of ``times`` in it, counting
    the edges (no output from ``start`` to the first one is a gap too): ``(seconds, where
    it began)``. ``times`` in any order, in seconds; ``end >= start`` (ValueError
    otherwise)."""
    if end < start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")
    points = [start, *sorted(t for t in times if start <= t <= end), end]
    gap, at = 0.0, start
    for a, b in zip(points, points[1:], strict=False):
        if b - a > gap:
            gap, at = b - a, a
    return gap, at


def resumed(seen: Iterable[Seen], partitions: Iterable[int], after: float, *,
            home: bool = False) -> dict[int, float]:
    """For each of ``partitions`` (of the case-state topic, or with ``home`` the input
    partitions the records' cases belong to), when the first record written after
    ``after`` reached the reader (``seen`` in the order read); a partition with none yet
    is left out."""
    want = set(partitions)
    out: dict[int, float] = {}
    for s in seen:
        p = s.home if home else s.partition
        if p in want and p not in out and s.written > after:
            out[p] = s.arrived
    return out


def _stats(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "range": [min(values), max(values)],
            "values": values}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds of each run kind (``runs``: each `_one_run`'s result,
    with ``round``, ``key``, ``workers``, ``standby``).

    ``throughput[key]``: ``eps`` (events/s), ``ratio_to_fewest`` (within each round, the
    run's events/s over that of the fewest workers' run with their own standby setting,
    then the median), CPU cores used and microseconds an event of the workers and of the
    brokers, the machine's busy share; ``failover[key]``: ``all_s``, ``first_s``,
    ``member_gone_s``; ``broker_pause``: ``arrival_gap_s``, ``write_gap_s``,
    ``resumed_all_s``, ``normal_gap_s``, and the partitions the killed node led."""
    out: dict[str, Any] = {"throughput": {}, "failover": {}}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_key.setdefault(r["key"], []).append(r)
    base = [r for r in runs if "eps" in r and r["standby"] == standby_for(r["workers"])]
    fewest = min((r["workers"] for r in base), default=None)
    for key, rs in by_key.items():
        tp = [r for r in rs if "eps" in r]
        if tp:
            row: dict[str, Any] = {"workers": tp[0]["workers"], "standby": tp[0]["standby"],
                                   "eps": _stats([r["eps"] for r in tp])}
            ratios = []
            for r in tp:
                ref = [b["eps"] for b in base
                       if b["round"] == r["round"] and b["workers"] == fewest]
                if ref:
                    ratios.append(r["eps"] / ref[0])
            if ratios:
                row["ratio_to_fewest"] = statistics.median(ratios)
            for part in ("worker_cores", "broker_cores", "worker_us_per_event",
                         "broker_us_per_event", "machine_busy"):
                values = [r["cpu"][part] for r in tp if part in r.get("cpu", {})]
                if values:
                    row[part] = statistics.median(values)
            out["throughput"][key] = row
        fo = [r["failover"] for r in rs if "failover" in r]
        if fo:
            out["failover"][key] = {"workers": rs[0]["workers"], "standby": rs[0]["standby"],
                                    **{k: _stats([f[k] for f in fo])
                                       for k in ("all_s", "first_s", "member_gone_s",
                                                 "after_gone_s")}}
    bp = [r["broker"] for r in runs if "broker" in r]
    if bp:
        out["broker_pause"] = {
            "workers": next(r["workers"] for r in runs if "broker" in r),
            **{k: _stats([b[k] for b in bp])
               for k in ("arrival_gap_s", "write_gap_s", "resumed_all_s", "normal_gap_s")},
            "led": [b["led"] for b in bp]}
    out["fewest_workers"] = fewest
    out["join_restarts"] = [f"round {r['round'] + 1}, {r['key']}, {why}" for r in runs
                            for why in r.get("restarts_while_joining", [])]
    loads = [x for r in runs for x in r["load_average"]]
    out["load_average"] = [min(loads), max(loads)] if loads else []
    return out


def _workers(n: int) -> str:
    return f"{n} worker{'s' if n != 1 else ''}"


def _standby(n: int) -> str:
    return "no standby" if n == 0 else f"{n} standby replica{'s' if n != 1 else ''}"


def _rng(s: dict[str, Any], fmt: str = ",.0f", unit: str = "") -> str:
    lo, hi = s["range"]
    return f"{lo:{fmt}}-{hi:{fmt}}{unit}"


def render(summary: dict[str, Any]) -> str:
    """`onewindow bench --brokers 3`'s report: throughput per worker count (with the
    cores' note), failover, broker pause, the load average, the results file."""
    m = summary["measured"]
    cores = summary["machine"]["cpus"]
    lines = [
        f"case state on a {summary['brokers']}-broker cluster (replication "
        f"{summary['replication']}, min.insync.replicas {summary['min_insync']}, "
        f"{summary['security']}), {summary['partitions']} partitions, "
        f"{summary['hold_cases']:,} cases held, {summary['rounds']} round(s), medians; "
        f"load average (1 min) {m['load_average'][0]:.1f}-{m['load_average'][1]:.1f}",
    ]
    tp = m["throughput"]
    if tp:
        lines.append(f"  throughput, {summary['events_per_run']:,} events drained "
                     "(first to last case-state record written):")
        lines.append(f"    {'':34} {'events/s':>9} {'range':>13} {'x fewest':>9} "
                     f"{'CPU: workers':>13} {'brokers':>8} {'machine busy':>13}")
        for row in tp.values():
            label = f"{_workers(row['workers'])}, {_standby(row['standby'])}"
            ratio = f"{row['ratio_to_fewest']:.2f}" if "ratio_to_fewest" in row else ""
            cpu = (f"{row['worker_cores']:.2f} cores", f"{row['broker_cores']:.2f}",
                   f"{row['machine_busy']:.0%}") if "machine_busy" in row else ("", "", "")
            lines.append(f"    {label:34} {row['eps']['median']:>9,.0f} "
                         f"{_rng(row['eps']):>13} {ratio:>9} {cpu[0]:>13} {cpu[1]:>8} "
                         f"{cpu[2]:>13}")
        most = max(tp.values(), key=lambda r: r["workers"])
        note = (f"    these machines have {cores} cores: {_workers(most['workers'])} (each a "
                "loop process and a step process) share them with the three brokers, the "
                "bench's reader and whatever else runs, so the ratio of more workers to "
                "fewer is capped by the cores, not by the partitions")
        if "worker_us_per_event" in most:
            per = most["worker_us_per_event"] + most["broker_us_per_event"]
            note += (f"; at the CPU an event measured ({most['worker_us_per_event']:,.0f} µs "
                     f"workers + {most['broker_us_per_event']:,.0f} µs brokers), {cores} "
                     f"cores would drain at most {cores * 1e6 / per:,.0f} events/s with "
                     "nothing else running")
        lines.append(note)
    for row in m["failover"].values():
        a, f, g = row["all_s"], row["first_s"], row["member_gone_s"]
        lines.append(
            f"  failover after SIGKILL of one of {row['workers']} workers, "
            f"{_standby(row['standby'])}, {summary['steady_rate_eps']:,.0f} events/s: its "
            f"partitions' output back after {a['median']:.1f} s ({_rng(a, '.1f')}; the "
            f"first {f['median']:.1f} s): the group dropped it after {g['median']:.1f} s "
            f"(the 15 s session timeout), its output back "
            f"{row['after_gone_s']['median']:.1f} s after that "
            f"({_rng(row['after_gone_s'], '.1f')})")
    if "broker_pause" in m:
        b = m["broker_pause"]
        a, w, r = b["arrival_gap_s"], b["write_gap_s"], b["resumed_all_s"]
        lines.append(
            f"  broker SIGKILL (the node leading most case-state partitions: "
            f"{'/'.join(map(str, b['led']))} of {summary['partitions']}), "
            f"{_workers(b['workers'])}, {summary['steady_rate_eps']:,.0f} events/s: longest "
            f"gap in case-state output {a['median']:.1f} s reaching a reader "
            f"({_rng(a, '.1f')}), {w['median']:.1f} s in the worker's writes "
            f"({_rng(w, '.1f')}); every partition's output back after "
            f"{r['median']:.1f} s; longest gap before the kill "
            f"{b['normal_gap_s']['median']:.2f} s")
    if m.get("join_restarts"):
        lines.append(f"  workers that exited while their group formed, started again as `up` "
                     f"would ({len(m['join_restarts'])}): "
                     + "; ".join(m["join_restarts"]))
    lines.append(f"results: {summary['path']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- processes


def _children_of(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in kids.read_text().split()]
    except OSError:
        return []


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of all cores since boot, in clock ticks (/proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


@dataclass
class _Worker:
    """One `onewindow worker` process of a run, its state under ``data_dir/stream/name``."""

    name: str
    env: dict[str, str]
    data_dir: Path
    web_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "onewindow_cli", "worker", "--name", self.name,
                 "--web-port", str(self.web_port)],
                env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def crash_reason(self) -> str:
        """Why it stopped, from its log: Faust's last ``Crashed reason=...``, else its
        exit status."""
        reasons = [line.split("Crashed reason=", 1)[1].strip()
                   for line in self.log.read_text(errors="replace").splitlines()
                   if "Crashed reason=" in line and "CancelledError" not in line]
        code = None if self.proc is None else self.proc.returncode
        return reasons[-1] if reasons else f"exited with {code}"

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise RuntimeError(f"worker {self.name} exited ({code}); see {self.log}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(  # noqa: S310 - the worker's loopback page
                    f"http://127.0.0.1:{self.web_port}/readyz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        """CPU seconds of the worker and its step process so far (0 when gone)."""
        if self.proc is None:
            return 0.0
        pids = [self.proc.pid, *_children_of(self.proc.pid)]
        return sum(_cpu_of(p) or 0.0 for p in pids)

    def send(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self) -> None:
        """Until it has exited (SIGKILL after 60 s)."""
        if self.proc is not None:
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.send(sig)
        self.wait()


class _Reader:
    """The bench's reader of a run's case-state topic: every record from the start, with
    when it was written and when it arrived (`Seen`), and each case's latest version."""

    def __init__(self, ks: Settings, topic: str) -> None:
        self.consumer = Consumer({**client_config(ks, ADMIN),
                                  "group.id": f"bench-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False})
        md = self.consumer.list_topics(topic, timeout=30)
        self.partitions = sorted(md.topics[topic].partitions)
        self.consumer.assign([TopicPartition(topic, p, 0) for p in self.partitions])
        self.codec = get_codec()
        self.seen: list[Seen] = []
        self.latest: dict[bytes, int] = {}
        n = len(self.partitions)
        #: a case's input partition (murmur2, as the SDK places its events), once a case
        self._home = lru_cache(maxsize=65536)(lambda key: partition_for(key, n))

    def poll(self, wait: float = 0.1) -> None:
        msgs = self.consumer.consume(10000, wait)
        now = time.time()
        for m in msgs:
            if m.error() is None:
                key = m.key()
                self.seen.append(Seen(m.partition(), m.timestamp()[1] / 1000.0, now,
                                      self._home(key)))
                v = self.codec.decode_record(m.value())["version"]
                if v > self.latest.get(key, 0):
                    self.latest[key] = v

    def until(self, cond: Callable[[], bool], what: str, procs: Iterable[_Worker] = (),
              timeout: float = WAIT_S, every: Callable[[], None] | None = None) -> None:
        """Read until ``cond()`` holds; ``every()`` after each read. Raises RuntimeError
        after ``timeout`` s or when one of ``procs`` has exited."""
        deadline = time.monotonic() + timeout
        procs = list(procs)
        while not cond():
            for p in procs:
                p.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.poll()
            if every is not None:
                every()

    def close(self) -> None:
        self.consumer.close()


class _Steady(threading.Thread):
    """Steady department traffic: the events of new cases, each published as its
    department (acks=all, idempotent), ``rate`` a second, until `stop`."""

    def __init__(self, ks: Settings, topics: Topics, codes: Iterable[str],
                 gen: ScenarioGenerator, rate: float) -> None:
        super().__init__(name="steady-load", daemon=True)
        self.pub = DepartmentPublishers(
            ks.kafka_bootstrap, topics=topics, departments=codes, codec=get_codec(),
            config_for=lambda d: producer_config(ks, department_principal(d)))
        self.gen, self.rate = gen, rate
        self.halt = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            start = time.monotonic()
            while not self.halt.is_set():
                for e in self.gen.case():
                    ahead = start + self.sent / self.rate - time.monotonic()
                    if ahead > 0 and self.halt.wait(ahead):
                        return
                    self.pub.send(e, validate_first=False)
                    self.sent += 1
        except BaseException as exc:  # noqa: BLE001 - raised again by `stop`
            self.error = exc

    def stop(self) -> None:
        self.halt.set()
        self.join(30)
        self.pub.flush(120)
        if self.error is not None:
            raise RuntimeError(f"the steady load failed: {self.error}") from self.error


# --------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class ClusterOptions:
    """What `onewindow bench --brokers 3` measures and how much."""

    workers: tuple[int, ...] = WORKERS
    events: int = EVENTS
    rounds: int = 3
    hold: int = HOLD
    rate: float = RATE
    out_dir: Path = Path("bench-results")


@dataclass
class _Bench:
    """What every run shares: the cluster, the settings that reach it, the fold states
    the held cases are copied from, where the runs keep their files."""

    cluster: LocalKafkaCluster
    ks: Settings
    opts: ClusterOptions
    tmp: Path
    codes: list[str]
    states: dict[str, bytes]
    say: Callable[[str], None]

    def admin(self) -> AdminClient:
        return AdminClient(producer_config(self.ks, ADMIN))

    def broker_cpu(self) -> float:
        return sum(_cpu_of(n.proc.pid) or 0.0 for n in self.cluster.nodes
                   if n.proc is not None and n.proc.poll() is None)

    def topic_names(self) -> list[str]:
        """Every topic of the cluster, the internal ones included."""
        return sorted(self.admin().list_topics(timeout=30).topics)


def _fold_states(settings: Settings, codes: list[str], partitions: int) -> dict[str, bytes]:
    """Fold states of `_STATE_SOURCES` generated cases (the pure step, no Kafka): what the
    held cases are copies of (`case_state._hold_cases`)."""
    prefix = "bench-hold."
    topics, codec = Topics(prefix), get_codec()
    gen = ScenarioGenerator(ScenarioConfig(seed=1717))
    now = int(time.time() * 1000)
    records = []
    for case in gen.cases(_STATE_SOURCES):
        for e in case:
            if e["department"] not in codes:
                continue
            key = e["case_id"].encode()
            records.append(InRecord(topics.input(e["department"]), partition_for(key, partitions),
                                    len(records), key, codec.encode(e), now))
    return _pure(records, settings, prefix)[1]


def _assignments(admin: AdminClient, group: str) -> tuple[Any, dict[str, set[tuple[str, int]]]]:
    """The group's state and each member's partitions, by its static instance id."""
    desc = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    return desc.state, {(m.group_instance_id or m.member_id):
                        {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}
                        for m in desc.members}


def _instance(worker: _Worker) -> str:
    from stream_apps.faust_base import group_instance_id  # noqa: PLC0415 - Faust, only here

    return group_instance_id(worker.name, worker.data_dir / "stream" / worker.name)


def _joined(b: _Bench, topics: Topics, workers: list[_Worker], standby: int) -> bool:
    """The group stable with exactly ``workers`` as members, every input partition held,
    each member holding standbys of partitions it does not own (when ``standby`` > 0 and
    there are two or more), and every worker ready."""
    try:
        state, a = _assignments(b.admin(), topics.case_state_app)
    except Exception:  # noqa: BLE001 - no group yet, or a broker away a moment
        return False
    inputs, changelog = set(topics.inputs(b.codes)), topics.case_fold_changelog
    if state != ConsumerGroupState.STABLE or set(a) != {_instance(w) for w in workers}:
        return False
    owned = [{p for t, p in parts if t in inputs} for parts in a.values()]
    if not all(owned) or set().union(*owned) != set(range(b.ks.partitions)):
        return False
    if standby > 0 and len(workers) > 1 and not all(
            {p for t, p in parts if t == changelog} - mine
            for parts, mine in zip(a.values(), owned, strict=True)):
        return False
    return all(w.ready() for w in workers)


def _publish_backlog(b: _Bench, records: list[tuple[str, bytes, bytes]]) -> None:
    """Every record, as fast as the producer goes (signed in as the gateway, which may
    write every input topic; the SDK's settings: murmur2 placement, acks=all)."""
    prod = Producer({**producer_config(b.ks, GATEWAY), **INPUT_PRODUCER_CONFIG,
                     "linger.ms": 20, "queue.buffering.max.messages": 1_000_000})
    for topic, key, value in records:
        while True:
            try:
                prod.produce(topic, value, key)
                break
            except BufferError:
                prod.poll(0.1)
        prod.poll(0)
    if prod.flush(120) != 0:
        raise RuntimeError("the backlog was not all acknowledged")


def _throughput(b: _Bench, topics: Topics, gen: ScenarioGenerator, reader: _Reader,
                workers: list[_Worker]) -> dict[str, Any]:
    cases: list[list[dict[str, Any]]] = []
    while sum(len(c) for c in cases) < b.opts.events:
        cases.append(gen.case())
    codec = get_codec()
    records = [(topics.input(e["department"]), e["case_id"].encode(), codec.encode(e))
               for c in cases for e in c]
    #: (wall clock, workers' CPU s, brokers' CPU s, machine's busy and total ticks)
    Reading = tuple[float, float, float, tuple[int, int]]
    readings: list[Reading] = []

    def reading() -> Reading:
        return (time.monotonic(), sum(w.cpu_seconds() for w in workers), b.broker_cpu(),
                _machine_jiffies())

    def first() -> None:  # the drain's CPU counted from its first output on
        if not readings and reader.seen:
            readings.append(reading())

    done = _reached(_versions(cases))
    _publish_backlog(b, records)
    reader.until(lambda: done(reader.latest), "the backlog's final case states", workers,
                 every=first)
    end = reading()
    stamps = [s.written for s in reader.seen]
    seconds = max(max(stamps) - min(stamps), 0.001)
    events = len(records)
    out: dict[str, Any] = {"events": events, "cases": len(cases), "eps": events / seconds,
                           "states": len(reader.seen)}
    if readings and end[0] > readings[0][0]:
        (t0, w0, b0, (busy0, total0)), (t1, w1, b1, (busy1, total1)) = readings[0], end
        wall = t1 - t0
        out["cpu"] = {"worker_cores": (w1 - w0) / wall, "broker_cores": (b1 - b0) / wall,
                      "worker_us_per_event": (w1 - w0) * 1e6 / events,
                      "broker_us_per_event": (b1 - b0) * 1e6 / events}
        if total1 > total0:
            out["cpu"]["machine_busy"] = (busy1 - busy0) / (total1 - total0)
    return out


def _warm(reader: _Reader, workers: list[_Worker]) -> None:
    """Until every case-state partition has output written from now on, then
    `WARMUP_S` more of it."""
    since = time.time()
    every = reader.partitions
    reader.until(lambda: len(resumed(reader.seen, every, since)) == len(every) and
                 len(resumed(reader.seen, every, since, home=True)) == len(every),
                 "steady output on every partition", workers)
    until = time.time() + WARMUP_S
    reader.until(lambda: time.time() >= until, "the warm-up", workers)


def _failover(b: _Bench, topics: Topics, reader: _Reader, workers: list[_Worker]
              ) -> dict[str, Any]:
    """SIGKILL the last of ``workers`` under the steady load (module docstring, 3)."""
    _warm(reader, workers)
    victim, survivors = workers[-1], workers[:-1]
    inputs = set(topics.inputs(b.codes))
    _, a = _assignments(b.admin(), topics.case_state_app)
    owned = sorted({p for t, p in a[_instance(victim)] if t in inputs})
    killed = time.time()
    victim.stop(signal.SIGKILL)
    dead = time.time()  # reaped: whatever is written after this is a survivor's
    gone: list[float] = []
    admin, last_look = b.admin(), [0.0]

    def look() -> None:  # once a second: is the dead member out of the group yet?
        if gone or time.monotonic() - last_look[0] < 1.0:
            return
        last_look[0] = time.monotonic()
        try:
            if _instance(victim) not in _assignments(admin, topics.case_state_app)[1]:
                gone.append(time.time())
        except Exception:  # noqa: BLE001,S110 - ask again in a second
            pass

    reader.until(lambda: len(resumed(reader.seen, owned, dead, home=True)) == len(owned),
                 f"the cases of partitions {owned} of the killed worker to have output "
                 "again", survivors, every=look)
    back = resumed(reader.seen, owned, dead, home=True)
    reader.until(lambda: bool(gone), "the group to drop the killed worker", survivors,
                 every=look)
    return {"owned": owned, "all_s": max(back.values()) - killed,
            "first_s": min(back.values()) - killed, "member_gone_s": gone[0] - killed,
            "after_gone_s": max(back.values()) - gone[0],
            "each_s": {str(p): t - killed for p, t in sorted(back.items())},
            "reaped_s": dead - killed}


def _broker_pause(b: _Bench, topics: Topics, reader: _Reader, workers: list[_Worker],
                  down: list[int]) -> dict[str, Any]:
    """SIGKILL the node leading most case-state partitions under the steady load and
    watch the output (module docstring, 4); the node's id goes into ``down`` (the run
    starts it again once its load has stopped: `_restart`)."""
    _warm(reader, workers)
    conf = b.cluster.admin_config()
    victim = leader_of_most(conf, [topics.case_state])
    led = sum(1 for node in partition_leaders(conf, [topics.case_state]).values()
              if node == victim)
    killed = time.time()
    b.cluster.kill(victim)
    down.append(victim)
    every = reader.partitions
    reader.until(lambda: len(resumed(reader.seen, every, killed)) == len(every),
                 "output on every partition after the broker's kill", workers)
    back = resumed(reader.seen, every, killed)
    settle = time.time() + SETTLE_S
    reader.until(lambda: time.time() >= settle, "output after the broker's kill", workers)
    end = time.time()
    start = killed - BEFORE_S
    arrival, arrival_at = longest_gap((s.arrived for s in reader.seen), start, end)
    written = [s.written for s in reader.seen]
    write, write_at = longest_gap(written, start, max(written))
    normal, _ = longest_gap((s.arrived for s in reader.seen), start, killed)
    return {"node": victim, "led": led, "arrival_gap_s": arrival,
            "arrival_gap_from_kill_s": arrival_at - killed, "write_gap_s": write,
            "write_gap_from_kill_s": write_at - killed,
            "resumed_all_s": max(back.values()) - killed, "normal_gap_s": normal}


def _one_run(b: _Bench, spec: RunSpec, rnd: int) -> dict[str, Any]:
    """One run of `plan` (module docstring)."""
    load_before = os.getloadavg()[0]
    marks = [time.monotonic()]
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    topics = Topics(prefix)
    ks = b.ks.model_copy(update={"topic_prefix": prefix})
    provision(ks, b.codes)
    held_bytes = _hold_cases(b.ks, topics, b.ks.partitions, b.states, b.opts.hold)
    run_dir = b.tmp / f"round{rnd}-{spec.key}"
    env = dict(os.environ, **kafka_env(b.ks), ONEWINDOW_TOPIC_PREFIX=prefix,
               ONEWINDOW_DATA_DIR=str(run_dir), ONEWINDOW_PARTITIONS=str(b.ks.partitions),
               ONEWINDOW_ID_HASH_KEY=resolve_id_hash_key(b.ks),
               ONEWINDOW_TABLE_STANDBY_REPLICAS=str(spec.standby))
    env.pop("ONEWINDOW_ID_HASH_KEY_FILE", None)
    workers = [_Worker(f"w{i}", env, run_dir) for i in range(1, spec.workers + 1)]
    gen = ScenarioGenerator(ScenarioConfig(seed=1000 * rnd + 10 * spec.workers + spec.standby,
                                           run=uuid.uuid4().hex[:4]))
    reader = _Reader(b.ks, topics.case_state)
    steady: _Steady | None = None
    down: list[int] = []
    out: dict[str, Any] = {"round": rnd, "key": spec.key, "workers": spec.workers,
                           "standby": spec.standby, "prefix": prefix, "held_bytes": held_bytes}
    phases: dict[str, float] = {}
    out["phase_s"] = phases

    def phase(name: str) -> None:  # the wall-clock seconds each part of the run took
        marks.append(time.monotonic())
        phases[name] = marks[-1] - marks[-2]

    phase("provision_and_hold")
    ended = False
    try:
        started = time.monotonic()
        for w in workers:
            w.start()
        deadline = time.monotonic() + WAIT_S
        restarts: list[str] = []
        while not _joined(b, topics, workers, spec.standby):
            for w in workers:
                if not w.alive() and len(restarts) < MAX_JOIN_RESTARTS:
                    # started again, as `up` would: see MAX_JOIN_RESTARTS
                    restarts.append(f"{w.name}: {w.crash_reason()}")
                    b.say(f"  round {rnd + 1}, {spec.key}: {restarts[-1]}; started again")
                    w.start()
                w.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{spec.key}: the group was not stable within {WAIT_S:.0f} s"
                                   f"; see {run_dir}")
            time.sleep(0.5)
        out["joined_s"] = time.monotonic() - started
        out["restarts_while_joining"] = restarts
        phase("join")
        if spec.throughput:
            out.update(_throughput(b, topics, gen, reader, workers))
            b.say(f"  round {rnd + 1}, {spec.key}: {out['eps']:,.0f} events/s")
            phase("throughput")
        if spec.failover or spec.broker:
            steady = _Steady(b.ks, topics, b.codes, gen, b.opts.rate)
            steady.start()
        if spec.failover:
            out["failover"] = _failover(b, topics, reader, workers)
            b.say(f"  round {rnd + 1}, {spec.key}: failover "
                  f"{out['failover']['all_s']:.1f} s")
            phase("failover")
        if spec.broker:
            out["broker"] = _broker_pause(b, topics, reader, workers, down)
            b.say(f"  round {rnd + 1}, {spec.key}: broker pause "
                  f"{out['broker']['arrival_gap_s']:.1f} s")
            phase("broker")
        if steady is not None:
            out["steady_events"] = steady.sent
        ended = True
    finally:
        try:
            if steady is not None:
                steady.stop()
        finally:
            # a node killed here is started again for the next run only: a run that
            # raised (a timeout, Ctrl-C, SIGTERM) ends the bench, whose cluster is stopped
            _stop_all(b, workers, reader, down if ended else [])
    phase("stop")
    out["load_average"] = [load_before, os.getloadavg()[0]]
    return out


def _stop_all(b: _Bench, workers: list[_Worker], reader: _Reader, down: list[int]) -> None:
    """The end of a run: its workers stopped, its reader closed, a node it killed started
    again."""
    try:
        for w in workers:  # every stop asked for at once, then each waited for
            w.send()
        for w in workers:
            w.wait()
        reader.close()
    finally:
        for node in down:  # the next run on a whole cluster, every replica in sync
            b.cluster.start_node(node, timeout=WAIT_S)
            wait_in_sync(b.cluster.admin_config(), b.topic_names(), timeout=WAIT_S)


def run(settings: Settings, opts: ClusterOptions,
        say: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Every run of `plan`, ``opts.rounds`` times, on a three-node cluster of the bench's
    own; the results as JSON under ``opts.out_dir`` (its path in ``path``), `summarise`d
    under ``measured``. Raises RuntimeError when a worker exits or a wait times out (the
    run's files are kept then; its temporary directory named)."""
    settings = with_new_key(settings)  # an ephemeral ID hash key for this run
    tmp = Path(tempfile.mkdtemp(prefix="onewindow-bench-cluster-"))
    cluster = LocalKafkaCluster(data_dir=tmp / "cluster",
                                ports=[(free_port(), free_port()) for _ in range(BROKERS)],
                                version=settings.kafka_version, cache_dir=settings.cache_dir,
                                security=settings.kafka_security_protocol,
                                credentials_dir=tmp / "credentials")
    say(f"starting a {BROKERS}-node cluster under {tmp} ...")
    cluster.start()
    ks = settings.model_copy(update={
        "kafka_bootstrap": cluster.bootstrap, "kafka_credentials_dir": tmp / "credentials",
        "replication_factor": cluster.replication, "topic_prefix": "",
        **({"kafka_ssl_ca_file": cluster.ca_file} if cluster.security == "SASL_SSL" else {})})
    codes = sorted(load_registry(settings.departments_file).codes)
    runs: list[dict[str, Any]] = []
    ok = False
    try:
        b = _Bench(cluster, ks, opts, tmp, codes,
                   _fold_states(ks, codes, ks.partitions), say)
        for rnd in range(opts.rounds):
            for spec in plan(opts.workers):
                runs.append(_one_run(b, spec, rnd))
        ok = True
    finally:
        cluster.stop()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            say(f"kept {tmp} (the workers' and brokers' logs)")
    summary: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "brokers": BROKERS, "replication": cluster.replication,
        "min_insync": min_insync_for(cluster.replication),
        "security": settings.kafka_security_protocol, "partitions": ks.partitions,
        "workers": list(opts.workers), "events_per_run": opts.events, "rounds": opts.rounds,
        "hold_cases": opts.hold, "steady_rate_eps": opts.rate,
        "runs": runs, "measured": summarise(runs),
    }
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    path = opts.out_dir / f"bench-cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2))
    summary["path"] = str(path)
    return summary


# --------------------------------------------------------------------------- the command


def add_options(p: argparse.ArgumentParser) -> None:
    """`onewindow bench`'s options of this mode: `--brokers` and `--workers`."""
    p.add_argument("--brokers", type=int, choices=(1, BROKERS), default=1,
                   help=f"{BROKERS}: the case-state worker on a {BROKERS}-node cluster of the "
                        "bench's own (replication 3, min.insync.replicas 2): throughput "
                        "with each --workers count, the failover after a worker SIGKILL "
                        "with and without standby replicas, the pause in output after a "
                        f"broker SIGKILL (docs/benchmarks.md; with the defaults about 15 "
                        f"min); there --events defaults to {EVENTS}, --hold-cases to "
                        f"{HOLD}")
    p.add_argument("--workers", type=parse_workers, default=None, metavar="N[,N...]",
                   help=f"--brokers {BROKERS}: the worker counts measured (default "
                        f"{','.join(map(str, WORKERS))})")
    p.add_argument("--steady-rate", dest="steady_rate", type=positive_float, default=RATE,
                   help=f"--brokers {BROKERS}: events/s of the steady input while a worker "
                        f"or a broker is killed (default {RATE:g})")


def refuse_other_options(args: argparse.Namespace) -> None:
    """Raise `ConfigError` (one line, exit 2, before anything starts) for `onewindow
    bench` options that do not go together: `--workers` without `--brokers 3`, or with
    it an option of another run or an external broker."""
    if args.brokers != BROKERS:
        if args.workers is not None:
            raise ConfigError(f"--workers is measured on a cluster: add --brokers {BROKERS}")
        return
    for flag, given in (("--bootstrap", args.bootstrap is not None),
                        ("--scale", args.scale is not None),
                        ("--all", bool(getattr(args, "all", False))),
                        ("--plaintext-baseline", args.plaintext_baseline),
                        ("--profile", args.profile is not None)):
        if given:
            raise ConfigError(f"{flag} does not go with --brokers {BROKERS} (that run starts "
                              "a cluster of its own and kills one of its nodes): give one "
                              "or the other")


def cmd(args: argparse.Namespace, settings: Settings) -> int:
    """`onewindow bench --brokers 3`: run, print `render`, exit 0."""
    opts = ClusterOptions(workers=args.workers or WORKERS,
                          events=args.events if args.events is not None else EVENTS,
                          rounds=args.rounds,
                          hold=args.hold_cases if args.hold_cases is not None else HOLD,
                          rate=args.steady_rate, out_dir=Path(args.out))
    summary = run(settings, opts, say=lambda m: print(m, flush=True))  # noqa: T201
    print(render(summary))  # noqa: T201
    return 0
