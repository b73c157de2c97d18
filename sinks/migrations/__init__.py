"""Alembic migrations of the read model, run programmatically (no alembic.ini).

    from sinks.migrations import upgrade
    upgrade(engine)            # to head; idempotent, the sink calls it on start

``downgrade(engine)`` goes back to an empty database (``onewindow rebuild`` uses it to
drop the model before recreating it). New revisions go in ``versions/``; generate one
with ``python -m sinks.migrations revision -m "..." [--autogenerate] --url URL``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from onewindow.read_model.engine import make_engine

__all__ = ["HERE", "alembic_config", "current_revision", "downgrade", "head_revision", "upgrade"]

HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url",
                            engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the read model at ``engine`` to ``revision`` (default: the newest)."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Migrate back to ``revision`` (default: nothing, every table dropped)."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def main(argv: list[str] | None = None) -> int:
    """``python -m sinks.migrations revision -m MSG [--autogenerate] --url URL``."""
    p = argparse.ArgumentParser(prog="python -m sinks.migrations")
    p.add_argument("action", choices=["revision", "upgrade", "downgrade", "current"])
    p.add_argument("-m", "--message", default="change")
    p.add_argument("--autogenerate", action="store_true")
    p.add_argument("--url", required=True)
    p.add_argument("--revision", default=None)
    args = p.parse_args(argv)
    engine = make_engine(args.url, writer=True)
    if args.action == "upgrade":
        upgrade(engine, args.revision or "head")
    elif args.action == "downgrade":
        downgrade(engine, args.revision or "base")
    elif args.action == "current":
        sys.stdout.write(f"{current_revision(engine)}\n")
    else:
        cfg = alembic_config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message=args.message, autogenerate=args.autogenerate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
