"""Subcommands of the stream side: `onewindow worker`, `onewindow materials-worker`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from onewindow.cli_options import add_common, settings_from
from onewindow.config import Settings
from onewindow.logs import configure_logging


def _case_state_app(settings: Settings, name: str) -> Any:
    # Faust and its app (~0.6 s to import) load only for the worker commands, so the
    # other `onewindow` commands start quickly.
    from stream_apps.app import create_app  # noqa: PLC0415 - heavy, see above

    return create_app(settings, worker_name=name)


def _materials_app(settings: Settings, name: str) -> Any:
    from stream_apps.materials_app import create_app  # noqa: PLC0415 - Faust, see _case_state_app

    return create_app(settings, worker_name=name)


# The Faust workers: command -> (app factory, settings field of its web port, default
# worker name, help).
WORKERS: dict[str, tuple[Callable[[Settings, str], Any], str, str, str]] = {
    "worker": (_case_state_app, "worker_web_port", "worker",
               "run the case-state stream worker (Faust)"),
    "materials-worker": (_materials_app, "materials_web_port", "materials",
                         "run the materials stream worker (duplicate-material detection)"),
}


def cmd_worker(args: argparse.Namespace) -> int:
    """A Faust stream worker in the foreground until SIGTERM/SIGINT."""
    from stream_apps.faust_base import run  # noqa: PLC0415 - Faust, see _case_state_app

    factory, port_field, _name, _help = WORKERS[args.command]
    s = settings_from(args)
    if args.web_port:
        s = s.model_copy(update={port_field: args.web_port})
    configure_logging(s, level=args.loglevel)
    run(factory(s, args.name), s, args.loglevel)
    return 0


def register(sub: Any) -> None:
    """Add the worker subcommands to `sub` (an argparse subparsers action)."""
    for command, (_factory, _port, name, help_text) in WORKERS.items():
        p = sub.add_parser(command, help=help_text)
        p.add_argument("--name", default=name, help="worker name: its RocksDB directory")
        p.add_argument("--web-port", type=int, help="port of its /metrics page")
        p.add_argument("--loglevel", default=None, help="log level (ONEWINDOW_LOG_LEVEL)")
        add_common(p)
        p.set_defaults(func=cmd_worker)
