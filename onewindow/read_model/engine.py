"""Engine factory of the read model: SQLite (WAL) by default, PostgreSQL by URL.

SQLite: write-ahead log (readers never block the sink's writer and the writer never
blocks them), a busy timeout instead of "database is locked" errors, ``synchronous=NORMAL``
(a crash of the process never loses a commit; a power cut may lose the last commits,
and with them the stored offsets, so they are simply consumed again), foreign keys on,
and real transactions: pysqlite's own transaction handling is switched off and
SQLAlchemy's ``begin`` issues ``BEGIN`` (``BEGIN IMMEDIATE`` for a writer, which takes
the write lock up front instead of failing to upgrade a read lock).

PostgreSQL: ``postgresql://`` and ``postgresql+psycopg://`` both use psycopg 3.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.pool import StaticPool

from onewindow.backoff import Backoff
from onewindow.errors import ConfigError

__all__ = ["BUSY_TIMEOUT_MS", "make_engine", "normalise_url", "shown_url", "wait_for_database"]

BUSY_TIMEOUT_MS = 30_000


def shown_url(url: str | URL) -> str:
    """A database URL as a log line or a terminal may show it: the password as ``***``,
    in the user part and as a ``password`` query parameter (libpq takes it there too)."""
    u = make_url(url)
    if "password" not in u.query:
        return u.render_as_string(hide_password=True)
    shown = u.update_query_dict({"password": "HIDDEN"}).render_as_string(hide_password=True)
    return shown.replace("password=HIDDEN", "password=***")


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (the driver the project ships)."""
    for head in ("postgresql://", "postgres://"):
        if url.startswith(head):
            return "postgresql+psycopg://" + url[len(head):]
    return url


def make_engine(url: str, *, writer: bool = False, **kwargs: Any) -> Engine:
    """An engine for the read model at ``url``. ``writer=True`` for the sink (SQLite takes
    the write lock at ``BEGIN``); readers use the default. A SQLite file's directory is
    made if missing; `ConfigError` when it cannot be (SQLAlchemy's errors for a URL that
    does not parse or names no installed driver are raised as they are)."""
    url = normalise_url(url)
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("hide_parameters", True)  # SQL errors never echo row values
        return create_engine(url, **kwargs)

    memory = u.database in (None, "", ":memory:")
    if not memory:
        directory = Path(u.database).expanduser().parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # /proc/x, a path through a file, no right to make it
            why = ("a file, not a directory" if isinstance(exc, FileExistsError)
                   else exc.strerror)
            raise ConfigError(f"the SQLite database {u.database}: cannot make its "
                              f"directory {exc.filename or directory}: {why}") from None
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", BUSY_TIMEOUT_MS / 1000)
    connect_args.setdefault("check_same_thread", False)
    if memory:
        kwargs.setdefault("poolclass", StaticPool)
    kwargs.setdefault("hide_parameters", True)  # SQL errors never echo row values
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # no implicit transactions: we BEGIN ourselves
        cur = dbapi_conn.cursor()
        try:
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def _transient(reason: str) -> bool:
    """A SQLite error that passes: another connection's lock (``database is locked``,
    ``database table is locked``, SQLITE_BUSY)."""
    return "locked" in reason or "busy" in reason.lower()


def wait_for_database(url: str, *, stop: threading.Event | None = None,
                      backoff: Backoff | None = None,
                      say: Callable[[str], None] | None = None) -> bool:
    """Block until the database at ``url`` accepts a connection (``SELECT 1``), retrying
    with ``backoff`` (1 s doubling to 30 s) while it refuses (a PostgreSQL server that is
    down or still starting: SQLAlchemy's OperationalError), each failed attempt told
    through ``say`` in one line. True once connected, False if ``stop`` is set first. A
    URL that cannot work (no such driver, malformed) raises at once, as make_engine does;
    so does a SQLite file that cannot be opened (ConfigError: a path in a directory that
    cannot be written, ``/proc``, a file that is not a database), where waiting heals
    nothing and the counter retried for ever."""
    backoff = backoff or Backoff(first=1.0, cap=30.0)
    engine = make_engine(url)
    shown = shown_url(engine.url)
    attempt = 0
    try:
        while stop is None or not stop.is_set():
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return True
            except DatabaseError as exc:  # OperationalError is one
                reason = str(exc.orig or exc).strip().splitlines()[0][:200]
                if engine.dialect.name == "sqlite" and not _transient(reason):
                    # a file, not a server: waiting heals nothing but another's lock
                    raise ConfigError(f"the database {shown} cannot be opened "
                                      f"({reason})") from None
                if not isinstance(exc, OperationalError):
                    raise  # not a server still starting or away: waiting heals nothing
                attempt += 1
                delay = backoff.delay(attempt)
                if say is not None:
                    say(f"the database {shown} does not answer ({reason}); "
                        f"retrying in {delay:.3g}s")
                if stop is not None:
                    stop.wait(delay)
                else:
                    time.sleep(delay)
        return False
    finally:
        engine.dispose()
