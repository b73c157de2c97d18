"""Read model on a SQLite file per test, migrated by the sink's own runner (no Kafka)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from onewindow.config import Settings
from onewindow.read_model.engine import make_engine
from onewindow.topics import Topics
from sinks.migrations import upgrade


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'model.db'}", topic_prefix="u.",
                    id_hash_key=SecretStr("unit-test-key"))


@pytest.fixture
def topics(settings: Settings) -> Topics:
    return Topics(settings.topic_prefix)


@pytest.fixture
def engine(settings: Settings) -> Engine:
    e = make_engine(settings.database_url, writer=True)
    upgrade(e)
    yield e
    e.dispose()
