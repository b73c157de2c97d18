"""The pure part of `onewindow bench-materials` (issue 15, point 5): the materials path
without Kafka, this tree against a baseline commit in one run, and the cost of the
largest index key.

The stream is what the materials worker reads: every material of a scenario population
as the CaseActivity record the case-state worker writes for it (v3: the protected event
in Avro), a share of them twice (replays), shuffled, each on the partition of its case
and delivered as a consumer fetching several partitions delivers them (``--chunk``
records of one partition, then of the next). Each measurement runs in a child process
(a fresh interpreter) over the code of one tree: this one, packing index records as the
worker does and routing a record per key as `onewindow reprocess` does, or the baseline
commit (``git archive`` into a temporary directory first on ``PYTHONPATH``, as
`onewindow bench-step` does); their rounds alternate, so a load that comes and goes on a
shared machine hits all alike. A child runs the worker's two steps as the worker does, without
Faust: `MaterialRouter` over each delivered batch, its index records to the partitions
of their keys, then `MaterialIndexer` over what each partition received, with a dict as
the table. Measured: CPU time of each step (``time.process_time``: a shared machine
changes it far less than the wall time, which is reported beside it), as µs per material
and materials/s, medians of the rounds. The children return the links they emitted; the
run fails unless both trees emitted exactly the links of the pure rules
(`links_via_index`, which a property test holds equal to `all_links`).

The largest key: the scenario's keys stay small (the largest holds under 100), so two
keys that a city does make large are measured on their own, fed in small batches as the
live worker gets them: a company's contracts under one ``hold:`` key (1,500: the most
one key held before issue 15), and one licence handed in 600 times as four scans (one
``doc:`` key, every pair linked). For each: what the key holds at the end, CPU µs per
material, the held materials compared per material and the links per material.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from onewindow.codec import get_codec
from onewindow.security.id_protection import IdProtector
from stream_apps.materials_processor import IndexResult, MaterialIndexer, MaterialRouter
from stream_apps.records import InRecord

#: The last commit before the candidate index (issue 15, point 5): the default baseline.
PRE_INDEX_COMMIT = "b16b6751ed8996d82d31ae0ab26a0f5a95ae0c46"
#: ID hash key of the measurement (an ephemeral key: nothing is kept).
_KEY = "bench-materials-key-0123456789abcdef0123"
_HOT_BATCH = 20  # activity records per batch for the large keys: live traffic


# ----------------------------------------------------------------------------- child


def _partition_of(key: bytes, partitions: int, memo: dict[bytes, int]) -> int:
    """Kafka's partition of a key (murmur2), remembered: the partitioner's work, which
    librdkafka does in the worker, is not the steps' and is not timed."""
    p = memo.get(key)
    if p is None:
        from onewindow.topics import partition_for  # noqa: PLC0415 - the measured tree's

        p = memo[key] = partition_for(key, partitions)
    return p


