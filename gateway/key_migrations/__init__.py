"""Alembic migrations of the gateway's key store (``gateway.keys``), run programmatically
(no alembic.ini), as the staff store's are (``counter.staff_migrations``).

    from gateway.key_migrations import upgrade
    upgrade(engine)   # to head; idempotent: the gateway and `onewindow gateway-keys` call it

Its own version table, ``alembic_version_gateway``, so ``onewindow rebuild`` (which
downgrades the read model to nothing) leaves the departments' keys alone
(``onewindow_migrations``).
"""

from __future__ import annotations

from pathlib import Path

from onewindow_migrations import MigrationHistory

__all__ = ["HISTORY", "VERSION_TABLE", "current_revision", "head_revision", "upgrade"]

VERSION_TABLE = "alembic_version_gateway"
HISTORY = MigrationHistory(Path(__file__).resolve().parent, VERSION_TABLE)

upgrade = HISTORY.upgrade
current_revision = HISTORY.current_revision
head_revision = HISTORY.head_revision
