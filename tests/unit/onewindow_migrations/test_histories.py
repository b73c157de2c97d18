"""The three histories of one database (onewindow_migrations): the read model, the staff
store and the gateway's keys, each with its own version table, each seeing only its own
tables, so one is dropped and recreated without touching the others."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, inspect

from counter import staff_migrations
from gateway import key_migrations
from sinks import migrations as read_model_migrations

HISTORIES = (read_model_migrations.HISTORY, staff_migrations.HISTORY, key_migrations.HISTORY)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_three_histories_share_a_database_without_seeing_each_other(engine: Engine) -> None:
    # `engine` holds the read model at head (tests/unit/conftest.py)
    for history in HISTORIES[1:]:
        history.upgrade(engine)
        history.upgrade(engine)  # idempotent
    tables = set(inspect(engine).get_table_names())
    assert {"alembic_version", "alembic_version_staff", "alembic_version_gateway"} <= tables
    for history in HISTORIES:
        assert history.head_revision() is not None
        assert history.current_revision(engine) == history.head_revision()
        # autogenerate compares the store's own tables only: the database, holding the
        # other stores' tables too, matches each history's metadata (before, the read
        # model's would have proposed dropping the staff store and the keys)
        command.check(history.config(engine))

    read_model_migrations.downgrade(engine)
    assert read_model_migrations.current_revision(engine) is None
    assert "cases" not in inspect(engine).get_table_names()
    for history in HISTORIES[1:]:
        assert history.current_revision(engine) == history.head_revision()
    read_model_migrations.upgrade(engine)
    assert read_model_migrations.current_revision(engine) == read_model_migrations.head_revision()
