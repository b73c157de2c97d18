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
JVM is warm before the first measured repeat). It
reports medians over the repeats, the ratio of each gateway rate to the direct one (of
the medians, and the median of each repeat's own ratio), and each batch size's request
latency (median and p95 over every request of every repeat);
the JSON goes to ``<out>/bench-gateway-<time>.json``. Speed is measured here, never
asserted by a timed test.
"""

from __future__ import annotations

import asyncio
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
             ) -> Iterator[tuple[str, dict[str, str]]]:
    """A gateway process on ``ks``'s broker (its checking processes as ``ks`` says); its
    base URL and a key per department."""
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
        yield base, dept_keys
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


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


def _one_per_department(seed: int) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for e in _events(seed, 2000):
        seen.setdefault(e["department"], e)
    return list(seen.values())


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _measure(ks: Settings, prefix: str, tmp: Path, *, events: int, single_events: int,
             repeats: int, concurrency: int) -> dict[str, Any]:
    topics = Topics(prefix)
    runs: list[dict[str, float]] = []
    latencies: dict[int, list[float]] = {s: [] for s in BATCH_SIZES}
    with _gateway(ks, prefix, tmp / "gateway") as (base, dept_keys):
        # warm-up, not measured: the connections, then one round of each path, so the
        # broker's JVM is past its warm-up before the first measured repeat (the direct
        # rate kept climbing over the repeats without it)
        _through_gateway(base, dept_keys, _one_per_department(1), 1, concurrency)
        _direct(ks, topics, _events(999, events), _one_per_department(999))
        _through_gateway(base, dept_keys, _events(998, events), 500, concurrency)
        for r in range(repeats):
            seed = 1000 + r
            run: dict[str, float] = {
                "direct_eps": _direct(ks, topics, _events(seed, events),
                                      _one_per_department(seed))}
            for size in BATCH_SIZES:
                n = single_events if size == 1 else events
                eps, lat = _through_gateway(base, dept_keys, _events(seed, n), size,
                                            concurrency)
                run[f"gateway_b{size}_eps"] = eps
                latencies[size].extend(lat)
            runs.append(run)
    med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
    return {
        "runs": runs,
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
