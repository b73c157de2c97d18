"""Alembic migrations of the read model, run programmatically (no alembic.ini).

    from sinks.migrations import upgrade
    upgrade(engine)            # to head; idempotent, the sink calls it on start

``downgrade(engine)`` goes back to an empty database (``onewindow rebuild`` uses it to
drop the model before recreating it). Alembic's default version table,
``alembic_version``; the staff store's and the gateway's keys are other histories in the
same database (``onewindow_migrations``). New revisions go in ``versions/``; generate one
with ``python -m sinks.migrations revision -m "..." [--autogenerate] --url URL``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from onewindow.read_model.engine import make_engine
from onewindow_migrations import MigrationHistory

__all__ = ["HISTORY", "current_revision", "downgrade", "head_revision", "upgrade"]

HISTORY = MigrationHistory(Path(__file__).resolve().parent)

upgrade = HISTORY.upgrade
downgrade = HISTORY.downgrade
current_revision = HISTORY.current_revision
head_revision = HISTORY.head_revision


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
        HISTORY.revision(engine, args.message, autogenerate=args.autogenerate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
