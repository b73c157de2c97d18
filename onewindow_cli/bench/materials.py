"""`onewindow bench-materials`: the scale check of duplicate-material detection.

1. Generate a realistic population with `producers.scenarios.ScenarioGenerator` until it
   holds at least `--materials` materials (ID cards resubmitted at the counter and at
   other departments, numbers typed with spaces, dashes or full-width digits, numbers not
   recorded at one desk, conflicting facts, business licences issued as certificates
   before their paper copies come back).
2. Turn every material event into the `onewindow.case-activity` record the case-state app
   writes for it, shuffle them, send a share twice (replays), publish them all under a
   fresh topic prefix.
3. Start `onewindow materials-worker` as a process, poll its `/metrics` until every index
   record is processed: materials/s is measured between the first and the last poll that
   saw progress (startup and rebalance excluded), and the worker's CPU time over the same
   span (``/proc``: user + system), per material.
4. Read `onewindow.material-links`, fold it to distinct pairs, and compare with the pure
   rules (`links_via_index`, equal to `all_links` by a property test) and the avoidable
   set; measure the RocksDB directory on disk and the index sizes.

Before the broker starts, the pure part (`onewindow_cli.bench.materials_pure`, issue 15):
the same materials through the worker's two steps without Kafka, this tree against a
baseline commit, medians of ``--rounds``, and the cost of the largest keys.

Results go to `bench-results/materials-<time>.json` and tables on stdout.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from onewindow.codec import Codec, get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.domain.material_index import index_keys as routed_keys
from onewindow.domain.material_index import links_via_index
from onewindow.domain.materials import (
    Link,
    Material,
    is_avoidable,
    material_from_event,
)
from onewindow.errors import OneWindowError
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import provision
from onewindow.security.id_key import resolve_id_hash_key, with_new_key
from onewindow.security.id_protection import IdProtector
from onewindow.security.kafka_auth import (
    ADMIN,
    STREAM,
    client_config,
    kafka_env,
    producer_config,
)
from onewindow.security.protected_form import activity_event
from onewindow.topics import Topics, record_key
from onewindow_cli.bench import materials_pure


class BenchError(OneWindowError):
    """The benchmark could not run or its result differs from the pure rules."""


# --------------------------------------------------------------------------- building blocks


def activity_value(codec: Codec, event: dict[str, Any], *, version: int = 1,
                   offset: int = 0, ids: IdProtector | None = None) -> bytes:
    """The `onewindow.case-activity` record the case-state app writes for an applied
    event (the same fields as `CaseProcessor._activity_record`): its JSON form protected
    with ``ids`` as the app does, or plain (as written before the app protected ID
    numbers, which the materials app still reads) when ``ids`` is None."""
    obj = codec.to_json(event)
    if ids is not None:
        obj = ids.protect_event(obj)
    return codec.encode_record("CaseActivity", {
        "case_id": event["case_id"],
        "event_id": event["event_id"],
        "event_type": event["type"],
        "department": event["department"],
        "occurred_at": event["occurred_at"],
        "version": version,
        "task_id": event.get("task_id"),
        "status": event.get("status"),
        "material_id": event.get("material_id") or event.get("certificate_id"),
        "event_json": json.dumps(obj, ensure_ascii=False, separators=(",", ":")),
        "source_topic": f"dept.{event['department']}.events",
        "source_partition": 0,
        "source_offset": offset,
        "source_timestamp": None,
    })


def material_events(materials: int, seed: int, workdir: Path) -> list[dict[str, Any]]:
    """Scenario events that are materials, from as many cases as it takes. The generator
    belongs to the producer runtime, which this one never imports: it runs as
    `onewindow scenario` and hands over a JSON-lines file."""
    path = workdir / "materials.jsonl"
    subprocess.run([sys.executable, "-m", "onewindow_cli", "scenario", "--materials",
                    str(materials), "--seed", str(seed), "--only-materials", "-o", str(path)],
                   check=True)
    codec = get_codec()
    with path.open(encoding="utf-8") as fh:
        return [codec.loads_json_line(line) for line in fh if line.strip()]


def expected(materials: Iterable[Material]) -> tuple[set[Link], set[str]]:
    """The pure rules over all materials: the link set and the avoidable ids (the
    reference `avoidable_set` is O(n^2); this is the same rule over `links_via_index`)."""
    by_id = {m.material_id: m for m in materials}
    links = links_via_index(by_id.values())
    partners: dict[str, list[tuple[Material, Link]]] = defaultdict(list)
    for lk in links:
        a, b = by_id[lk.material_a], by_id[lk.material_b]
        partners[a.material_id].append((b, lk))
        partners[b.material_id].append((a, lk))
    avoidable = {mid for mid, ps in partners.items() if is_avoidable(by_id[mid], ps)}
    return links, avoidable


def read_links(conf: dict[str, Any], topic: str, *, timeout: float = 30.0,
               ) -> tuple[dict[tuple[str, str], dict[str, Any]], int]:
    """Every record of the links topic, folded to distinct pairs; and the record count.
    A pair seen twice with different content is an error (links are pure functions).
    `conf`: librdkafka settings of a reader (`client_config(settings, principal)`)."""
    codec = get_codec()
    consumer = Consumer({**conf, "group.id": f"r-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for p in parts:
            _lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = hi
        consumer.assign([TopicPartition(topic, p, 0) for p in parts if ends[p] > 0])
        pos = dict.fromkeys(ends, 0)
        pairs: dict[tuple[str, str], dict[str, Any]] = {}
        n = 0
        deadline = time.monotonic() + timeout
        while any(pos[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for msg in consumer.consume(5000, 0.5):
                if msg.error() is not None:
                    continue
                pos[msg.partition()] = msg.offset() + 1
                rec = codec.decode_record(msg.value(), "MaterialLink")
                n += 1
                pair = (rec["material_a"], rec["material_b"])
                ident = {k: rec[k] for k in ("verdict", "differing_fields", "holders_differ",
                                             "avoidable_material", "case_a", "case_b")}
                seen = pairs.setdefault(pair, ident)
                if seen != ident:
                    raise BenchError(f"pair {pair} emitted twice with different content: "
                                     f"{seen} / {ident}")
        return pairs, n
    finally:
        consumer.close()


def as_links(pairs: dict[tuple[str, str], dict[str, Any]]) -> set[Link]:
    return {Link.from_dict({"material_a": a, "material_b": b, **rec})
            for (a, b), rec in pairs.items()}


def scrape(port: int) -> dict[str, float]:
    """The worker's /metrics as `name{labels}` -> value (summed over nothing)."""

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:  # noqa: S310 - local
        text = resp.read().decode()
    out: dict[str, float] = defaultdict(float)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name] += s.value
            for k, v in s.labels.items():
                out[f"{s.name}{{{k}={v}}}"] += s.value
    return out


