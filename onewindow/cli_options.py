"""The command-line options every runtime's subcommands share, and the settings they give.

Each runtime (producers, stream_apps, sinks, counter) declares its own subcommands in its
`commands` module; they all take the same connection options, defined here once so the
core, not the command line above it, owns their names (`onewindow_cli` only assembles).
"""

from __future__ import annotations

import argparse

from onewindow.config import Settings, get_settings


def add_common(p: argparse.ArgumentParser, *, database: bool = False) -> None:
    """Add `--bootstrap`, `--topic-prefix` and `--insecure-dev-key` (and `--database-url`
    if `database`)."""
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (ONEWINDOW_KAFKA_BOOTSTRAP)")
    p.add_argument("--topic-prefix", dest="topic_prefix",
                   help="prefix for every topic name (ONEWINDOW_TOPIC_PREFIX)")
    p.add_argument("--insecure-dev-key", dest="insecure_dev_key", action="store_true",
                   default=None,
                   help="without ONEWINDOW_ID_HASH_KEY(_FILE), hash ID numbers with the "
                        "built-in development key: throwaway setups only "
                        "(ONEWINDOW_INSECURE_DEV_KEY)")
    if database:
        p.add_argument("--database-url", dest="database_url",
                       help="read model URL (ONEWINDOW_DATABASE_URL)")


def positive_float(text: str) -> float:
    """An argparse type: a finite number greater than 0 (seconds, rates)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number greater than 0")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number of 0 or more (seconds where 0 means none)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of 0 or more")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number greater than 0 (counts, sizes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number greater than 0")
    return value


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the common command-line options on top."""
    s = get_settings()
    updates = {k: v for k, v in (("kafka_bootstrap", getattr(args, "bootstrap", None)),
                                  ("database_url", getattr(args, "database_url", None)),
                                  ("topic_prefix", getattr(args, "topic_prefix", None)),
                                  ("insecure_dev_key", getattr(args, "insecure_dev_key", None)))
               if v is not None}
    return s.model_copy(update=updates) if updates else s
