"""The benchmarks, in one place: `onewindow bench` (the case-state worker's throughput
against baselines, latency and recovery), `onewindow bench-materials` (the scale check
of duplicate-material detection), `onewindow bench-gateway` (the HTTP ingestion
gateway against the SDK's direct publish) and `onewindow bench-step` (the pure
case-state step per event against a baseline commit: `step`). Speed is measured here,
never asserted by a timed test."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from onewindow.cli_options import (
    add_common,
    positive_float,
    positive_int,
    postgres_url,
    settings_from,
    writable_file,
)
from onewindow.errors import ConfigError
from onewindow_cli.bench import cluster as bench_cluster
from onewindow_cli.bench import gateway as bench_gateway
from onewindow_cli.bench import reprocess as bench_reprocess
from onewindow_cli.bench import step as bench_step
from onewindow_cli.bench import supervision as bench_supervision
from onewindow_cli.bench.case_state import HOLD_CASES, run
from onewindow_cli.bench.materials import BenchOptions, run_bench
from onewindow_cli.bench.materials_pure import PRE_INDEX_COMMIT

#: `onewindow bench`'s events pre-loaded per round on one broker
EVENTS = 50_000


def cmd_bench(args: argparse.Namespace) -> int:
    if args.all and args.scale is not None:
        raise ConfigError("--all and --scale are two runs: give one")
    _refuse_options_of_other_runs(args)
    bench_cluster.refuse_other_options(args)
    if args.brokers == bench_cluster.BROKERS:  # three brokers, several workers (issue 17)
        return bench_cluster.cmd(args, settings_from(args))
    args.events = EVENTS if args.events is None else args.events
    args.hold_cases = HOLD_CASES if args.hold_cases is None else args.hold_cases
    s = settings_from(args)
    if args.scale is not None:  # a year of a city (issue 15, point 6)
        return cmd_bench_scale(args, s)
    if args.all:  # every path of issue 15 in one table
        from onewindow_cli.bench import overview  # noqa: PLC0415 - SQLAlchemy, only here

        parts = overview.run(s, overview.OverviewOptions(
            rounds=args.rounds, case_events=args.events, hold_cases=args.hold_cases,
            postgres_url=args.postgres_url, out_dir=Path(args.out),
            profile_dir=None if args.profile is None else Path(args.profile),
            external_broker=args.bootstrap is not None),
            say=lambda m: print(m, flush=True))  # noqa: T201
        print(overview.render(parts))  # noqa: T201
        return 0
    summary = run(s, events=args.events, rounds=args.rounds, out_dir=Path(args.out),
                  latency_events=args.latency_events, latency_rate=args.latency_rate,
                  hold=args.hold_cases, plaintext_baseline=args.plaintext_baseline,
                  profile_dir=None if args.profile is None else Path(args.profile))
    print(render(summary))  # noqa: T201
    return 0


#: the options of `bench --scale` alone (None when not given), and where they apply
_SCALE_ONLY = {"scale_steps": "--scale-steps", "scale_seed": "--scale-seed",
               "jobs": "--jobs", "json": "--json"}


def _refuse_options_of_other_runs(args: argparse.Namespace) -> None:
    """Raise `ConfigError` (one line, exit 2, before anything starts) for an option the
    run asked for would ignore: those of `--scale` without it, `--postgres-url` without
    `--scale` or `--all` (the case-state run has no database)."""
    if args.scale is None:
        given = [flag for dest, flag in _SCALE_ONLY.items() if getattr(args, dest) is not None]
        if given:
            raise ConfigError(f"{given[0]} applies to --scale N only (the case-state run "
                              "has no such setting): add --scale N or leave it out")
        if args.postgres_url is not None and not getattr(args, "all", False):
            raise ConfigError("--postgres-url applies to --scale N (or --all) only: the "
                              "case-state run uses no database")


def cmd_bench_scale(args: argparse.Namespace, s: Any) -> int:
    """`onewindow bench --scale N` (`onewindow_cli.bench.scale`); `ConfigError` before
    anything starts for more steps than cases."""
    from onewindow_cli.bench import scale  # noqa: PLC0415 - SQLAlchemy, only here

    given = {k: getattr(args, d) for k, d in (("steps", "scale_steps"), ("seed", "scale_seed"),
                                              ("jobs", "jobs"))
             if getattr(args, d) is not None}
    opts = scale.ScaleOptions(cases=args.scale, postgres_url=args.postgres_url,
                              out_dir=Path(args.out), **given)
    if opts.steps > opts.cases:
        raise ConfigError(f"--scale-steps {opts.steps} is more than --scale {opts.cases}: "
                          "each step loads at least one case")
    summary = scale.run(s, opts)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str))
    print(scale.render(summary))  # noqa: T201
    return 0


def render(summary: dict[str, Any]) -> str:
    """`onewindow bench`'s one table: every path with its median, range and ratios to
    the plain consumer and to the do-nothing Faust agent, then latency and recovery."""
    med, rng = summary["median_eps"], summary["range"]
    plain, noop = med["plain_consumer_eps"], med["faust_noop_eps"]
    loads = [x["load_average"] for x in summary["runs"]]
    lines = [
        f"case-state paths, {summary['events_per_round']:,} events x {summary['rounds']} "
        f"rounds ({summary['partitions']} partitions, {summary['security']}), medians; "
        f"load average (1 min) {min(a for a, _ in loads):.1f}-{max(b for _, b in loads):.1f}",
        f"  {'path':40} {'events/s':>10} {'range':>17} {'x plain':>8} {'x Faust agent':>14}",
    ]
    for label, key in (("plain confluent-kafka consumer", "plain_consumer_eps"),
                       ("do-nothing Faust agent, same settings", "faust_noop_eps"),
                       ("pure CaseProcessor, no Kafka", "pure_processor_eps"),
                       ("Faust worker, end to end", "faust_worker_eps")):
        lo, hi = rng[key]
        lines.append(f"  {label:40} {med[key]:>10,.0f} {f'{lo:,.0f}-{hi:,.0f}':>17} "
                     f"{med[key] / plain:>8.3f} {med[key] / noop:>14.2f}")
    lat = summary["latency_phase"]
    cpu = summary.get("cpu_us_per_event", {})
    lines += [
        f"  worker / agent within each round, median: "
        f"{summary['ratio_worker_to_noop_per_round']:.2f}",
    ]
    if "noop_total" in cpu and "worker_total" in cpu:  # Linux: /proc
        lines.append(
            f"  CPU an event: do-nothing agent {cpu['noop_total']:,.0f} µs; worker "
            f"{cpu['worker_total']:,.0f} µs ({cpu.get('worker_main', 0):,.0f} its loop's "
            f"process, {cpu.get('worker_child', 0):,.0f} its step process)")
    lines += [
        f"  latency, input to case state at {lat['rate_eps']:,.0f} events/s: "
        f"p50 {med['latency_p50_s'] * 1000:,.0f} ms, p95 {med['latency_p95_s'] * 1000:,.0f} ms, "
        f"p99 {med['latency_p99_s'] * 1000:,.0f} ms (p99 over rounds "
        f"{rng['latency_p99_s'][0] * 1000:,.0f}-{rng['latency_p99_s'][1] * 1000:,.0f} ms)",
        f"  restart to a new case's final state, {summary['held_cases']:,} cases held: "
        f"after SIGKILL {med['recovery_kept_s']:.1f} s "
        f"({rng['recovery_kept_s'][0]:.1f}-{rng['recovery_kept_s'][1]:.1f}), "
        f"after SIGKILL with the local state wiped {med['recovery_wiped_s']:.1f} s "
        f"({rng['recovery_wiped_s'][0]:.1f}-{rng['recovery_wiped_s'][1]:.1f}), "
        f"first start after the cases were written {med['restore_s']:.1f} s",
    ]
    memory = [x.get("worker_memory_mib", {}) for x in summary["runs"]]
    if memory and all("main_pss" in m for m in memory):
        pss = statistics.median(m["main_pss"] + m.get("child_pss", 0.0) for m in memory)
        rss = statistics.median(m["main_rss"] + m.get("child_rss", 0.0) for m in memory)
        lines.append(f"  worker memory holding {summary['held_cases']:,} cases: {pss:,.0f} MiB "
                     f"proportional ({rss:,.0f} MiB resident, its step process included)")
    if "ratio_secured_to_plaintext_worker" in summary:
        base = summary["plaintext_median_eps"]
        lines.append(f"  {'Faust worker, PLAINTEXT broker':40} {base['faust_worker_eps']:>10,.0f}"
                     f"  (secured = {summary['ratio_secured_to_plaintext_worker']:.3f}"
                     " x plaintext)")
    for name, prof in summary.get("profiles", {}).items():
        parts = ", ".join(f"{k} {v:.0%}" for k, v in list(prof["parts"].items())[:6])
        lines.append(f"  profile {name} ({prof['samples']:,} samples): {parts}")
    lines.append(f"results: {summary['path']}")
    return "\n".join(lines)


def cmd_bench_materials(args: argparse.Namespace) -> int:
    """The materials scale check: generate, run through the materials worker, compare."""
    opts = BenchOptions(materials=args.materials, seed=args.seed, replay_rate=args.replay_rate,
                        partitions=args.partitions, out_dir=args.out,
                        external=args.bootstrap is not None, rounds=args.rounds,
                        baseline=None if args.no_baseline else args.baseline,
                        pure=not args.no_pure, worker=not args.no_worker)
    return run_bench(settings_from(args), opts)


def cmd_bench_gateway(args: argparse.Namespace) -> int:
    """The gateway's events/s with batches of 1, 50 and 500 against the direct publish."""
    summary = bench_gateway.run(settings_from(args), events=args.events,
                                single_events=args.single_events, repeats=args.repeats,
                                concurrency=args.concurrency, out_dir=Path(args.out))
    med, ratio = summary["median_eps"], summary["ratio_to_direct"]
    lat = summary["request_latency_s"]
    lines = [f"ingestion gateway against the SDK's direct publish, {args.events} events "
             f"({args.single_events} one by one) x {args.repeats} repeats, "
             f"{args.concurrency} requests in flight, {summary['check_processes']} checking "
             "process(es), medians:",
             f"  {'SDK direct publish':28} {med['direct_eps']:>10,.0f} events/s"]
    for size in bench_gateway.BATCH_SIZES:
        lines.append(f"  {f'gateway, batches of {size}':28} "
                     f"{med[f'gateway_b{size}_eps']:>10,.0f} events/s  "
                     f"({ratio[f'b{size}']:.2f} x direct, "
                     f"{summary['median_ratio_per_repeat'][f'b{size}']:.2f} within a "
                     f"repeat; request p50 "
                     f"{lat[f'b{size}']['p50'] * 1000:,.1f} ms, p95 "
                     f"{lat[f'b{size}']['p95'] * 1000:,.1f} ms)")
    cpu = summary["cpu_us_per_event"]
    if cpu:  # Linux: CPU microseconds an event, medians
        lines.append("  CPU an event: " + ", ".join(f"{k} {v:,.1f} µs" for k, v in cpu.items()))
    load = summary["machine"]["load_average"]
    lines.append(f"  load average (1 min) {load[0]:.2f} before, {load[1]:.2f} after")
    lines.append(f"results: {summary['path']}")
    print("\n".join(lines))  # noqa: T201
    return 0


