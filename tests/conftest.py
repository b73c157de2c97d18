"""Fixtures shared by every tier. Integration tests get one real Kafka broker per test
session, started by the project's own code from the Apache jars (never a mock)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from onewindow.config import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real broker: ONEWINDOW_TEST_KAFKA_BOOTSTRAP if set (a broker
    you run yourself), else a fresh local KRaft broker for this test session."""
    external = os.environ.get("ONEWINDOW_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    from onewindow.kafka_local import LocalKafka, free_port

    broker = LocalKafka(data_dir=tmp_path_factory.mktemp("kafka"), port=free_port(),
                        controller_port=free_port(), cache_dir=REPO_ROOT / ".cache")
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A unique topic prefix so tests sharing the broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def provisioned(kafka: str, topic_prefix: str):  # type: ignore[no-untyped-def]
    """All topics of the stack under this test's own prefix."""
    from onewindow.departments import load_registry
    from onewindow.provision import ensure_topics, plan
    from onewindow.topics import Topics

    topics = Topics(topic_prefix)
    registry = load_registry()
    ensure_topics(kafka, plan(topics, registry.codes, partitions=3))
    return topics


@pytest.fixture(scope="session")
def example_events_path() -> Path:
    return SHARED / "spec" / "examples" / "restaurant-case.jsonl"
