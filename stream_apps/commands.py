"""Subcommands of the stream side: `onewindow worker`, `onewindow materials-worker`,
`onewindow bench-materials`."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_worker(args: argparse.Namespace) -> int:
    """The case-state stream worker (Faust) in the foreground."""
    from onewindow.cli import settings_from
    from stream_apps.app import run_worker

    s = settings_from(args)
    if args.web_port:
        s = s.model_copy(update={"worker_web_port": args.web_port})
    run_worker(s, worker_name=args.name, loglevel=args.loglevel)
    return 0


def cmd_materials_worker(args: argparse.Namespace) -> int:
    """The materials stream worker (duplicate-material detection) in the foreground."""
    from onewindow.cli import settings_from
    from stream_apps.materials_app import run_materials_worker

    s = settings_from(args)
    if args.web_port:
        s = s.model_copy(update={"materials_web_port": args.web_port})
    run_materials_worker(s, worker_name=args.name, loglevel=args.loglevel)
    return 0


def cmd_bench_materials(args: argparse.Namespace) -> int:
    """The materials scale check: generate, run through the materials worker, compare."""
    from onewindow.cli import settings_from
    from stream_apps.materials_bench import BenchOptions, run_bench

    opts = BenchOptions(materials=args.materials, seed=args.seed, replay_rate=args.replay_rate,
                        partitions=args.partitions, out_dir=args.out,
                        external=args.bootstrap is not None)
    return run_bench(settings_from(args), opts)


def register(sub: Any) -> None:
    from onewindow.cli import add_common

    p = sub.add_parser("worker", help="run the case-state stream worker (Faust)")
    p.add_argument("--name", default="worker", help="worker name: its RocksDB directory")
    p.add_argument("--web-port", type=int, help="port of its /metrics page")
    p.add_argument("--loglevel", default=None, help="log level (ONEWINDOW_LOG_LEVEL)")
    add_common(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("materials-worker",
                       help="run the materials stream worker (duplicate-material detection)")
    p.add_argument("--name", default="materials", help="worker name: its RocksDB directory")
    p.add_argument("--web-port", type=int, help="port of its /metrics page")
    p.add_argument("--loglevel", default=None, help="log level (ONEWINDOW_LOG_LEVEL)")
    add_common(p)
    p.set_defaults(func=cmd_materials_worker)

    p = sub.add_parser("bench-materials",
                       help="scale check of duplicate-material detection on a generated "
                            "population; compares the links with the pure rules")
    p.add_argument("--materials", type=int, default=100_000,
                   help="at least this many materials (default 100000)")
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--replay-rate", type=float, default=0.05,
                   help="share of activity records sent twice (replays)")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--out", default="bench-results", help="directory of the JSON results")
    add_common(p)
    p.set_defaults(func=cmd_bench_materials)