# --------------------------------------------------------------------------- the run


@dataclass
class BenchOptions:
    materials: int = 100_000
    seed: int = 2025
    replay_rate: float = 0.05
    partitions: int = 6
    out_dir: str = "bench-results"
    external: bool = False  # a broker was named (--bootstrap): use it, else start one
    rounds: int = 3  # of the pure part
    baseline: str | None = materials_pure.PRE_INDEX_COMMIT  # None: this tree only
    pure: bool = True
    worker: bool = True


def run_bench(settings: Settings, opts: BenchOptions) -> int:
    """`onewindow bench-materials`: :func:`run`, then its tables; raises
    :class:`BenchError` when the stream's links differ from the pure rules."""
    result = run(settings, opts)
    if "pure" in result:
        print("\n".join(materials_pure.report(result["pure"])))  # noqa: T201
    if opts.worker:
        _print_table(result)
    print(f"results: {result['path']}")  # noqa: T201
    if not result.get("equal_to_pure_rules", True):
        raise BenchError("the stream's links differ from the pure rules; see "
                         + result["path"])
    return 0


def run(settings: Settings, opts: BenchOptions) -> dict[str, Any]:
    """Every measurement: the pure part (with its baseline) and the worker on a broker
    (with the baseline commit's worker on the same broker); the result, also written as
    JSON into ``opts.out_dir`` (its ``path``)."""
    settings = with_new_key(settings)  # an ephemeral ID hash key for this run
    tmp = Path(tempfile.mkdtemp(prefix="onewindow-bench-materials-"))
    broker = None
    result: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        events = material_events(opts.materials, opts.seed, tmp)
        gen_s = time.perf_counter() - t0
        print(f"generated {len(events)} materials in {gen_s:.1f}s", flush=True)  # noqa: T201
        pure = None
        if opts.pure:
            pure = materials_pure.run(
                events, rounds=opts.rounds, seed=opts.seed, replay_rate=opts.replay_rate,
                partitions=opts.partitions, baseline=opts.baseline,
                log=lambda line: print(line, flush=True))  # noqa: T201
        if not opts.worker:
            result = {"materials": len(events), "seconds_generate": round(gen_s, 2)}
        elif not opts.external:
            print("starting a local Kafka broker from the jars ...", flush=True)  # noqa: T201
            broker = LocalKafka(data_dir=tmp / "kafka", port=free_port(),
                                controller_port=free_port(), version=settings.kafka_version,
                                cache_dir=settings.cache_dir, heap="1g",
                                security=settings.kafka_security_protocol,
                                credentials_dir=tmp / "credentials")
            broker.start()
            settings = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap,
                                                   "kafka_credentials_dir": tmp / "credentials"})
        if opts.worker:
            run_settings = settings.model_copy(update={"partitions": opts.partitions})
            result = _run(run_settings, opts, tmp, events)
            result["seconds_generate"] = round(gen_s, 2)
            if opts.baseline is not None:  # the baseline commit's worker, same broker
                from onewindow_cli.bench.step import _baseline_tree  # noqa: PLC0415

                tree = _baseline_tree(opts.baseline, tmp / "baseline-tree")
                base = _run(run_settings, opts, tmp, events, tree=tree, label="baseline")
                result["worker_baseline"] = {
                    k: base[k] for k in ("materials_per_second", "seconds_stream",
                                         "worker_cpu_us_per_material", "worker_cpu_share",
                                         "load_average", "equal_to_pure_rules",
                                         "missing_links", "unexpected_links",
                                         "link_records")}
                result["worker_baseline"]["ref"] = opts.baseline
                if not base["equal_to_pure_rules"]:
                    result["equal_to_pure_rules"] = False
        if pure is not None:
            result["pure"] = pure
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    out_dir = Path(opts.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"materials-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    result["path"] = str(path)
    return result


def _run(settings: Settings, opts: BenchOptions, tmp: Path,  # noqa: C901, PLR0915 - one linear script
         events: list[dict[str, Any]], *, tree: Path | None = None,
         label: str = "current") -> dict[str, Any]:
    """One worker run over ``events`` under a fresh topic prefix: the worker of this tree,
    or of ``tree`` (a baseline commit's code, first on its ``PYTHONPATH``)."""
    codec = get_codec()
    log = print  # noqa: T201 - a command's progress lines
    materials = [material_from_event(e) for e in events]

    t0 = time.perf_counter()
    links, avoidable = expected(materials)
    ref_s = time.perf_counter() - t0
    keys = Counter(k for m in materials for k in routed_keys(m))
    kinds = Counter(k.split(":", 1)[0] for k in keys.elements())
    sizes = sorted(keys.values())

    rng = random.Random(opts.seed)
    ids = IdProtector.from_settings(settings)  # the worker's key: the same environment
    # as the case-state app writes them now: CaseActivity v3, the protected event in Avro
    values = [materials_pure.activity_v3(codec, e, ids, i) for i, e in enumerate(events)]
    stream = [(record_key(e["case_id"]), v) for e, v in zip(events, values, strict=True)]
    stream += [r for r in stream if rng.random() < opts.replay_rate]
    rng.shuffle(stream)
    replays = len(stream) - len(events)

    topics = Topics(f"bench{uuid.uuid4().hex[:8]}.")
    settings = settings.model_copy(update={"topic_prefix": topics.prefix})
    provision(settings, load_registry(settings.departments_file).codes)

    # the activity records stand for the case-state app's output: written as it would be
    prod = Producer({**producer_config(settings, STREAM), "linger.ms": 20,
                     "compression.type": "lz4", "enable.idempotence": True,
                     "queue.buffering.max.messages": 1_000_000})
    for key, value in stream:
        while True:
            try:
                prod.produce(topics.case_activity, value, key)
                break
            except BufferError:
                prod.poll(0.05)
    if prod.flush(120):
        raise BenchError("could not publish the activity records")
    log(f"published {len(stream)} activity records ({replays} replays) to "
        f"{topics.case_activity}", flush=True)


    port = free_port()
    data = tmp / f"data-{label}"
    env = {**_env(), **kafka_env(settings),
           "ONEWINDOW_TOPIC_PREFIX": topics.prefix, "ONEWINDOW_DATA_DIR": str(data),
           "ONEWINDOW_PARTITIONS": str(settings.partitions),
           # the key the activity records above were protected with
           "ONEWINDOW_ID_HASH_KEY": resolve_id_hash_key(settings)}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
        env.pop("ONEWINDOW_SCHEMA_DIR", None)
    worker_log = tmp / f"materials-worker-{label}.log"
    with worker_log.open("ab") as wl:
        proc = subprocess.Popen(
            [sys.executable, "-m", "onewindow_cli", "materials-worker", "--name", "bench",
             "--web-port", str(port)], env=env, stdout=wl, stderr=subprocess.STDOUT,
            cwd=None if tree is None else tmp)
    started = time.monotonic()
    first = last = None
    cpu_first = cpu_last = None
    done_at_count = None
    samples: list[tuple[float, float]] = []
    try:
        expected_total = _expected_index_total(stream, codec)
        while True:
            if proc.poll() is not None:
                raise BenchError("the materials worker exited: "
                                 + worker_log.read_text(errors="replace")[-2000:])
            try:
                m = scrape(port)
            except OSError:
                m = {}
            now = time.monotonic()
            done = _metric(m, "onewindow_materials_index_records_total")
            if done and first is None:
                first, cpu_first = (now, done), _cpu_seconds(proc.pid)
            samples.append((now - started, done))
            if done >= expected_total:
                last, cpu_last = (now, done), _cpu_seconds(proc.pid)
                done_at_count = m
                break
            if now - started > 1800:
                raise BenchError(f"timed out: {done:.0f} of {expected_total} index records")
            time.sleep(0.25)
        # The links are flushed before the batch ends; read them.
        pairs, link_records = read_links(client_config(settings, ADMIN), topics.material_links)
        store_bytes = _dir_bytes(data / "stream" / "bench")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert first is not None and last is not None and done_at_count is not None
    elapsed = max(last[0] - first[0], 1e-9)
    got = as_links(pairs)
    got_avoidable = {rec["avoidable_material"] for rec in pairs.values()
                     if rec["avoidable_material"]}
    verdicts = Counter(str(lk.verdict) for lk in links)
    m = done_at_count
    result = {
        "command": f"onewindow bench-materials --materials {opts.materials} --seed {opts.seed}"
                   f" --replay-rate {opts.replay_rate} --partitions {opts.partitions}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "materials": len(materials),
        "certificates": sum(1 for x in materials if x.kind == "CertificateIssued"),
        "activity_records": len(stream),
        "replayed_records": replays,
        "index_records": expected_total,
        "partitions": settings.partitions,
        "seconds_reference": round(ref_s, 2),
        "seconds_stream": round(elapsed, 2),
        "seconds_first_progress_after_start": round(first[0] - started, 2),
        "materials_per_second": round(len(stream) / elapsed, 1),
        # the worker's CPU time between the same two polls (user + system, its threads)
        "worker_cpu_us_per_material": (
            None if cpu_first is None or cpu_last is None
            else round((cpu_last - cpu_first) / (last[1] - first[1]) * expected_total
                       / len(stream) * 1e6, 1)),
        "worker_cpu_share": (None if cpu_first is None or cpu_last is None
                             else round((cpu_last - cpu_first) / elapsed, 2)),
        "load_average": list(os.getloadavg()),
        "index_records_per_second": round(expected_total / elapsed, 1),
        "link_records": link_records,
        "distinct_links": len(pairs),
        "verdicts": dict(sorted(verdicts.items())),
        "avoidable_submissions": len(avoidable),
        "equal_to_pure_rules": got == links and got_avoidable == avoidable,
        "missing_links": len(links - got),
        "unexpected_links": len(got - links),
        "index": {
            "keys": len(keys),
            "keys_by_kind": dict(sorted(Counter(k.split(":", 1)[0] for k in keys).items())),
            "entries": sum(keys.values()),
            "entries_by_kind": dict(sorted(kinds.items())),
            "largest_bucket": sizes[-1],
            "p99_bucket": sizes[int(0.99 * (len(sizes) - 1))],
            "buckets_over_100": sum(1 for s in sizes if s > 100),
            "store_bytes_on_disk": store_bytes,
            "overflow_records": _metric(
                m, "onewindow_materials_index_records_total{outcome=overflow}"),
        },
        "worker_counts": {
            "links_total": _metric(m, "onewindow_materials_links_total"),
            "links_reemitted": _metric(m, "onewindow_materials_links_reemitted_total"),
            "conflicts": _metric(m, "onewindow_materials_conflicts_total"),
            "avoidable_on_arrival": _metric(m, "onewindow_materials_avoidable_total"),
            "avoidable_links": _metric(m, "onewindow_materials_avoidable_links_total"),
        },
        "progress": [(round(a, 2), b) for a, b in samples[:: max(1, len(samples) // 60)]],
    }
    return result


def _expected_index_total(stream: list[tuple[bytes, bytes]], codec: Codec) -> int:
    """Index records the worker will process: one per routed key of every activity record
    (replays included)."""
    per_value: dict[bytes, int] = {}
    total = 0
    for _key, value in stream:
        n = per_value.get(value)
        if n is None:
            act = codec.decode_record(value, "CaseActivity")
            m = material_from_event(activity_event(codec, act))
            n = per_value[value] = len(routed_keys(m))
        total += n
    return total


def _metric(m: dict[str, float], name: str) -> float:
    """A sample of a scrape by its name, or by the name a worker before the metric names
    were settled gave it (``onewindow_material_*``: a baseline commit's worker)."""
    if name in m:
        return m[name]
    return m.get(name.replace("onewindow_materials_", "onewindow_material_", 1), 0.0)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``; ``None`` elsewhere
    or when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _env() -> dict[str, str]:

    return dict(os.environ)


def _cpu(r: dict[str, Any]) -> str:
    if r.get("worker_cpu_us_per_material") is None:
        return "-"
    return (f"{r['worker_cpu_us_per_material']:,.0f} µs ({r['worker_cpu_share']:.2f} of a "
            f"core; load average {r['load_average'][0]:.1f})")


def _print_table(r: dict[str, Any]) -> None:
    ix = r["index"]
    rows = [
        ("materials", f"{r['materials']:,} ({r['certificates']:,} certificates)"),
        ("activity records (with replays)", f"{r['activity_records']:,}"),
        ("index records", f"{r['index_records']:,}"),
        ("stream time", f"{r['seconds_stream']:.1f} s"),
        ("materials/s", f"{r['materials_per_second']:,.0f}"),
        ("index records/s", f"{r['index_records_per_second']:,.0f}"),
        ("worker CPU a material", _cpu(r)),
        *((f"baseline {str(b['ref'])[:10]}: materials/s",
           f"{b['materials_per_second']:,.0f}; CPU a material {_cpu(b)}; equal to the pure "
           f"rules: {b['equal_to_pure_rules']}") for b in [r.get("worker_baseline")] if b),
        ("distinct links", f"{r['distinct_links']:,} from {r['link_records']:,} records"),
        *((f"  {v}", f"{n:,}") for v, n in r["verdicts"].items()),
        ("avoidable submissions", f"{r['avoidable_submissions']:,}"),
        ("index keys", f"{ix['keys']:,} {ix['keys_by_kind']}"),
        ("index entries", f"{ix['entries']:,}"),
        ("largest / p99 bucket", f"{ix['largest_bucket']} / {ix['p99_bucket']}"),
        ("RocksDB on disk", f"{ix['store_bytes_on_disk'] / 1e6:,.1f} MB"),
        ("equal to the pure rules", str(r["equal_to_pure_rules"])),
    ]
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{width}}  {b}")  # noqa: T201
