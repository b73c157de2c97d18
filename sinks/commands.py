"""Subcommands of the sink side: `onewindow sink`, `onewindow rebuild`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from onewindow.cli_options import add_common, settings_from
from onewindow.logs import configure_logging
from onewindow.observability.health import serve_http


def cmd_sink(args: argparse.Namespace) -> int:
    """Run the sinks in the foreground; SIGTERM/Ctrl-C commit the batch in hand and exit."""
    # SQLAlchemy, Alembic and the sink (~0.8 s to import) load only for the sink commands,
    # so the other `onewindow` commands start quickly.
    from sinks.bootstrap import build_sink  # noqa: PLC0415 - heavy, see above
    from sinks.runner import SinkRunner  # noqa: PLC0415 - heavy, see above

    s = settings_from(args)
    configure_logging(s, level=args.loglevel)
    runner = SinkRunner(build_sink(s, commit_delay=args.commit_delay),
                        batch_max=args.batch_size, linger=args.linger)
    port = args.metrics_port if args.metrics_port is not None else s.sink_metrics_port
    host = s.metrics_host  # 0.0.0.0 in a container
    if port:
        # /healthz and /readyz (docs/operations.md, Health), the metrics at every other
        # path, from a thread: a stuck poll loop is still answered for, 503
        runner.metrics.registry.register(runner.health.collector())
        serve_http(host, port, runner.metrics.registry, runner.health)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"sink: {s.kafka_bootstrap} -> {runner.engine.url.render_as_string(hide_password=True)}"  # noqa: T201
          f"; metrics on http://{host}:{port}/metrics", flush=True)
    runner.run(stop)
    print(f"sink: stopped after {runner.committed_records} records", flush=True)  # noqa: T201
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from sinks.bootstrap import build_sink  # noqa: PLC0415 - SQLAlchemy, see cmd_sink
    from sinks.rebuild import rebuild  # noqa: PLC0415 - heavy, see above

    s = settings_from(args)
    configure_logging(s, level=args.loglevel or "WARNING")
    report = rebuild(build_sink(s, migrate=False), batch_max=args.batch_size, out=sys.stdout)
    print(f"rebuilt from {report.records} records in {report.seconds:.1f}s "  # noqa: T201
          f"({', '.join(f'{k} {v}' for k, v in sorted(report.results.items())) or 'none'})")
    for table, n in report.tables.items():
        print(f"  {table:<18} {n:>10}")  # noqa: T201
    return 0


def register(sub: Any) -> None:
    """Add `sink` and `rebuild` to `sub` (an argparse subparsers action)."""
    p = sub.add_parser("sink", help="run the read-model sinks (output topics -> SQL)")
    p.add_argument("--metrics-port", type=int, dest="metrics_port",
                   help="port of /metrics (ONEWINDOW_SINK_METRICS_PORT; 0 for none)")
    p.add_argument("--batch-size", type=int, default=2000, dest="batch_size",
                   help="most records per transaction")
    p.add_argument("--linger", type=float, default=0.02,
                   help="seconds a batch waits for more records after its first")
    p.add_argument("--commit-delay", type=float, default=0.0, dest="commit_delay",
                   help=argparse.SUPPRESS)  # tests: widen the window before COMMIT
    p.add_argument("--loglevel", default=None)
    add_common(p, database=True)
    p.set_defaults(func=cmd_sink)

    p = sub.add_parser("rebuild", help="drop and rebuild the read model from the topics")
    p.add_argument("--batch-size", type=int, default=5000, dest="batch_size")
    p.add_argument("--loglevel", default=None)
    add_common(p, database=True)
    p.set_defaults(func=cmd_rebuild)
