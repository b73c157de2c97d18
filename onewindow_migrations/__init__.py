"""One Alembic history of one store, run programmatically (no ``alembic.ini``).

The project keeps three stores in one database, each with a history of its own: the read
model (``sinks.migrations``, Alembic's default version table ``alembic_version``), the
staff store (``counter.staff_migrations``, ``alembic_version_staff``) and the gateway's
key store (``gateway.key_migrations``, ``alembic_version_gateway``). Separate version
tables let ``onewindow rebuild`` drop the read model (downgrade to nothing) and leave
users, sessions, the access log and the departments' keys alone. This module is what they
share; each package holds only its ``versions/``, its ``script.py.mako`` and two lines::

    # counter/staff_migrations/__init__.py
    HISTORY = MigrationHistory(Path(__file__).resolve().parent, "alembic_version_staff")
    upgrade = HISTORY.upgrade            # upgrade(engine): to head, idempotent

    # counter/staff_migrations/env.py
    HISTORY.run_environment(metadata)    # the store's SQLAlchemy MetaData

It sits below the runtimes and above the core (the import-linter layers in
pyproject.toml): it needs Alembic, which the core never loads (tests/unit/test_layers.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData

from onewindow.read_model.engine import make_engine

__all__ = ["DEFAULT_VERSION_TABLE", "MigrationHistory"]

#: Alembic's own default (the read model's history uses it)
DEFAULT_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class MigrationHistory:
    """The migrations of one store: the Alembic script directory ``script_location``
    (its ``env.py`` calls :meth:`run_environment`, its revisions are in ``versions/``)
    and the table that records the revision a database is at (``version_table``)."""

    script_location: Path
    version_table: str = DEFAULT_VERSION_TABLE

    def config(self, engine: Engine | None = None) -> Config:
        """An Alembic ``Config`` of this history (on ``engine``'s URL when given)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(self.script_location))
        if engine is not None:
            cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(
                hide_password=False).replace("%", "%%"))
        return cfg

    def upgrade(self, engine: Engine, revision: str = "head") -> None:
        """Migrate the store at ``engine`` to ``revision`` (default: the newest), in one
        transaction; idempotent."""
        cfg = self.config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def downgrade(self, engine: Engine, revision: str = "base") -> None:
        """Migrate back to ``revision`` (default: nothing, every table of the store
        dropped), in one transaction."""
        cfg = self.config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)

    def revision(self, engine: Engine, message: str, *, autogenerate: bool = False) -> None:
        """Write a new revision file into ``versions/`` (``autogenerate``: from the
        difference between the database at ``engine`` and the store's metadata)."""
        cfg = self.config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message=message, autogenerate=autogenerate)

    def current_revision(self, engine: Engine) -> str | None:
        """The revision the database at ``engine`` is at (None: not migrated)."""
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": self.version_table})
            return ctx.get_current_revision()

    def head_revision(self) -> str | None:
        """The newest revision of the history."""
        return ScriptDirectory.from_config(self.config()).get_current_head()

    def run_environment(self, metadata: MetaData) -> None:
        """The body of the history's ``env.py``: run the migrations Alembic asks for on
        the connection :meth:`upgrade` handed over (else on ``sqlalchemy.url``), with
        this history's version table, comparing only ``metadata``'s tables (the other
        stores' tables in the same database are other histories: autogenerate must not
        drop them). Offline (``--sql``) it writes the SQL instead."""
        cfg = context.config
        options = {
            "target_metadata": metadata,
            "version_table": self.version_table,
            "include_name": lambda name, type_, _parent: (
                type_ != "table" or name in metadata.tables),
            "compare_type": True,
        }
        if context.is_offline_mode():
            context.configure(url=cfg.get_main_option("sqlalchemy.url"), literal_binds=True,
                              **options)
            with context.begin_transaction():
                context.run_migrations()
            return

        def run(connection: Connection) -> None:
            context.configure(connection=connection,
                              render_as_batch=connection.dialect.name == "sqlite", **options)
            with context.begin_transaction():
                context.run_migrations()

        connection = cfg.attributes.get("connection")
        if connection is not None:
            run(connection)
            return
        with make_engine(cfg.get_main_option("sqlalchemy.url"), writer=True).begin() as conn:
            run(conn)
