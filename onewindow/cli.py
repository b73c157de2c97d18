"""`onewindow`: one entry point for every process and tool of the project.

Each runtime package owns its subcommands in a `commands` module with
`register(subparsers)`; this module adds the shared ones (provision, kafka) and
loads the rest. Errors the user can fix end the command with exit status 2 and one
readable line; nothing here prints a traceback for them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from onewindow.config import Settings
from onewindow.errors import OneWindowError

COMMAND_MODULES = ("producers.commands", "stream_apps.commands", "sinks.commands",
                   "counter.commands", "producers.simulator", "onewindow.stack",
                   "onewindow.bench")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the common command-line flags on top."""
    from onewindow.config import get_settings

    s = get_settings()
    updates = {k: v for k, v in (("kafka_bootstrap", getattr(args, "bootstrap", None)),
                                  ("database_url", getattr(args, "database_url", None)),
                                  ("topic_prefix", getattr(args, "topic_prefix", None)))
               if v is not None}
    return s.model_copy(update=updates) if updates else s


def add_common(p: argparse.ArgumentParser, *, database: bool = False) -> None:
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (ONEWINDOW_KAFKA_BOOTSTRAP)")
    p.add_argument("--topic-prefix", dest="topic_prefix",
                   help="prefix for every topic name (ONEWINDOW_TOPIC_PREFIX)")
    if database:
        p.add_argument("--database-url", dest="database_url",
                       help="read model URL (ONEWINDOW_DATABASE_URL)")


def cmd_provision(args: argparse.Namespace) -> int:
    from onewindow.departments import load_registry
    from onewindow.provision import ensure_topics, plan
    from onewindow.topics import Topics

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
    import signal
    import threading

    from onewindow.kafka_local import LocalKafka

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
    parser = argparse.ArgumentParser(prog="onewindow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("provision", help="create the input and output topics (idempotent)")
    add_common(p)
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser("kafka", help="run the local Kafka broker from the jars in the foreground")
    p.set_defaults(func=cmd_kafka)

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that runtime has no commands yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
