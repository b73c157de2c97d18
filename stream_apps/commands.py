"""Subcommands of the stream side: `onewindow worker`."""

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


def register(sub: Any) -> None:
    from onewindow.cli import add_common

    p = sub.add_parser("worker", help="run the case-state stream worker (Faust)")
    p.add_argument("--name", default="worker", help="worker name: its RocksDB directory")
    p.add_argument("--web-port", type=int, help="port of its /metrics page")
    p.add_argument("--loglevel", default="WARNING")
    add_common(p)
    p.set_defaults(func=cmd_worker)
