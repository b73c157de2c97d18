"""A throwaway PostgreSQL cluster from the machine's own binaries, for the tests and the
benchmarks (never for a deployment: no password, fsync off).

``initdb`` into a temporary directory (trust authentication, UTF-8, locale C), then
``pg_ctl start`` on a free loopback port with its socket in that directory; run as the
``postgres`` OS user when the caller is root (PostgreSQL refuses to run as root).
``stop()`` stops it (immediate) and removes the directory::

    pg = LocalPostgres()
    server = pg.start()                    # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
    url = create_database(server, "bench") # an empty database on it
    ...
    pg.stop()

The binaries: ``ONEWINDOW_TEST_PG_BIN``, else the newest ``/usr/lib/postgresql/*/bin``
(Debian), else ``initdb`` on the PATH; :class:`RuntimeError` when there are none.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from onewindow.kafka_local import free_port

__all__ = ["LocalPostgres", "create_database", "drop_database", "pg_bindir"]


def pg_bindir() -> Path:
    """Directory of initdb/pg_ctl: ONEWINDOW_TEST_PG_BIN, the newest
    /usr/lib/postgresql/*/bin, or the PATH."""
    env = os.environ.get("ONEWINDOW_TEST_PG_BIN")
    if env:
        return Path(env)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    if found:
        return found[-1].parent
    which = shutil.which("initdb")
    if which:
        return Path(which).parent
    raise RuntimeError("PostgreSQL binaries not found: install PostgreSQL, set "
                       "ONEWINDOW_TEST_PG_BIN, or ONEWINDOW_TEST_POSTGRES_URL to a server")


class LocalPostgres:
    """One throwaway cluster (module docstring). ``start()`` returns the URL of its
    ``postgres`` database; ``stop()`` is safe to call twice."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.url: str | None = None
        self._as_user: list[str] = []
        self._bindir: Path | None = None

    def _run(self, *cmd: str, check: bool = True) -> None:
        subprocess.run([*self._as_user, *cmd], check=check, capture_output=True, timeout=120)

    def start(self) -> str:
        self._bindir = pg_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="onewindow-pg-"))
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        data, port = self.root / "data", free_port()
        self._run(str(self._bindir / "initdb"), "-D", str(data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
        opts = (f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(str(self._bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                  str(self.root / "server.log"), "-w", "-t", "60", "start")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        return self.url

    def stop(self) -> None:
        if self.root is None or self._bindir is None:
            return
        subprocess.run([*self._as_user, str(self._bindir / "pg_ctl"), "-D",
                        str(self.root / "data"), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


def _admin_dsn(server_url: str) -> str:
    base = make_url(server_url)
    return base.set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(server_url: str, name: str) -> str:
    """Create the empty database ``name`` on the server at ``server_url`` (a role that
    may CREATE DATABASE); returns its SQLAlchemy URL."""
    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    """Drop ``name`` (its sessions ended first: ``WITH (FORCE)``, PostgreSQL 13+)."""
    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
