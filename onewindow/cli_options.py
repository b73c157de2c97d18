"""The command-line options every runtime's subcommands share, and the settings they give.

Each runtime (producers, stream_apps, sinks, counter) declares its own subcommands in its
`commands` module; they all take the same connection options, defined here once so the
core, not the command line above it, owns their names (`onewindow_cli` only assembles).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onewindow.config import LOG_LEVELS, Settings, get_settings
from onewindow.topics import prefix_problem

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
    p.add_argument("--topic-prefix", dest="topic_prefix", type=topic_prefix,
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


#: the longest wait a command takes (a day, in seconds): librdkafka's timeouts are
#: milliseconds in 32 bits, and a wait of 2,147,484 s or more broke the first request
#: (a newcomer's `provision --wait 1e300`: "Broker transport failure")
MAX_WAIT_SECONDS = 86_400.0


#: the shortest: one metadata request's round trip must fit (`--wait 0.001` made a
#: healthy broker look gone: "stopped answering")
MIN_WAIT_SECONDS = 1.0


def wait_seconds(text: str) -> float:
    """An argparse type: a `--wait` in seconds, from `MIN_WAIT_SECONDS` to
    `MAX_WAIT_SECONDS`."""
    value = positive_float(text)
    if value < MIN_WAIT_SECONDS:
        raise argparse.ArgumentTypeError(f"{text} is less than {MIN_WAIT_SECONDS:g} second")
    if value > MAX_WAIT_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{text} is more than {MAX_WAIT_SECONDS:,.0f} seconds (a day)")
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


def tcp_port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535 (99999 reached the socket's bind as a
    traceback; 0 was read as "the configured port")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1 to 65535)")
    return value


def tcp_port_or_none(text: str) -> int:
    """An argparse type: a TCP port, or 0 for no server at all (the sink's /metrics)."""
    if text.strip() == "0":
        return 0
    try:
        return tcp_port(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port (1 to 65535, or 0 for none)") from None


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


def log_level(text: str) -> str:
    """An argparse type: one of `LOG_LEVELS` in any case, returned in capitals (what
    `onewindow.logs.configure_logging` and Faust take); anything else is refused, where
    it once fell back to INFO unsaid."""
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level: one of "
                                         f"{', '.join(LOG_LEVELS)} (any case)")
    return level


def topic_prefix(text: str) -> str:
    """An argparse type: a topic prefix Kafka takes in front of every topic name of the
    generation (`onewindow.topics.prefix_problem`; the empty prefix is the default)."""
    problem = prefix_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid topic prefix: {problem}")
    return text


def writable_file(text: str) -> Path:
    """An argparse type: a file the command may write at its end (a report), checked now
    so that a run of minutes or hours is not lost to a bad path: its directory exists and
    takes a new file, or the file exists and may be written. A probe file made here is
    removed at once; an existing file is opened to append, never truncated."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    parent = path.parent
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"{text}: directory {parent} {why}")
    try:
        if path.exists():
            with path.open("a"):
                pass
        else:
            with path.open("x"):
                pass
            path.unlink()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: cannot write it: {exc.strerror}") from None
    return path


def directory_problem(path: Path) -> str | None:
    """Why a command could not make and write the directory ``path`` (None: it can).

    Checked by doing it: the missing directories are made, a file created in the last and
    everything made here removed again, so the check leaves nothing behind (as root,
    permission bits say little: ``/proc/x`` is refused by the kernel alone)."""
    made: list[Path] = []
    try:
        missing = [p for p in (path, *path.parents) if not p.exists()]
        for p in reversed(missing):
            p.mkdir()
            made.append(p)
        if not path.is_dir():
            return f"{path} is not a directory"
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return f"cannot make or write {exc.filename or path}: {exc.strerror}"
    finally:
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()
    return None


def writable_dir(text: str) -> Path:
    """An argparse type: a directory the command makes (if missing) and writes in
    (`directory_problem`)."""
    problem = directory_problem(Path(text))
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return Path(text)


def postgres_url(text: str) -> str:
    """An argparse type: the SQLAlchemy URL of a PostgreSQL server reached with psycopg 3
    (``postgresql://``, ``postgres://`` or ``postgresql+psycopg://``
    ``USER[:PASSWORD]@HOST[:PORT][/DATABASE]``): refused when it does not parse, names
    another database or driver, or a port outside 1-65535. Nothing is connected to here;
    the error never repeats the text (it may hold a password)."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - SQLAlchemy only when given
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    form = "postgresql://USER[:PASSWORD]@HOST[:PORT][/DATABASE]"
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise argparse.ArgumentTypeError(f"not a database URL ({form})") from None
    backend, _, driver = url.drivername.partition("+")
    if backend not in ("postgresql", "postgres") or driver not in ("", "psycopg"):
        raise argparse.ArgumentTypeError(
            f"{url.drivername}:// is not PostgreSQL with psycopg 3 ({form})")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise argparse.ArgumentTypeError(f"port {url.port} is not 1-65535")
    return text


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the common command-line options on top."""
    s = get_settings()
    updates = {k: v for k, v in (("kafka_bootstrap", getattr(args, "bootstrap", None)),
                                  ("database_url", getattr(args, "database_url", None)),
                                  ("topic_prefix", getattr(args, "topic_prefix", None)),
                                  ("insecure_dev_key", getattr(args, "insecure_dev_key", None)))
               if v is not None}
    return s.model_copy(update=updates) if updates else s