def register(sub: Any) -> None:
    """Add `bench`, `bench-materials` and `bench-gateway` to `sub` (an argparse subparsers
    action)."""
    p = sub.add_parser("bench", help="benchmark suite: throughput against baselines, "
                                     "latency percentiles, recovery")
    p.add_argument("--events", type=positive_int, default=None,
                   help=f"events pre-loaded per round (default {EVENTS}; with --brokers "
                        f"{bench_cluster.BROKERS}, {bench_cluster.EVENTS} a run)")
    p.add_argument("--rounds", type=positive_int, default=3)
    p.add_argument("--latency-events", type=positive_int, default=10_000,
                   help="events of the steady stream whose latency is measured "
                        "(default 10000)")
    p.add_argument("--latency-rate", type=positive_float, default=1000.0,
                   help="events/s of that stream (default 1000)")
    p.add_argument("--hold-cases", dest="hold_cases", type=positive_int, default=None,
                   help="cases the worker holds when its restarts are timed (default "
                        f"{HOLD_CASES}; with --brokers {bench_cluster.BROKERS} "
                        f"{bench_cluster.HOLD}; written straight into its table's changelog)")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="also profile the first round's do-nothing agent and worker "
                        "(throughput phase) with py-spy; the raw profiles go to DIR and "
                        "their summary by part into the results")
    p.add_argument("--out", default="bench-results", help="directory for the JSON results")
    p.add_argument("--plaintext-baseline", action="store_true",
                   help="also run every round on an open (PLAINTEXT) broker and report the "
                        "secured worker's throughput as a ratio of it")
    p.add_argument("--all", action="store_true",
                   help="every path of issue 15 in turn (these case-state paths, the pure "
                        "step against its baseline, reprocess, rebuild into SQLite and "
                        "PostgreSQL, the materials worker), then one table with each "
                        "target and whether it is met (docs/benchmarks.md; about 30 min)")
    p.add_argument("--scale", type=positive_int, default=None, metavar="N",
                   help="instead: load N cases (about 15 events each) through onewindow "
                        "reprocess, hold them in both live workers' RocksDB, rebuild them "
                        "into PostgreSQL; report memory, disk per million cases and the time "
                        "a year of 500 million events takes (docs/benchmarks.md)")
    p.add_argument("--scale-steps", dest="scale_steps", type=positive_int, default=None,
                   help="--scale loads its cases in this many equal steps, memory and disk "
                        "measured after each (default 2: the slope)")
    p.add_argument("--scale-seed", dest="scale_seed", type=int, default=None,
                   help="--scale: the seed of its generated cases (default 2028)")
    p.add_argument("--jobs", type=positive_int, default=None,
                   help="--scale: the reprocess --jobs (default 1)")
    p.add_argument("--postgres-url", dest="postgres_url", type=postgres_url, default=None,
                   help="--scale, --all: a PostgreSQL server whose role may CREATE DATABASE "
                        "(default: a throwaway cluster from the machine's binaries)")
    p.add_argument("--json", type=writable_file, default=None, metavar="FILE",
                   help="--scale: also write the report as JSON to this file (checked "
                        "before the run: its directory must exist)")
    bench_cluster.add_options(p)  # --brokers 3 --workers 1,2 (issue 17)
    add_common(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("bench-materials",
                       help="scale check of duplicate-material detection on a generated "
                            "population; compares the links with the pure rules")
    p.add_argument("--materials", type=int, default=100_000,
                   help="at least this many materials (default 100000)")
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--replay-rate", type=float, default=0.05,
                   help="share of activity records sent twice (replays)")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--rounds", type=positive_int, default=3,
                   help="rounds of the pure part, each tree (default 3)")
    p.add_argument("--baseline", default=PRE_INDEX_COMMIT,
                   help="git commit whose pure materials path is measured beside this "
                        "tree's (default: the last commit before the candidate index)")
    p.add_argument("--no-baseline", dest="no_baseline", action="store_true",
                   help="measure this tree only (no git needed)")
    p.add_argument("--no-pure", dest="no_pure", action="store_true",
                   help="skip the pure part (the path without Kafka)")
    p.add_argument("--no-worker", dest="no_worker", action="store_true",
                   help="skip the worker on a broker (the pure part only)")
    p.add_argument("--out", default="bench-results", help="directory of the JSON results")
    add_common(p)
    p.set_defaults(func=cmd_bench_materials)

    p = sub.add_parser("bench-gateway",
                       help="events/s through the HTTP ingestion gateway (batches of 1, 50, "
                            "500) against the SDK's direct publish, on one broker")
    p.add_argument("--events", type=int, default=20_000,
                   help="events per measurement of the direct publish and of batches of "
                        "50 and 500 (default 20000)")
    p.add_argument("--single-events", dest="single_events", type=int, default=2_000,
                   help="events sent one per request (default 2000)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=4,
                   help="requests in flight at once (default 4)")
    p.add_argument("--out", default="bench-results", help="directory of the JSON results")
    add_common(p)
    p.set_defaults(func=cmd_bench_gateway)

    bench_step.register(sub)  # bench-step: the pure case-state step (issue 15)
    register_rebuild(sub)  # bench-rebuild: onewindow rebuild, bulk (issue 15)
    bench_reprocess.register(sub)  # bench-reprocess: onewindow reprocess (issue 15)
    bench_supervision.register(sub)  # bench-supervision: the supervisor view (issue 16)
    for name in BENCHES:  # each starts processes of its own, stopped by its `finally`s
        sub.choices[name].set_defaults(unwind_on_stop=True)


