"""Alembic migrations of the staff store, run programmatically (no alembic.ini).

    from counter.staff_migrations import upgrade
    upgrade(engine)   # to head; idempotent: the counter app and `onewindow users` call it

The history is separate from the read model's (``sinks.migrations``): its own version
table, ``alembic_version_staff``, so ``onewindow rebuild`` (which downgrades the read
model to nothing) leaves users, sessions and the access log alone
(``onewindow_migrations``). There is no downgrade helper on purpose: the access log is
append-only.
"""

from __future__ import annotations

from pathlib import Path

from onewindow_migrations import MigrationHistory

__all__ = ["HISTORY", "VERSION_TABLE", "current_revision", "head_revision", "upgrade"]

VERSION_TABLE = "alembic_version_staff"
HISTORY = MigrationHistory(Path(__file__).resolve().parent, VERSION_TABLE)

upgrade = HISTORY.upgrade
current_revision = HISTORY.current_revision
head_revision = HISTORY.head_revision
