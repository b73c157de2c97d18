"""`onewindow bench-gateway`: events/s through the HTTP ingestion gateway against the
producer SDK's direct publish, on the same broker in the same run.

One secured broker (its own, from the jars, unless ONEWINDOW_KAFKA_BOOTSTRAP is set), one
topic prefix, one gateway process (`onewindow gateway`, signed in as `svc-gateway`, its
key store in a temporary SQLite file, the rate limit lifted) with a key per department.
Each repeat measures, in turn, on fresh realistic events (`producers.scenarios`, every
department's share, new ids each time so nothing is a duplicate):

- `direct`: the SDK (`producers.publisher.DepartmentPublishers`, one idempotent producer
  per department signed in as it, every event checked by `prepare_record` as
  `onewindow produce` does), from the first send to the flush that returns once the broker
  has acknowledged everything;
- `gateway_b1`, `gateway_b50`, `gateway_b500`: the same kind of events POSTed as JSON
  arrays of 1, 50 and 500 events of one department (as a department's system would send
  them), ``concurrency`` requests in flight, keep-alive connections, the bodies encoded
  before the clock starts; from the first request to the last answer (every answer comes
  after the broker's acknowledgement of its events, and every event must be `accepted`).

Both sides are warmed up first (connections, sign-in, one request per department, then
one unmeasured round of the direct publish and of batches of 500, so that the broker's
JVM is warm before the first measured repeat). In each repeat the direct publish and the
batches of 500 are measured in halves, back to back, in the order direct, gateway,
gateway, direct (each rate is its events over the two halves' time), so that what the
machine's other load and the broker's warming do to one does about the same to the
other; then batches of 50 and of 1. While it
measures, the bench's own inputs (the events prepared before the clock starts) are kept
out of the garbage collector's full collections (``gc.freeze``), which would otherwise
charge their cost to whichever path is measured (more to the direct one, whose events
are decoded ahead).

It reports medians over the repeats, the ratio of each gateway rate to the direct one (of
the medians, and the median of each repeat's own ratio), each batch size's request
latency (median and p95 over every request of every repeat), the machine's load average
(1 minute) before and after each repeat, and, on Linux, the CPU time an event cost: the
gateway process and its checking processes during batches of 500 (``/proc``), and the
bench's own process during the direct publish (the SDK and librdkafka's threads). The
JSON goes to ``<out>/bench-gateway-<time>.json``. Speed is measured here, never asserted
by a timed test.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from gateway import key_migrations, keys
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.errors import OneWindowError
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import provision
from onewindow.read_model.engine import make_engine
from onewindow.security.kafka_auth import department_principal, kafka_env, producer_config
from onewindow.topics import Topics
from onewindow_cli.bench.children import stop
from producers.publisher import DepartmentPublishers
from producers.scenarios import ScenarioConfig, ScenarioGenerator

__all__ = ["BATCH_SIZES", "BenchError", "run"]

BATCH_SIZES = (1, 50, 500)


class BenchError(OneWindowError):
    """The benchmark could not run, or an event was not accepted."""


def _events(seed: int, n: int) -> list[dict[str, Any]]:
    """At least ``n`` scenario events in the JSON form, ids unique to this call."""
    gen = ScenarioGenerator(ScenarioConfig(seed=seed, run=uuid.uuid4().hex[:6]))
    codec = get_codec()
    out: list[dict[str, Any]] = []
    while len(out) < n:
        out.extend(codec.to_json(e) for e in gen.case())
    return out[:n]


def _batches(events: list[dict[str, Any]], size: int) -> list[tuple[str, bytes, int]]:
    """(department, JSON array body, events) of at most ``size`` events of one department
    each, departments interleaved as their systems would send concurrently."""
    by_dept: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_dept[e["department"]].append(e)
    queues = {d: [es[i:i + size] for i in range(0, len(es), size)] for d, es in
              by_dept.items()}
    out: list[tuple[str, bytes, int]] = []
    while any(queues.values()):
        for d, q in queues.items():
            if q:
                batch = q.pop(0)
                out.append((d, json.dumps(batch, ensure_ascii=False).encode(), len(batch)))
    return out


# --------------------------------------------------------------------------- the gateway


@contextmanager
def _gateway(ks: Settings, prefix: str, tmp: Path
             ) -> Iterator[tuple[str, dict[str, str], int]]:
    """A gateway process on ``ks``'s broker (its checking processes as ``ks`` says); its
    base URL, a key per department and its process id."""
    tmp.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{tmp / 'gateway-keys.db'}"
    engine = make_engine(db_url, writer=True)
    try:
        key_migrations.upgrade(engine)
        now = datetime.now(UTC)
        dept_keys = {d: keys.issue(engine, d, "bench", now).key
                     for d in sorted(load_registry(ks.departments_file).codes)}
    finally:
        engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEWINDOW_")}
    env.update(kafka_env(ks), ONEWINDOW_DATABASE_URL=db_url, ONEWINDOW_TOPIC_PREFIX=prefix,
               ONEWINDOW_DATA_DIR=str(tmp / "data"),
               ONEWINDOW_GATEWAY_EVENTS_PER_SECOND="1000000000",
               ONEWINDOW_GATEWAY_BURST_EVENTS="1000000000",
               ONEWINDOW_GATEWAY_CHECK_PROCESSES=str(ks.gateway_check_processes))
    if ks.departments_file is not None:
        env["ONEWINDOW_DEPARTMENTS_FILE"] = str(ks.departments_file)
    log = tmp / "gateway.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "onewindow_cli", "gateway", "--port",
                                 str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise BenchError(f"the gateway exited; see {log}")
            if time.monotonic() > deadline:
                raise BenchError(f"the gateway did not become healthy; see {log}")
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield base, dept_keys, proc.pid
    finally:
        stop(proc)


async def _post_all(base: str, dept_keys: dict[str, str],
                    batches: list[tuple[str, bytes, int]], concurrency: int
                    ) -> tuple[float, list[float]]:
    """Every batch POSTed, ``concurrency`` at a time: (seconds from the first request to the
    last answer, each request's latency)."""
    queue: asyncio.Queue[tuple[str, bytes, int]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    latencies: list[float] = []
    headers = {d: {"Authorization": f"Bearer {k}", "Content-Type": "application/json"}
               for d, k in dept_keys.items()}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        await client.get("/healthz")  # the connections' first use is not timed

        async def worker() -> None:
            while not queue.empty():
                dept, body, n = queue.get_nowait()
                t0 = time.perf_counter()
                r = await client.post("/ingest/v1/events", content=body, headers=headers[dept])
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200 or r.json()["accepted"] != n:
                    raise BenchError(f"gateway answered {r.status_code}: {r.text[:500]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def _through_gateway(base: str, dept_keys: dict[str, str], events: list[dict[str, Any]],
                     size: int, concurrency: int) -> tuple[float, list[float]]:
    """(events/s, request latencies) of ``events`` in batches of ``size``."""
    batches = _batches(events, size)
    seconds, latencies = asyncio.run(_post_all(base, dept_keys, batches, concurrency))
    return len(events) / seconds, latencies


# --------------------------------------------------------------------------- the SDK


def _direct(ks: Settings, topics: Topics, events: list[dict[str, Any]],
            warm: list[dict[str, Any]]) -> float:
    """events/s of the SDK's direct publish: checked, encoded, sent, all acknowledged."""
    registry = load_registry(ks.departments_file)
    codec = get_codec()
    decoded = [codec.from_json(e) for e in events]
    with DepartmentPublishers(ks.kafka_bootstrap, topics=topics, departments=registry.codes,
                              codec=codec, counters=registry.counter_codes,
                              config_for=lambda d: producer_config(ks, department_principal(d))
                              ) as pub:
        for e in warm:  # every department's producer connected and signed in
            pub.send(codec.from_json(e))
        pub.flush()
        started = time.perf_counter()
        for e in decoded:
            pub.send(e)
        pub.flush(120)
        seconds = time.perf_counter() - started
    return len(events) / seconds


# --------------------------------------------------------------------------- the run


@contextmanager
def _inputs_frozen() -> Iterator[None]:
    """What the bench holds now (its prepared events) out of the garbage collector's full
    collections while a path is measured (module docstring)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds of process ``pid`` (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the gateway's checking processes and
    multiprocessing's resource tracker); empty without ``/proc``."""
    out = []
    for entry in Path("/proc").glob("[0-9]*/stat") if Path("/proc").is_dir() else ():
        try:
            if int(entry.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return out


def _cpu_of(pids: list[int]) -> dict[int, float]:
    return {p: c for p in pids if (c := _cpu_seconds(p)) is not None}


def _one_per_department(seed: int) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for e in _events(seed, 2000):
        seen.setdefault(e["department"], e)
    return list(seen.values())


def _is_checking(pid: int) -> bool:
    """A checking process of the gateway's (not multiprocessing's resource tracker)."""
    try:
        return b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _measure(ks: Settings, prefix: str, tmp: Path, *, events: int, single_events: int,
             repeats: int, concurrency: int) -> dict[str, Any]:
    topics = Topics(prefix)
    runs: list[dict[str, float]] = []
    latencies: dict[int, list[float]] = {s: [] for s in BATCH_SIZES}
    loads: list[tuple[float, float]] = []
    cpu: dict[str, list[float]] = defaultdict(list)
    with _gateway(ks, prefix, tmp / "gateway") as (base, dept_keys, pid):
        # warm-up, not measured: the connections, then one round of each path, so the
        # broker's JVM is past its warm-up before the first measured repeat (the direct
        # rate kept climbing over the repeats without it)
        _through_gateway(base, dept_keys, _one_per_department(1), 1, concurrency)
        _direct(ks, topics, _events(999, events), _one_per_department(999))
        _through_gateway(base, dept_keys, _events(998, events), 500, concurrency)
        checking = [p for p in _children(pid) if _is_checking(p)]

        def direct(seed: int, n: int) -> float:
            """Seconds of the direct publish of ``n`` events."""
            batch, warm = _events(seed, n), _one_per_department(seed)
            with _inputs_frozen():
                before = time.process_time()
                eps = _direct(ks, topics, batch, warm)
                cpu["direct"].append((time.process_time() - before) / n * 1e6)
            return n / eps

        def gateway(seed: int, size: int, n: int) -> float:
            """Seconds of ``n`` events through the gateway in batches of ``size``."""
            batch = _events(seed, n)
            with _inputs_frozen():
                before = _cpu_of([pid, *checking])
                eps, lat = _through_gateway(base, dept_keys, batch, size, concurrency)
                after = _cpu_of([pid, *checking])
            latencies[size].extend(lat)
            if size == 500 and pid in before and pid in after:
                cpu["gateway_b500"].append((after[pid] - before[pid]) / n * 1e6)
                cpu["checking_b500"].append(sum(after[p] - before[p] for p in checking
                                                if p in before and p in after) / n * 1e6)
            return n / eps

        for r in range(repeats):
            seed = 1000 + r
            load_before = os.getloadavg()[0]
            # the direct publish and batches of 500 in two halves, back to back in the
            # order direct, gateway, gateway, direct (docstring)
            half = max(1, events // 2)
            direct_s = direct(seed, half)
            gateway_s = gateway(seed, 500, half) + gateway(seed + 500, 500, events - half)
            direct_s += direct(seed + 500, events - half)
            run = {"direct_eps": events / direct_s, "gateway_b500_eps": events / gateway_s}
            for size in (50, 1):
                n = single_events if size == 1 else events
                run[f"gateway_b{size}_eps"] = n / gateway(seed, size, n)
            runs.append({k: run[k] for k in ("direct_eps", *(f"gateway_b{s}_eps"
                                                            for s in BATCH_SIZES))})
            loads.append((round(load_before, 2), round(os.getloadavg()[0], 2)))
    med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
    return {
        "runs": runs,
        "load_average_per_repeat": loads,
        # CPU microseconds an event, medians over the repeats (Linux; absent elsewhere)
        "cpu_us_per_event": {k: round(statistics.median(v), 1) for k, v in cpu.items()},
        "median_eps": med,
        "ratio_to_direct": {f"b{s}": med[f"gateway_b{s}_eps"] / med["direct_eps"]
                            for s in BATCH_SIZES},
        # within each repeat (the two measured minutes apart, not repeats apart): the
        # steadier figure on a machine shared with other work
        "median_ratio_per_repeat": {
            f"b{s}": statistics.median(x[f"gateway_b{s}_eps"] / x["direct_eps"] for x in runs)
            for s in BATCH_SIZES},
        "request_latency_s": {f"b{s}": {"p50": _percentile(v, 0.5),
                                        "p95": _percentile(v, 0.95)}
                              for s, v in latencies.items()},
    }


def run(settings: Settings, *, events: int, single_events: int, repeats: int,
        concurrency: int, out_dir: Path) -> dict[str, Any]:
    """Every measurement (module docstring), ``repeats`` times; medians, ratios and the
    path of the JSON written to ``out_dir``."""
    if events < 1 or single_events < 1 or repeats < 1 or concurrency < 1:
        raise BenchError("--events, --single-events, --repeats and --concurrency are >= 1")
    tmp = Path(tempfile.mkdtemp(prefix="onewindow-bench-gateway-"))
    load_before = os.getloadavg()
    broker = None
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
    try:
        prefix = f"bgw{uuid.uuid4().hex[:6]}."
        provision(ks.model_copy(update={"topic_prefix": prefix}),
                  load_registry(settings.departments_file).codes)
        measured = _measure(ks, prefix, tmp, events=events, single_events=single_events,
                            repeats=repeats, concurrency=concurrency)
    finally:
        if broker is not None:
            broker.stop()
    shutil.rmtree(tmp, ignore_errors=True)  # kept when it failed: the gateway's log
    summary = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    # the 1-minute load average before and after: other work on the machine
                    "load_average": [round(load_before[0], 2),
                                     round(os.getloadavg()[0], 2)]},
        "events": events, "single_events": single_events, "repeats": repeats,
        "concurrency": concurrency, "partitions": settings.partitions,
        "check_processes": settings.gateway_check_processes,
        "security": ks.kafka_security_protocol, **measured,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-gateway-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2))
    summary["path"] = str(path)
    return summary
