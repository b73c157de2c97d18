"""The counter app over a read model filled by the sink's own code (no Kafka), on each
database of ``database_url`` (tests/unit/conftest.py): the worked example, scenario cases
and one open case."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from counter.app import create_app
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.topics import Topics
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.read_model_support import case_outputs, link_records, load_model, read_jsonl
from tests.unit.counter.helpers import Clock


def _open_case(accepted: dict[str, Any]) -> list[dict[str, Any]]:
    """An open case: accepted, one task received (the scenario's cases all close)."""
    acc = dict(accepted, case_id="GZOPEN0001", event_id="open-1",
               tasks=[{"task_id": "OPEN-T1", "department": "scjgj", "name": "审查"}])
    upd = {"type": "TaskUpdated", "event_id": "open-2", "case_id": "GZOPEN0001",
           "department": "scjgj", "occurred_at": accepted["occurred_at"], "task_id": "OPEN-T1",
           "status": "IN_REVIEW", "officer": None, "note": None}
    return [acc, upd]


@pytest.fixture
def events(example_events_path: Path) -> list[dict[str, Any]]:
    scenario = [e for c in ScenarioGenerator(ScenarioConfig(seed=5)).cases(15) for e in c]
    example = read_jsonl(example_events_path)
    return example + scenario + _open_case(example[0])


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 4, 2, 0, tzinfo=UTC))


@pytest.fixture
def client(engine: Engine, topics: Topics, settings: Settings, events: list[dict[str, Any]],
           clock: Clock) -> Iterator[TestClient]:
    codec = get_codec()
    records = case_outputs(events, topics) + [
        (topics.material_links, codec.encode_record("MaterialLink", r))
        for r in link_records(events)]
    load_model(engine, topics, records, settings, batch=7)
    app = create_app(settings, engine=engine, clock=clock)
    with TestClient(app) as c:
        yield c
