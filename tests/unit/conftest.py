"""The read model of the unit tests, on SQLite and on PostgreSQL.

``database_url`` is parametrised over both databases, so every test that uses the model
(``engine``, ``settings``) runs twice: ``[sqlite]`` on a file of its own and
``[postgresql]`` on a fresh database of the session's real PostgreSQL (``postgres_url``
in tests/conftest.py; without PostgreSQL binaries those runs fail, they are not
skipped). A test that checks one database only names it::

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from onewindow.config import Settings
from onewindow.read_model.engine import make_engine
from onewindow.security.kafka_auth import SERVICES, CredentialStore
from onewindow.topics import Topics
from sinks.migrations import upgrade

DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty read-model database of the parametrised kind, for one test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'model.db'}"
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    raise ValueError(f"no such database: {request.param!r}")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings of a unit test: its database, and a credentials directory holding a
    password for every service principal (no broker is ever reached in this tier)."""
    store = CredentialStore(tmp_path / "credentials")
    for principal in SERVICES:
        store.ensure(principal)
    return Settings(database_url=database_url, topic_prefix="u.",
                    id_hash_key=SecretStr("unit-test-id-hash-key-0123456789abcdef"),
                    kafka_credentials_dir=store.directory)


@pytest.fixture
def topics(settings: Settings) -> Topics:
    return Topics(settings.topic_prefix)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """The read model at ``database_url``, migrated by the sink's own migrations."""
    e = make_engine(settings.database_url, writer=True)
    upgrade(e)
    yield e
    e.dispose()