#: every bench command: SIGTERM or SIGINT unwinds it (`onewindow.stopping.
#: raise_on_signals`, `onewindow_cli.cli.main`), so the brokers, PostgreSQL clusters and
#: workers it started are stopped before it exits (it left its Kafka JVMs running)
BENCHES = ("bench", "bench-materials", "bench-gateway", "bench-step", "bench-rebuild",
           "bench-reprocess", "bench-supervision")


def cmd_bench_rebuild(args: argparse.Namespace) -> int:
    """`onewindow rebuild` into SQLite and PostgreSQL against a plain read."""
    from onewindow_cli.bench import rebuild as bench_rebuild  # noqa: PLC0415 - SQLAlchemy

    summary = bench_rebuild.run(settings_from(args), bench_rebuild.BenchOptions(
        events=args.events, rounds=args.rounds, seed=args.seed, out_dir=Path(args.out),
        postgres_url=args.postgres_url, sink_rounds=args.sink_rounds,
        jobs=tuple(int(j) for j in args.jobs.split(",")),
        profile_dir=None if args.profile is None else Path(args.profile)))
    print(bench_rebuild.render(summary))  # noqa: T201
    return 0


def register_rebuild(sub: Any) -> None:
    p = sub.add_parser("bench-rebuild",
                       help="onewindow rebuild into SQLite and PostgreSQL against a plain "
                            "read of the same topics and the live sink's path")
    p.add_argument("--events", type=int, default=60_000,
                   help="input events whose output records are loaded (default 60000: "
                        "about 170,000 output records)")
    p.add_argument("--rounds", type=positive_int, default=3)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--postgres-url", dest="postgres_url", type=postgres_url, default=None,
                   help="a PostgreSQL server whose role may CREATE DATABASE (default: a "
                        "throwaway cluster from the machine's binaries)")
    p.add_argument("--sink-rounds", dest="sink_rounds", type=int, default=1,
                   help="rounds that also run the live sink (the row-at-a-time path, "
                        "and the model each rebuild must equal) into each database "
                        "(default 1; 0: none)")
    p.add_argument("--jobs", default="1,2", metavar="J[,J...]",
                   help="the rebuild's --jobs values to measure (default 1,2)")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="also run one rebuild into each database under cProfile; the "
                        "profiles and their top functions go to DIR")
    p.add_argument("--out", default="bench-results", help="directory of the JSON results")
    add_common(p)
    p.set_defaults(func=cmd_bench_rebuild)
