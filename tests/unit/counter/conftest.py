"""The counter app over a read model filled by the sink's own code (no Kafka), on each
database of ``database_url`` (tests/unit/conftest.py): the worked example, scenario cases
and one open case.

``client`` is signed in with an API token of a user holding every staff role but
auditor (clerk, supervisor, ops); ``anon`` is the same app without credentials;
``user_client(roles)`` makes a client for a new user with other roles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from counter.app import create_app
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.read_model.engine import make_engine
from onewindow.staff import users
from onewindow.topics import Topics
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.read_model_support import case_outputs, link_records, load_model, read_jsonl
from tests.unit.counter.helpers import PASSWORD, Clock


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
def app(engine: Engine, topics: Topics, settings: Settings, events: list[dict[str, Any]],
        clock: Clock) -> FastAPI:
    codec = get_codec()
    records = case_outputs(events, topics) + [
        (topics.material_links, codec.encode_record("MaterialLink", r))
        for r in link_records(events)]
    load_model(engine, topics, records, settings, batch=7)
    return create_app(settings, engine=make_engine(settings.database_url), clock=clock)


UserClient = Callable[..., TestClient]


@pytest.fixture
def user_client(app: FastAPI, engine: Engine, clock: Clock) -> Iterator[UserClient]:
    """``user_client("clerk", name="c1")``: a client with an API token of a new user."""
    opened: list[TestClient] = []

    def make(*roles: str, name: str | None = None) -> TestClient:
        name = name or "-".join(roles) + f"-{len(opened)}"
        users.add_user(engine, name, list(roles), PASSWORD, clock.now)
        token = users.issue_token(engine, name, "test", clock.now)
        c = TestClient(app, headers={"Authorization": f"Bearer {token}"})
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def client(user_client: UserClient) -> TestClient:
    return user_client("clerk", "supervisor", "ops", name="staff")


@pytest.fixture
def anon(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c
