"""Alembic environment of the staff store (``onewindow_migrations``: its own version
table, and only its own tables; the read model's are another history)."""

from counter.staff_migrations import HISTORY
from onewindow.staff.tables import metadata

HISTORY.run_environment(metadata)
