"""The command-line options every runtime's subcommands share, and the settings they give.

Each runtime (producers, stream_apps, sinks, counter) declares its own subcommands in its
`commands` module; they all take the same connection options, defined here once so the
core, not the command line above it, owns their names (`onewindow_cli` only assembles).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from onewindow.config import Settings, get_settings

#: Most workers of each kind `onewindow up --workers` starts on one machine (each a Faust
#: worker of ~150 MiB with its own web port; a city's deployment runs them on several
#: machines, docs/operations.md).
MAX_LOCAL_WORKERS = 16
#: Most simulated seconds per wall-clock second (`simulate`, `up --compression`): a
#: working day in 0.025 s; far beyond it the simulated clock leaves the calendar's years.
MAX_COMPRESSION = 1_000_000.0
#: Most hours of backlog the simulator replays on its first run (about five years of the
#: centre's open hours; further back the working-day calendar has no years).
MAX_BACKLOG_HOURS = 10_000.0


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


def at_most(parse: Callable[[str], Any], limit: float) -> Callable[[str], Any]:
    """An argparse type: ``parse`` (e.g. `positive_int`, `positive_float`), refused above
    ``limit`` (a bound that keeps a typo from starting a machine's worth of processes or
    a simulated clock past the calendar's years)."""

    def checked(text: str) -> Any:
        value = parse(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"{text} is more than {limit:g}")
        return value

    checked.__name__ = getattr(parse, "__name__", "value")  # argparse's error names it
    return checked


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the common command-line options on top."""
    s = get_settings()
    updates = {k: v for k, v in (("kafka_bootstrap", getattr(args, "bootstrap", None)),
                                  ("database_url", getattr(args, "database_url", None)),
                                  ("topic_prefix", getattr(args, "topic_prefix", None)),
                                  ("insecure_dev_key", getattr(args, "insecure_dev_key", None)))
               if v is not None}
    return s.model_copy(update=updates) if updates else s