def _child(args: argparse.Namespace) -> None:
    """One measurement in the tree on ``sys.path``: ``--rounds`` timed rounds over the
    records (after one round to warm up), or one profiled round; prints one JSON line and
    pickles the links of its last round to ``--links``."""
    with open(args.records, "rb") as f:
        records = pickle.load(f)  # noqa: S301 - written by our own parent process
    codec = get_codec()
    ids = IdProtector(_KEY)
    packed = "partitions" in inspect.signature(MaterialRouter).parameters and not args.unpacked
    router = (MaterialRouter(codec=codec, index_topic="idx", ids=ids,
                             partitions=args.partitions) if packed
              else MaterialRouter(codec=codec, index_topic="idx", ids=ids))
    memo: dict[bytes, int] = {}
    counts_comparisons = hasattr(IndexResult(), "comparisons")

    def one_round() -> dict[str, Any]:
        indexer = MaterialIndexer(codec=codec, links_topic="links")  # a fresh worker
        store: dict[str, bytes] = {}
        route_cpu = index_cpu = 0.0
        entries = compared = met = 0
        outputs: list[bytes] = []
        started = time.perf_counter()
        offsets: dict[int, int] = defaultdict(int)
        for start in range(0, len(records), args.batch):
            batch = [InRecord("act", p, start + j, k, v, None)
                     for j, (p, k, v) in enumerate(records[start:start + args.batch])]
            t = time.process_time()
            routed = router.route(batch)
            route_cpu += time.process_time() - t
            pending: dict[int, list[Any]] = defaultdict(list)
            for out in routed.outputs:
                p = out.partition if out.partition is not None else \
                    _partition_of(out.key, args.partitions, memo)
                pending[p].append(out)
            for p, outs in pending.items():
                recs = [InRecord("idx", p, offsets[p] + j, o.key, o.value, None)
                        for j, o in enumerate(outs)]
                offsets[p] += len(recs)
                t = time.process_time()
                res = indexer.process(recs, lambda key, _rec: store.get(key))
                for key, (value, _rec) in res.buckets.items():
                    store[key] = value
                index_cpu += time.process_time() - t
                entries += len(res.outcomes)
                met += sum(res.bucket_sizes)
                compared += getattr(res, "comparisons", 0)
                outputs.extend(o.value for o in res.outputs)
        wall = time.perf_counter() - started
        held: dict[str, int] = defaultdict(int)  # index key -> materials, all its buckets
        for key, value in store.items():
            base = key.split("#", 1)[1] if key[:1].isdigit() else key
            held[base] += sum(1 for line in value.split(b"\n") if line[:1] == b"{")
        return {"route_cpu": route_cpu, "index_cpu": index_cpu, "wall": wall,
                "entries": entries, "held_met": met,
                "compared": compared if counts_comparisons else None,
                "largest_key": max(held.values(), default=0), "outputs": outputs}

    if args.profile:
        one_round()
        profiler = cProfile.Profile()
        profiler.enable()
        one_round()
        profiler.disable()
        profiler.dump_stats(args.profile)
        print(json.dumps({"profile": args.profile}))  # noqa: T201
        return
    one_round()  # warm-up, not timed
    rounds = [one_round() for _ in range(args.rounds)]
    last = rounds[-1]
    links = set()
    for value in last.pop("outputs"):
        rec = codec.decode_record(value, "MaterialLink")
        links.add((rec["material_a"], rec["material_b"], rec["verdict"],
                   tuple(rec["differing_fields"]), rec["holders_differ"],
                   rec["avoidable_material"]))
    with open(args.links, "wb") as f:
        pickle.dump(links, f)
    for r in rounds[:-1]:
        r.pop("outputs")
    print(json.dumps({"packed": packed, "rounds": rounds}))  # noqa: T201


def _child_main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", action="store_true")
    p.add_argument("--records", required=True)
    p.add_argument("--links", required=True)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--profile", default=None)
    p.add_argument("--unpacked", action="store_true",
                   help="one index record per key even where the router can pack")
    _child(p.parse_args())


# ----------------------------------------------------------------------------- parent


def activity_v3(codec: Any, event: dict[str, Any], ids: IdProtector, offset: int) -> bytes:
    """The CaseActivity v3 record the case-state worker writes for an applied material
    event (`CaseProcessor._activity_record`): the protected event in Avro."""
    from onewindow.security.protected_form import encode_protected  # noqa: PLC0415

    return codec.writer("CaseActivity")({
        "case_id": event["case_id"], "event_id": event["event_id"],
        "event_type": event["type"], "department": event["department"],
        "occurred_at": event["occurred_at"], "version": 1,
        "task_id": event.get("task_id"), "status": None,
        "material_id": event.get("material_id") or event.get("certificate_id"),
        "event_json": None, "source_topic": f"dept.{event['department']}.events",
        "source_partition": 0, "source_offset": offset,
        "source_timestamp": 1_760_000_000_000 + offset, "out_of_role": False,
        "event": encode_protected(codec, ids.protect_event(event))})


