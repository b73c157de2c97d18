"""Alembic environment of the gateway's key store: the connection handed over in
``config.attributes`` (see ``gateway.key_migrations.upgrade``), its own version table,
and only its own tables (the read model's and the staff store's are other histories)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gateway.key_migrations import VERSION_TABLE
from gateway.keys import metadata
from onewindow.read_model.engine import make_engine

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
