"""Alembic migrations of the gateway's key store (``gateway.keys``), run programmatically
(no alembic.ini), as the staff store's are (``counter.staff_migrations``).

    from gateway.key_migrations import upgrade
    upgrade(engine)   # to head; idempotent: the gateway and `onewindow gateway-keys` call it

Its own version table, ``alembic_version_gateway``, so ``onewindow rebuild`` (which
downgrades the read model to nothing) leaves the departments' keys alone.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

__all__ = ["VERSION_TABLE", "current_revision", "head_revision", "upgrade"]

HERE = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version_gateway"


def _config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url",
                            engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the key store at ``engine`` to ``revision`` (default: the newest)."""
    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()