def delivery_order(events: list[dict[str, Any]], *, replay_rate: float, seed: int,
                   partitions: int, chunk: int) -> list[tuple[int, bytes, bytes]]:
    """``(partition, key, value)`` of every material's activity record (a share sent
    twice, shuffled), in the order a consumer of the partitions delivers them."""
    from onewindow.topics import partition_for, record_key  # noqa: PLC0415

    codec = get_codec()
    ids = IdProtector(_KEY)
    rng = random.Random(seed)
    stream = [(record_key(e["case_id"]), activity_v3(codec, e, ids, i))
              for i, e in enumerate(events)]
    stream += [r for r in stream if rng.random() < replay_rate]
    rng.shuffle(stream)
    queues: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    for key, value in stream:
        queues[partition_for(key, partitions)].append((key, value))
    out: list[tuple[int, bytes, bytes]] = []
    at = dict.fromkeys(queues, 0)
    while any(at[p] < len(q) for p, q in queues.items()):
        for p in sorted(queues):
            out.extend((p, k, v) for k, v in queues[p][at[p]:at[p] + chunk])
            at[p] += chunk
    return out


def hot_contracts(n: int) -> list[dict[str, Any]]:
    """``n`` contracts of one company (one ``hold:`` key): 50 counterparties, 24 months,
    amounts that differ; every tenth a copy of an earlier one handed in again (another
    scan, no number recorded: SAME_CONTENT)."""
    t0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    holder = {"id_type": "USCC", "id_number": "91440101MA59ABCD1X", "name": "广州某某有限公司"}
    out = []
    for i in range(n):
        j = i // 2 if i % 10 == 9 else i  # a copy of contract i // 2
        out.append({"type": "MaterialSubmitted", "event_id": f"HOT-C{i:05d}-E",
                    "case_id": f"HOT-C{i:05d}", "department": "zjj",
                    "occurred_at": t0 + timedelta(minutes=i), "material_id": f"HOT-C{i:05d}",
                    "material_type": "CONTRACT", "name": "合同", "holder": holder,
                    "document_number": None, "sha256": f"{i:064x}", "pages": 3,
                    "size_bytes": 100_000, "form": "COPY",
                    "declared_fields": {"甲方": holder["name"], "乙方": f"对方{j % 50:02d}",
                                        "金额": f"{10_000 + j * 37}",
                                        "签订日期": f"2024-{j % 12 + 1:02d}-{j % 2 + 1:02d}"},
                    "task_id": None})
    return out


def hot_licence(n: int) -> list[dict[str, Any]]:
    """One business licence handed in ``n`` times as four scans (one ``doc:`` key, four
    ``sha:`` keys): every pair is linked, at the doc: key or at its scan's sha: key."""
    t0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    holder = {"id_type": "USCC", "id_number": "91440101MA59ABCD1X", "name": "广州某某有限公司"}
    return [{"type": "MaterialSubmitted", "event_id": f"HOT-L{i:05d}-E",
             "case_id": f"HOT-L{i:05d}", "department": "scjgj",
             "occurred_at": t0 + timedelta(minutes=i), "material_id": f"HOT-L{i:05d}",
             "material_type": "BUSINESS_LICENSE", "name": "营业执照", "holder": holder,
             "document_number": "91440101MA59ABCD1X", "sha256": f"{i % 4 + 1:064x}",
             "pages": 1, "size_bytes": 500_000, "form": "COPY",
             "declared_fields": {"名称": holder["name"], "住所": "广州市天河区某路1号"},
             "task_id": None} for i in range(n)]


