"""`onewindow`: one entry point for every process and tool of the project.

Errors the user can fix end the command with exit status 2 and one readable line;
nothing here prints a traceback for them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from onewindow.errors import OneWindowError


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Settings from the environment, with command-line flags on top."""
    from onewindow.config import get_settings

    s = get_settings()
    updates = {k: v for k, v in (("kafka_bootstrap", getattr(args, "bootstrap", None)),
                                  ("database_url", getattr(args, "database_url", None)),
                                  ("topic_prefix", getattr(args, "topic_prefix", None)))
               if v is not None}
    return s.model_copy(update=updates) if updates else s


def cmd_produce(args: argparse.Namespace) -> int:
    from producers.jsonl import produce_file

    s = _settings(args)
    return produce_file(s, Path(args.file), topic=args.topic, validate=not args.no_validate,
                        out=sys.stdout, err=sys.stderr)


def cmd_provision(args: argparse.Namespace) -> int:
    from onewindow.departments import load_registry
    from onewindow.provision import ensure_topics, plan
    from onewindow.topics import Topics

    s = _settings(args)
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

    s = _settings(args)
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


def cmd_worker(args: argparse.Namespace) -> int:
    """The case-state stream worker (Faust) in the foreground."""
    from stream_apps.app import run_worker

    s = _settings(args)
    if args.web_port:
        s = s.model_copy(update={"worker_web_port": args.web_port})
    run_worker(s, worker_name=args.name, loglevel=args.loglevel)
    return 0


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (ONEWINDOW_KAFKA_BOOTSTRAP)")
    p.add_argument("--topic-prefix", dest="topic_prefix",
                   help="prefix for every topic name (ONEWINDOW_TOPIC_PREFIX)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onewindow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("produce", help="publish a JSON-lines file of events")
    p.add_argument("file", help="JSON lines, one event per line (interfaces.md JSON form)")
    p.add_argument("--topic", help="send every event to this topic instead of its department's")
    p.add_argument("--no-validate", action="store_true",
                   help="skip the source-side checks (the stream app still enforces them)")
    _add_common(p)
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("provision", help="create the input and output topics (idempotent)")
    _add_common(p)
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser("worker", help="run the case-state stream worker (Faust)")
    p.add_argument("--name", default="worker", help="worker name: its RocksDB directory")
    p.add_argument("--web-port", type=int, help="port of its /metrics page")
    p.add_argument("--loglevel", default="WARNING")
    _add_common(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("kafka", help="run the local Kafka broker from the jars in the foreground")
    p.set_defaults(func=cmd_kafka)
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
