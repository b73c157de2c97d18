"""Alembic environment of the gateway's key store (``onewindow_migrations``: its own
version table, and only its own tables; the read model's and the staff store's are other
histories)."""

from gateway.key_migrations import HISTORY
from gateway.keys import metadata

HISTORY.run_environment(metadata)