def expected_links(events: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """The pure rules over the materials as the stream sees them (protected with the
    measurement's key), in the children's form: the links and the avoidable material of
    each."""
    from onewindow.domain.material_index import links_via_index  # noqa: PLC0415
    from onewindow.domain.materials import avoidable_of, material_from_event  # noqa: PLC0415

    ids = IdProtector(_KEY)
    by_id = {m.material_id: m for m in (material_from_event(ids.protect_event(e))
                                        for e in events)}
    out = set()
    for lk in links_via_index(by_id.values()):
        avoid = avoidable_of(by_id[lk.material_a], by_id[lk.material_b], lk)
        out.add((lk.material_a, lk.material_b, str(lk.verdict), lk.differing_fields,
                 lk.holders_differ, None if avoid is None else avoid.material_id))
    return out


def _run_child(tree: Path, records: Path, links: Path, *, rounds: int, batch: int,
               partitions: int, profile: Path | None = None,
               unpacked: bool = False) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "ONEWINDOW_SCHEMA_DIR"}
    env["PYTHONPATH"] = str(tree)
    # -P: the script's directory is not put on sys.path, only the tree is
    cmd = [sys.executable, "-P", str(Path(__file__).resolve()), "--child",
           "--records", str(records), "--links", str(links), "--rounds", str(rounds),
           "--batch", str(batch), "--partitions", str(partitions)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    if unpacked:
        cmd.append("--unpacked")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                         cwd=tempfile.gettempdir())
    if res.returncode != 0:
        raise RuntimeError(f"measurement in {tree} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _summarise(rounds: list[dict[str, Any]], materials: int) -> dict[str, Any]:
    """Medians of the rounds: CPU µs per material of each step, materials/s."""
    route = [r["route_cpu"] / materials * 1e6 for r in rounds]
    index = [r["index_cpu"] / materials * 1e6 for r in rounds]
    total = [a + b for a, b in zip(route, index, strict=True)]
    wall = [r["wall"] / materials * 1e6 for r in rounds]
    last = rounds[-1]
    return {"route_cpu_us": statistics.median(route), "index_cpu_us": statistics.median(index),
            "cpu_us": statistics.median(total),
            "materials_per_s_cpu": 1e6 / statistics.median(total),
            "wall_us": statistics.median(wall),
            "materials_per_s_wall": 1e6 / statistics.median(wall),
            "rounds_cpu_us": [round(x, 1) for x in total],
            "index_entries": last["entries"],
            # the held materials of the keys a material's entries went to, per material:
            # what the baseline compared it with (every one)
            "held_met_per_material": last["held_met"] / materials,
            "compared_per_material": (None if last["compared"] is None
                                      else last["compared"] / materials),
            "largest_key": last["largest_key"]}


def run(events: list[dict[str, Any]], *, rounds: int, seed: int, replay_rate: float,
        partitions: int, chunk: int = 500, batch: int = 500,
        baseline: str | None = PRE_INDEX_COMMIT, hot: bool = True,
        profile: bool = True, log: Callable[[str], None] = lambda _l: None) -> dict[str, Any]:
    """Every measurement of the module docstring over ``events`` (material events of a
    scenario); the summary. Raises ``RuntimeError`` when a child fails or a tree's links
    differ from the pure rules."""
    from onewindow_cli.bench.step import _baseline_tree, _profile_summary  # noqa: PLC0415

    here = Path(__file__).resolve().parents[2]
    summary: dict[str, Any] = {"baseline_ref": baseline, "rounds": rounds, "batch": batch,
                               "chunk": chunk, "partitions": partitions,
                               "load_average_before": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="onewindow-bench-materials-pure-") as tmp:
        tmp_path = Path(tmp)
        # name -> (tree, one index record per key): this tree as the worker routes
        # (packed) and as `onewindow reprocess` does (a record per key), the baseline
        trees = {"current": (here, False), "current_per_key": (here, True)}
        if baseline is not None:
            trees["baseline"] = (_baseline_tree(baseline, tmp_path / "baseline"), False)
        sets: list[tuple[str, list[dict[str, Any]], int, int]] = [
            ("scenario", events, batch, rounds)]
        if hot:
            sets += [("hot_hold_key", hot_contracts(1_500), _HOT_BATCH, 1),
                     ("hot_doc_key", hot_licence(600), _HOT_BATCH, 1)]
        for name, evs, size, n_rounds in sets:
            records = delivery_order(evs, replay_rate=replay_rate if name == "scenario" else 0,
                                     seed=seed, partitions=partitions, chunk=chunk)
            path = tmp_path / f"{name}.pickle"
            with open(path, "wb") as f:
                pickle.dump(records, f)
            want = expected_links(evs)
            runs: dict[str, list[dict[str, Any]]] = {t: [] for t in trees}
            for r in range(n_rounds):
                for tree_name, (tree, unpacked) in (reversed(trees.items()) if r % 2
                                                    else trees.items()):
                    log(f"{name}, round {r + 1}/{n_rounds}: {tree_name} ...")
                    links = tmp_path / f"{name}-{tree_name}.links"
                    out = _run_child(tree, path, links, rounds=1, batch=size,
                                     partitions=partitions, unpacked=unpacked)
                    with open(links, "rb") as f:
                        got = pickle.load(f)  # noqa: S301 - our own child's
                    if got != want:
                        raise RuntimeError(
                            f"{name}: the links of {tree_name} differ from the pure rules: "
                            f"{len(want - got)} missing, {len(got - want)} unexpected")
                    runs[tree_name].extend(out["rounds"])
            part: dict[str, Any] = {"activity_records": len(records),
                                    "materials": len({e.get("material_id")
                                                      or e.get("certificate_id")
                                                      for e in evs}),
                                    "links": len(want), "equal_to_pure_rules": True}
            for tree_name, rs in runs.items():
                part[tree_name] = _summarise(rs, len(records))
            if "baseline" in part:
                base = part["baseline"]["cpu_us"]
                part["speedup_cpu"] = base / part["current"]["cpu_us"]
                part["speedup_cpu_per_key"] = base / part["current_per_key"]["cpu_us"]
            summary[name] = part
        if profile:
            summary["profiles"] = {}
            path = tmp_path / "scenario.pickle"
            for tree_name, (tree, unpacked) in trees.items():
                if tree_name == "current_per_key":
                    continue
                log(f"profiling {tree_name} ...")
                stats = tmp_path / f"{tree_name}.pstats"
                _run_child(tree, path, tmp_path / "p.links", rounds=1, batch=batch,
                           partitions=partitions, profile=stats, unpacked=unpacked)
                summary["profiles"][tree_name] = _profile_summary(
                    str(stats), summary["scenario"]["activity_records"])  # type: ignore[arg-type]
    summary["load_average_after"] = list(os.getloadavg())
    return summary


def report(summary: dict[str, Any]) -> list[str]:
    """The lines `onewindow bench-materials` prints for the pure part."""
    sc = summary["scenario"]
    cur = sc["current"]
    lines = [f"pure materials path, {sc['activity_records']:,} activity records "
             f"({sc['materials']:,} materials), batches of {summary['batch']}, medians of "
             f"{summary['rounds']} rounds; CPU µs per material (route + index) "
             "[wall µs]:"]

    def row(label: str, s: dict[str, Any]) -> str:
        return (f"  {label:34} {s['route_cpu_us']:6.1f} + {s['index_cpu_us']:6.1f} = "
                f"{s['cpu_us']:6.1f}  {s['materials_per_s_cpu']:>8,.0f} materials/s  "
                f"[{s['wall_us']:.1f}]")

    if "baseline" in sc:
        lines.append(row(f"baseline {str(summary['baseline_ref'])[:10]}", sc["baseline"]))
    lines.append(row("this tree, a record per key", sc["current_per_key"]))
    lines.append(row("this tree, packed (the worker)", cur))
    if "speedup_cpu" in sc:
        lines.append(f"  this tree is {sc['speedup_cpu']:.2f} x the baseline packed, "
                     f"{sc['speedup_cpu_per_key']:.2f} x a record per key; every run emits "
                     f"the {sc['links']:,} links of the pure rules")
    lines.append(f"  largest key of the scenario: {cur['largest_key']} materials")
    for name, label in (("hot_hold_key", "a company's 1,500 contracts (one hold: key)"),
                        ("hot_doc_key", "a licence handed in 600 times (one doc: key)")):
        if name not in summary:
            continue
        part = summary[name]
        lines.append(f"large key: {label}, batches of {_HOT_BATCH}, {part['links']:,} links:")
        for tree_name in ("baseline", "current"):
            if tree_name not in part:
                continue
            s = part[tree_name]
            compared = (s["held_met_per_material"] if s["compared_per_material"] is None
                        else s["compared_per_material"])
            lines.append(f"  {tree_name:9} holds {s['largest_key']:>5}; {s['cpu_us']:8.1f} µs "
                         f"CPU a material; compared with {compared:,.1f} of the "
                         f"{s['held_met_per_material']:,.1f} held; "
                         f"{part['links'] / part['materials']:,.1f} links a material")
    return lines


if __name__ == "__main__":
    # Run by path in a child (`python -P`), the tree measured first on PYTHONPATH: the
    # imports above are that tree's.
    _child_main()
