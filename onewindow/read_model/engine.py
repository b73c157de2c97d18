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

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

__all__ = ["BUSY_TIMEOUT_MS", "make_engine", "normalise_url"]

BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (the driver the project ships)."""
    for head in ("postgresql://", "postgres://"):
        if url.startswith(head):
            return "postgresql+psycopg://" + url[len(head):]
    return url


def make_engine(url: str, *, writer: bool = False, **kwargs: Any) -> Engine:
    """An engine for the read model at ``url``. ``writer=True`` for the sink (SQLite takes
    the write lock at ``BEGIN``); readers use the default."""
    url = normalise_url(url)
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("hide_parameters", True)  # SQL errors never echo row values
        return create_engine(url, **kwargs)

    memory = u.database in (None, "", ":memory:")
    if not memory:
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
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
