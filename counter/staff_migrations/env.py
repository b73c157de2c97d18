"""Alembic environment of the staff store: the connection handed over in
``config.attributes`` (see ``counter.staff_migrations.upgrade``), its own version
table, and only its own tables (the read model's are another history)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from counter.staff_migrations import VERSION_TABLE
from onewindow.read_model.engine import make_engine
from onewindow.staff.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      version_table=VERSION_TABLE,
                      include_name=lambda name, type_, _parent: (
                          type_ != "table" or name in metadata.tables),
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    with make_engine(config.get_main_option("sqlalchemy.url"), writer=True).begin() as c:
        _run(c)
