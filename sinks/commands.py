"""Subcommands of the sink side: `onewindow sink`, `onewindow rebuild`."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from onewindow.broker_wait import waiting_line
from onewindow.cli_options import (
    add_common,
    log_level,
    positive_int,
    settings_from,
    tcp_port_or_none,
    wait_seconds,
)
from onewindow.logs import LIBRDKAFKA_LOGGER, configure_logging
from onewindow.observability.health import serve_http
from onewindow.read_model.engine import shown_url, wait_for_database
from onewindow.security.id_key import resolve_id_hash_key
from onewindow.stopping import stop_on_signals

log = logging.getLogger("onewindow.sink")


def cmd_sink(args: argparse.Namespace) -> int:
    """Run the sinks in the foreground; SIGTERM/Ctrl-C commit the batch in hand and exit
    0, also while the sink still waits for its database or the broker at start."""
    s = settings_from(args)
    configure_logging(s, level=args.loglevel)
    # the stop first: a SIGTERM during the waits below ends the sink with status 0
    with stop_on_signals() as stop:
        # SQLAlchemy, Alembic and the sink (~0.8 s to import) load only for the sink
        # commands, so the other `onewindow` commands start quickly.
        from sinks.bootstrap import build_sink  # noqa: PLC0415 - heavy, see above
        from sinks.runner import SinkRunner  # noqa: PLC0415 - heavy, see above

        # no ID hash key: one line and exit 2 before touching the database (the wait
        # below would create an SQLite file)
        resolve_id_hash_key(s)
        # a database still starting (or down) is waited for, with backoff, until a stop
        if not wait_for_database(s.database_url, stop=stop, say=log.warning):
            print("sink: stopped while waiting for the database", flush=True)  # noqa: T201
            return 0
        runner = SinkRunner(build_sink(s, commit_delay=args.commit_delay),
                            batch_max=args.batch_size, linger=args.linger)
        port = args.metrics_port if args.metrics_port is not None else s.sink_metrics_port
        host = s.metrics_host  # 0.0.0.0 in a container
        if port:
            # /healthz and /readyz (docs/operations.md, Health), the metrics at every
            # other path, from a thread: a stuck poll loop is still answered for, 503
            runner.metrics.registry.register(runner.health.collector())
            serve_http(host, port, runner.metrics.registry, runner.health)
        print(f"sink: {s.kafka_bootstrap} -> "  # noqa: T201
              f"{shown_url(runner.engine.url)}"
              f"; metrics on http://{host}:{port}/metrics", flush=True)
        runner.run(stop)  # waits for the broker (and the topics) until a stop, too
    print(f"sink: stopped after {runner.committed_records} records", flush=True)  # noqa: T201
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from sinks.bootstrap import build_sink  # noqa: PLC0415 - SQLAlchemy, see cmd_sink
    from sinks.rebuild import rebuild  # noqa: PLC0415 - heavy, see above

    s = settings_from(args)
    configure_logging(s, level=args.loglevel or "WARNING")
    if args.loglevel is None:
        # a one-shot command on the terminal: librdkafka's own lines (ten a second while
        # the broker is away) only with --loglevel; the wait and its end say it in a line
        logging.getLogger(LIBRDKAFKA_LOGGER).propagate = False
    report = rebuild(build_sink(s, migrate=False), batch_max=args.batch_size, out=sys.stdout,
                     wait=args.wait, say=waiting_line("rebuild", args.wait, s.kafka_bootstrap),
                     jobs=args.jobs)
    print(f"rebuilt from {report.records} records in {report.seconds:.2f}s "  # noqa: T201
          f"({', '.join(f'{k} {v}' for k, v in sorted(report.results.items())) or 'none'})")
    if report.phases:
        print("  " + ", ".join(f"{k} {v:.2f}s" for k, v in report.phases.items()))  # noqa: T201
    for table, n in report.tables.items():
        print(f"  {table:<18} {n:>10}")  # noqa: T201
    return 0


def register(sub: Any) -> None:
    """Add `sink` and `rebuild` to `sub` (an argparse subparsers action)."""
    p = sub.add_parser("sink", help="run the read-model sinks (output topics -> SQL)")
    p.add_argument("--metrics-port", type=tcp_port_or_none, dest="metrics_port",
                   help="port of /metrics (ONEWINDOW_SINK_METRICS_PORT; 0 for none)")
    p.add_argument("--batch-size", type=positive_int, default=2000, dest="batch_size",
                   help="most records per transaction")
    p.add_argument("--linger", type=float, default=0.02,
                   help="seconds a batch waits for more records after its first")
    p.add_argument("--commit-delay", type=float, default=0.0, dest="commit_delay",
                   help=argparse.SUPPRESS)  # tests: widen the window before COMMIT
    p.add_argument("--loglevel", type=log_level, default=None)
    add_common(p, database=True)
    p.set_defaults(func=cmd_sink)

    p = sub.add_parser("rebuild", help="drop and rebuild the read model from the topics")
    p.add_argument("--batch-size", type=positive_int, default=50_000, dest="batch_size",
                   help="records per chunk: reduced in memory and written in one "
                        "transaction (default 50000)")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="processes loading a group of partitions each (default 1; the "
                        "row mapping takes most of the CPU: up to one per core)")
    p.add_argument("--wait", type=wait_seconds, default=30.0, metavar="SECONDS",
                   help="how long to wait for the broker to answer (default 30); then exit "
                        "status 1, the model untouched")
    p.add_argument("--loglevel", type=log_level, default=None)
    add_common(p, database=True)
    p.set_defaults(func=cmd_rebuild)
