"""Subcommands of the counter side: `onewindow counter`."""

from __future__ import annotations

import argparse
from typing import Any

from onewindow.cli_options import add_common, settings_from
from onewindow.logs import configure_logging


def cmd_counter(args: argparse.Namespace) -> int:
    """Serve the counter API with uvicorn on 127.0.0.1 (Ctrl-C/SIGTERM stop it)."""
    # FastAPI, uvicorn and SQLAlchemy (~0.8 s to import) load only for this command, so
    # the other `onewindow` commands start quickly.
    import uvicorn  # noqa: PLC0415 - heavy, see above

    from counter.app import create_app  # noqa: PLC0415 - heavy, see above

    s = settings_from(args)
    port = args.port or s.counter_port
    configure_logging(s, level=args.loglevel)
    app = create_app(s)
    print(f"counter API on http://{args.host}:{port}/docs", flush=True)  # noqa: T201
    # access_log off: uvicorn would log query strings, which may hold an ID number; the
    # app logs method, route template and status instead.
    # timeout_graceful_shutdown: on SIGTERM/Ctrl-C uvicorn waits at most 2 s for open
    # responses, then cancels them: the endless change feeds (SSE) end there.
    uvicorn.run(app, host=args.host, port=port, access_log=False, log_level="warning",
                timeout_graceful_shutdown=2)
    return 0


def register(sub: Any) -> None:
    """Add `counter` to `sub` (an argparse subparsers action)."""
    p = sub.add_parser("counter", help="serve the counter web API (read model, JSON, /docs)")
    p.add_argument("--port", type=int, help="port (ONEWINDOW_COUNTER_PORT)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--loglevel", default=None)
    add_common(p, database=True)
    p.set_defaults(func=cmd_counter)
