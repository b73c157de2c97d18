"""`onewindow`: one entry point for every process and tool of the project.

Each runtime declares its subcommands in its `commands` module (`register(subparsers)`);
this module imports them directly and adds the commands that wire several runtimes
together or stand on the core alone (`up`, `bench`, `bench-materials`, `provision`,
`kafka`). Errors the user can fix end the command with exit status 2 and one readable
line; nothing here prints a traceback for them.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

import counter.commands
import producers.commands
import sinks.commands
import stream_apps.commands
from onewindow.cli_options import add_common, settings_from
from onewindow.departments import load_registry
from onewindow.errors import OneWindowError
from onewindow.kafka_local import LocalKafka
from onewindow.provision import ensure_topics, plan
from onewindow.topics import Topics
from onewindow_cli import bench, stack

#: Every module that adds subcommands, in the order `onewindow --help` lists them.
COMMAND_MODULES = (producers.commands, stream_apps.commands, sinks.commands,
                   counter.commands, stack, bench)


def cmd_provision(args: argparse.Namespace) -> int:
    s = settings_from(args)
    registry = load_registry(s.departments_file)
    created = ensure_topics(s.kafka_bootstrap,
                            plan(Topics(s.topic_prefix), registry.codes, s.partitions),
                            replication=s.replication_factor)
    print(f"topics ready on {s.kafka_bootstrap}; created {len(created)}: "  # noqa: T201
          + (", ".join(created) or "none"))
    return 0


def cmd_kafka(args: argparse.Namespace) -> int:
    """Run only the local broker in the foreground (for development)."""
    s = settings_from(args)
    broker = LocalKafka(data_dir=s.data_dir / "kafka", port=s.kafka_port,
                        controller_port=s.kafka_controller_port, version=s.kafka_version,
                        cache_dir=s.cache_dir)
    broker.start()
    print(f"Kafka {s.kafka_version} on {broker.bootstrap}; Ctrl-C stops it", flush=True)  # noqa: T201
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The whole `onewindow` parser: every runtime's subcommands and this package's."""
    parser = argparse.ArgumentParser(prog="onewindow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("provision", help="create the input and output topics (idempotent)")
    add_common(p)
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser("kafka", help="run the local Kafka broker from the jars in the foreground")
    p.set_defaults(func=cmd_kafka)

    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; its exit status (2 for a `OneWindowError`, 130 for Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except OneWindowError as exc:
        print(f"onewindow {args.command}: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
