"""Subcommands of the stream side: `onewindow worker`, `onewindow materials-worker`,
`onewindow bench-materials`."""

from __future__ import annotations

import argparse
from typing import Any

# The Faust workers: command -> (module with create_app, settings field of its web port,
# default worker name, help).
WORKERS = {
    "worker": ("stream_apps.app", "worker_web_port", "worker",
               "run the case-state stream worker (Faust)"),
    "materials-worker": ("stream_apps.materials_app", "materials_web_port", "materials",
                         "run the materials stream worker (duplicate-material detection)"),
}


def cmd_worker(args: argparse.Namespace) -> int:
    """A Faust stream worker in the foreground until SIGTERM/SIGINT."""
    import importlib

    from onewindow.cli import settings_from
    from onewindow.logs import configure_logging
    from stream_apps.faust_base import run

    module, port_field, _name, _help = WORKERS[args.command]
    s = settings_from(args)
    if args.web_port:
        s = s.model_copy(update={port_field: args.web_port})
    configure_logging(s, level=args.loglevel)
    app = importlib.import_module(module).create_app(s, worker_name=args.name)
    run(app, s, args.loglevel)
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

    for command, (_module, _port, name, help_text) in WORKERS.items():
        p = sub.add_parser(command, help=help_text)
        p.add_argument("--name", default=name, help="worker name: its RocksDB directory")
        p.add_argument("--web-port", type=int, help="port of its /metrics page")
        p.add_argument("--loglevel", default=None, help="log level (ONEWINDOW_LOG_LEVEL)")
        add_common(p)
        p.set_defaults(func=cmd_worker)

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
