"""Alembic environment of the read model (``onewindow_migrations``: the connection
handed over by ``sinks.migrations.upgrade``, else ``sqlalchemy.url``)."""

from onewindow.read_model.tables import metadata
from sinks.migrations import HISTORY

HISTORY.run_environment(metadata)
