"""`onewindow bench-step`: the pure case-state step per event, against a baseline tree and
a floor, in one run (issue 15, point 1).

No Kafka: N realistic input records (the scenario generator's traffic, Avro single-object
encoded, keyed by ``case_id``, on the partition of their key, on their department's
topic) go through `CaseProcessor.process` in batches, as the worker hands them over. The
records are generated once, by this process, and handed to every measurement in a file,
so each code tree sees the same bytes in the same order: records are delivered as a
consumer fetching several topic-partitions delivers them, ``--chunk`` records of one
topic-partition after another, round robin (a case's events are on several department
topics, so they reach the step in several batches, as they do in the worker).

Each measurement runs in a child process (a fresh interpreter, nothing cached from
another tree): the code of this tree, and, with ``--baseline REF``, the code of the git
commit ``REF`` (``git archive REF`` unpacked into a temporary directory, put first on
``PYTHONPATH``; the default is the commit before the lean step). Their rounds alternate,
so a load that comes and goes on a shared machine hits both alike. Every child also
measures the floor in the same process, right after its rounds: fastavro's schemaless
decode of the same record values, nothing else. Reported, medians of the rounds: µs per
event of each tree and of the floor, the ratio of the baseline to this tree (how many
times faster) and of each to the floor; then one profiled round of each tree (cProfile):
the time per event by module and the functions that take the most.

The children also return what they produced (the last case state of every case,
decoded, and the count of each kind of output record); the run fails when the trees
disagree on them, so a faster step is also the same step.

Speed is measured here, never asserted by a timed test.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pickle
import pstats
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastavro import schemaless_reader

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.errors import OneWindowError
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics, partition_for
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from stream_apps.case_processor import CaseProcessor
from stream_apps.records import InRecord

#: The last commit before the lean step (issue 15, point 1): the default baseline.
PRE_LEAN_COMMIT = "553d2ff8296484f605c0584c7d923416bce6c472"
#: ID hash key of the measurement (an ephemeral key: nothing is kept).
_KEY = "bench-step-key-0123456789abcdef0123456789"
_PREFIX = "bench."
#: Kafka timestamp of every record (ms): 2025-10-09, after every scenario event.
_TIMESTAMP_MS = 1_760_000_000_000


# ----------------------------------------------------------------------------- records


def make_records(events: int, *, seed: int, partitions: int, chunk: int
                 ) -> list[tuple[str, int, int, bytes, bytes, int]]:
    """``(topic, partition, offset, key, value, timestamp_ms)`` of at least ``events``
    input records (whole cases of the scenario generator), in the order a consumer
    delivers them: up to ``chunk`` records of one topic-partition, then of the next."""
    codec, topics = get_codec(), Topics(_PREFIX)
    gen = ScenarioGenerator(ScenarioConfig(seed=seed))
    queues: dict[tuple[str, int], list[tuple[str, int, int, bytes, bytes, int]]] = {}
    n = 0
    while n < events:
        for event in gen.case():
            key = event["case_id"].encode("utf-8")
            where = (topics.input(event["department"]), partition_for(key, partitions))
            queue = queues.setdefault(where, [])
            queue.append((*where, len(queue), key, codec.encode(event), _TIMESTAMP_MS))
            n += 1
    out: list[tuple[str, int, int, bytes, bytes, int]] = []
    order = sorted(queues)
    while any(queues[w] for w in order):
        for w in order:
            out.extend(queues[w][:chunk])
            del queues[w][:chunk]
    return out


# ------------------------------------------------------------------------------ child


def _child(args: argparse.Namespace) -> None:
    """One measurement, in the tree on ``sys.path``: ``--rounds`` timed rounds and the
    floor, or one profiled round; prints one JSON line."""
    with open(args.records, "rb") as f:
        raw = pickle.load(f)  # noqa: S301 - written by our own parent process
    records = [InRecord(*r) for r in raw]
    codec, topics, registry = get_codec(), Topics(_PREFIX), load_registry()
    processor = CaseProcessor(codec=codec, topics=topics, departments=registry.codes,
                              counters=registry.counter_codes, calendar=load_calendar(),
                              ids=IdProtector(_KEY), partitions=args.partitions)

    def one_round() -> tuple[float, float, dict[str, Any]]:
        store: dict[str, bytes] = {}
        last: dict[bytes, bytes] = {}
        kinds: dict[str, int] = defaultdict(int)
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(records), args.batch):
            result = processor.process(records[i:i + args.batch],
                                       lambda case_id, _rec: store.get(case_id))
            for case_id, (state, _rec) in result.states.items():
                store[case_id] = state
            for out in result.outputs:
                kinds[out.topic] += 1
                if out.topic == topics.case_state:
                    last[out.key] = out.value
        return (time.process_time() - cpu, time.perf_counter() - started,
                {"kinds": dict(kinds), "last": last})

    if args.profile:
        one_round()  # warm: caches, first calls
        profiler = cProfile.Profile()
        profiler.enable()
        one_round()
        profiler.disable()
        print(json.dumps({"profile": _profile_summary(profiler, len(records))}))  # noqa: T201
        return

    one_round()  # warm-up, not timed
    step: list[float] = []
    step_wall: list[float] = []
    produced: dict[str, Any] = {}
    for _ in range(args.rounds):
        cpu, wall, produced = one_round()
        step.append(cpu / len(records) * 1e6)
        step_wall.append(wall / len(records) * 1e6)
    floor: list[float] = []
    floor_wall: list[float] = []
    for _ in range(args.rounds):
        started, cpu_started = time.perf_counter(), time.process_time()
        for rec in records:
            body = io.BytesIO(rec.value)
            body.seek(10)
            schemaless_reader(body, codec.schema_of(rec.value).parsed, None)
        floor.append((time.process_time() - cpu_started) / len(records) * 1e6)
        floor_wall.append((time.perf_counter() - started) / len(records) * 1e6)
    digest = hashlib.sha256()
    for key in sorted(produced["last"]):
        view = codec.decode_record(produced["last"][key], "CaseState")
        digest.update(key + repr(sorted(view.items())).encode("utf-8"))
    print(json.dumps({"step_us": step, "floor_us": floor,  # noqa: T201
                      "step_wall_us": step_wall, "floor_wall_us": floor_wall,
                      "outputs": {k.removeprefix(_PREFIX): v
                                  for k, v in sorted(produced["kinds"].items())},
                      "states_digest": digest.hexdigest()}))


def _profile_summary(profiler: cProfile.Profile, events: int) -> dict[str, Any]:
    """Time per event by module (own time, µs) and the functions of the largest
    cumulative time (µs per event), from one profiled round."""
    stats = pstats.Stats(profiler)
    by_module: dict[str, float] = defaultdict(float)
    functions = []
    for (path, line, name), (_cc, calls, own, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        module = _module_of(path, name)
        by_module[module] += own
        functions.append((cum, own, calls, f"{module}:{line}({name})"))
    total = sum(by_module.values())
    functions.sort(reverse=True)
    return {
        "total_us": total / events * 1e6,
        "by_module_us": {m: round(t / events * 1e6, 2)
                         for m, t in sorted(by_module.items(), key=lambda x: -x[1])
                         if t / events * 1e6 >= 0.05},
        "top_functions": [{"function": f, "cumulative_us": round(cum / events * 1e6, 2),
                           "own_us": round(own / events * 1e6, 2),
                           "calls_per_event": round(calls / events, 2)}
                          for cum, own, calls, f in functions[:30]],
    }


def _module_of(path: str, name: str = "") -> str:
    """A short name for the module of a profiled function: ``onewindow/domain/case.py``,
    ``fastavro``, ``json``; a built-in by what it belongs to (``fastavro``, ``json``,
    ``hashlib``) or ``(built-in)``."""
    if path == "~":
        for owner in ("fastavro", "json", "hashlib", "blake2b", "hmac", "re."):
            if owner in name:
                return f"{owner.rstrip('.')} (C)"
        return "(built-in)"
    parts = Path(path).parts
    for top in ("onewindow", "stream_apps", "sinks", "producers", "onewindow_cli"):
        if top in parts:
            i = len(parts) - 1 - parts[::-1].index(top)
            return "/".join(parts[i:])
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    for i, part in enumerate(parts[:-1]):
        if part.startswith("python3"):  # the standard library: its package or module
            return Path(parts[i + 1]).stem
    return Path(path).stem


# ----------------------------------------------------------------------------- parent


def _baseline_tree(ref: str, into: Path) -> Path:
    """The tree of git commit ``ref`` of the repository this code is in, unpacked into
    ``into`` (``git archive``: the working tree and the index are not touched)."""
    repo = Path(__file__).resolve().parents[2]
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", ref],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise OneWindowError(f"--baseline {ref}: git archive in {repo}: "
                             f"{archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def _run_child(tree: Path, records: Path, opts: argparse.Namespace, *,
               profile: bool = False) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "ONEWINDOW_SCHEMA_DIR"}
    env["PYTHONPATH"] = str(tree)
    # -P: the script's directory is not put on sys.path, only the tree is
    cmd = [sys.executable, "-P", str(Path(__file__).resolve()), "--child", "--records", str(records),
           "--rounds", str(opts.rounds_per_child), "--batch", str(opts.batch),
           "--partitions", str(opts.partitions)]
    if profile:
        cmd.append("--profile")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                         cwd=tempfile.gettempdir())
    if res.returncode != 0:
        raise RuntimeError(f"measurement in {tree} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(*, events: int, rounds: int, batch: int = 1000, chunk: int = 500, seed: int = 100,
        partitions: int = 6, baseline: str | None = PRE_LEAN_COMMIT,
        out_dir: Path = Path("bench-results"),
        log: Callable[[str], None] = lambda _line: None) -> dict[str, Any]:
    """Every measurement (module docstring); the summary, also written as JSON into
    ``out_dir``. ``baseline=None`` measures this tree and the floor only. Raises
    ``RuntimeError`` when a child fails or the trees produce different outputs."""
    opts = argparse.Namespace(rounds_per_child=1, batch=batch, partitions=partitions)
    here = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="onewindow-bench-step-") as tmp:
        tmp_path = Path(tmp)
        log(f"generating {events} records ...")
        records = make_records(events, seed=seed, partitions=partitions, chunk=chunk)
        path = tmp_path / "records.pickle"
        with open(path, "wb") as f:
            pickle.dump(records, f)
        trees = {"current": here}
        if baseline is not None:
            trees["baseline"] = _baseline_tree(baseline, tmp_path / "baseline")
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for r in range(rounds):
            for name, tree in (reversed(trees.items()) if r % 2 else trees.items()):
                log(f"round {r + 1}/{rounds}: {name} ...")
                runs[name].append(_run_child(tree, path, opts))
        profiles = {}
        for name, tree in trees.items():
            log(f"profiling {name} ...")
            profiles[name] = _run_child(tree, path, opts, profile=True)["profile"]
    summary: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "load_average": list(os.getloadavg())},
        "events": len(records), "rounds": rounds, "batch": batch, "chunk": chunk,
        "seed": seed, "partitions": partitions, "baseline_ref": baseline,
        "outputs": runs["current"][0]["outputs"],
    }
    for name, rs in runs.items():
        step = statistics.median(x["step_us"][0] for x in rs)
        floor = statistics.median(x["floor_us"][0] for x in rs)
        summary[name] = {"step_us": step, "floor_us": floor, "step_to_floor": step / floor,
                         "step_wall_us": statistics.median(x["step_wall_us"][0] for x in rs),
                         "floor_wall_us": statistics.median(x["floor_wall_us"][0]
                                                            for x in rs),
                         "rounds_step_us": [x["step_us"][0] for x in rs],
                         "rounds_floor_us": [x["floor_us"][0] for x in rs],
                         "rounds_step_wall_us": [x["step_wall_us"][0] for x in rs],
                         "profile": profiles[name]}
    if baseline is not None:
        mine, base = runs["current"][0], runs["baseline"][0]
        if mine["outputs"] != base["outputs"] or mine["states_digest"] != base["states_digest"]:
            raise RuntimeError(
                f"the trees disagree: outputs {mine['outputs']} vs {base['outputs']}, "
                f"final case states {mine['states_digest']} vs {base['states_digest']}")
        summary["speedup"] = summary["baseline"]["step_us"] / summary["current"]["step_us"]
        summary["speedup_wall"] = (summary["baseline"]["step_wall_us"]
                                   / summary["current"]["step_wall_us"])
        # per round, each tree against the floor measured in its own process
        summary["speedup_floor_relative"] = (summary["baseline"]["step_to_floor"]
                                             / summary["current"]["step_to_floor"])
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"bench-step-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    summary["path"] = str(out)
    return summary


def report(summary: dict[str, Any]) -> str:
    """The summary as the table `onewindow bench-step` prints."""
    cur = summary["current"]
    lines = [f"pure case-state step, {summary['events']} events in batches of "
             f"{summary['batch']}, medians of {summary['rounds']} rounds, µs per event "
             "(CPU time of the process; wall time beside it):",
             f"  {'fastavro schemaless decode (floor)':40} {cur['floor_us']:>8.1f}"
             f"  [{cur['floor_wall_us']:.1f}]"]
    if "baseline" in summary:
        base = summary["baseline"]
        lines.append(f"  {'CaseProcessor, baseline ' + str(summary['baseline_ref'])[:10]:40} "
                     f"{base['step_us']:>8.1f}  [{base['step_wall_us']:.1f}]  "
                     f"({base['step_to_floor']:.1f} x its floor {base['floor_us']:.1f})")
    lines.append(f"  {'CaseProcessor, this tree':40} {cur['step_us']:>8.1f}  "
                 f"[{cur['step_wall_us']:.1f}]  ({cur['step_to_floor']:.1f} x floor)")
    if "speedup" in summary:
        lines.append(f"  this tree is {summary['speedup']:.2f} x faster than the baseline "
                     f"(wall {summary['speedup_wall']:.2f} x; "
                     f"{summary['speedup_floor_relative']:.2f} x each against its own "
                     "floor); same outputs")
    for name in ("baseline", "current"):
        if name not in summary:
            continue
        prof = summary[name]["profile"]
        lines.append(f"profile, {name} ({prof['total_us']:.1f} µs per event under cProfile),"
                     " own time by module:")
        lines.extend(f"  {m:44} {us:>8.2f}"
                     for m, us in list(prof["by_module_us"].items())[:12])
    lines.append(f"results: {summary['path']}")
    return "\n".join(lines)


def cmd_bench_step(args: argparse.Namespace) -> int:
    summary = run(events=args.events, rounds=args.rounds, batch=args.batch, chunk=args.chunk,
                  seed=args.seed, partitions=args.partitions,
                  baseline=None if args.no_baseline else args.baseline,
                  out_dir=Path(args.out),
                  log=lambda line: print(line, file=sys.stderr))  # noqa: T201
    print(report(summary))  # noqa: T201
    return 0


def register(sub: Any) -> None:
    """Add `bench-step` to `sub` (an argparse subparsers action)."""
    # here, not at the top: a child runs this file over the baseline tree, whose
    # onewindow may not have it
    from onewindow.cli_options import positive_int  # noqa: PLC0415

    p = sub.add_parser("bench-step",
                       help="the pure case-state step (CaseProcessor, no Kafka) per event, "
                            "against a baseline commit and fastavro's decode, with profiles")
    p.add_argument("--events", type=positive_int, default=20_000, help="input records (default 20000)")
    p.add_argument("--rounds", type=positive_int, default=5, help="timed rounds of each tree")
    p.add_argument("--batch", type=positive_int, default=1000,
                   help="records per process() call (the worker's batch, default 1000)")
    p.add_argument("--chunk", type=positive_int, default=500,
                   help="records of one topic-partition delivered together (default 500)")
    p.add_argument("--seed", type=int, default=100)
    p.add_argument("--partitions", type=positive_int, default=6)
    p.add_argument("--baseline", default=PRE_LEAN_COMMIT,
                   help="git commit measured beside this tree (default: the last commit "
                        "before the lean step)")
    p.add_argument("--no-baseline", action="store_true",
                   help="measure this tree and the floor only (no git needed)")
    p.add_argument("--out", default="bench-results", help="directory of the JSON results")
    p.set_defaults(func=cmd_bench_step)


def _child_main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", action="store_true")
    p.add_argument("--records", required=True)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--profile", action="store_true")
    _child(p.parse_args())


if __name__ == "__main__":
    # Run by path in a child (`python -P`), the tree measured first on PYTHONPATH: the
    # imports above are that tree's.
    _child_main()
