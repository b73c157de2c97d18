"""Issue 13 at a smaller scale: "20 cases with 10,000 tasks each made /api/board 18.6 MB".
Cases with thousands of tasks in the read model (as a worker wrote them before the fold
bounded a case, docs/state-rules.md "Bounds per case"): the board counts their tasks and
lists none, so its size is a bound per case whatever the tasks; one case lists at most
CASE_TASKS and a list of cases LIST_TASKS each, with the total and the counts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from counter.app import create_app
from counter.present import CASE_TASKS, LIST_TASKS
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.domain import receipt
from onewindow.read_model.engine import make_engine
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics
from tests.read_model_support import case_outputs, load_model
from tests.unit.counter.helpers import Clock
from tests.unit.domain.helpers import accepted

CASES = 8
TASKS = 2_000  # each: CASE_TASKS + 1,400 over what one case shows
STATUSES = ["RECEIVED", "IN_REVIEW", "APPROVED", "REJECTED", "SUPPLEMENT_REQUESTED"]
#: what one board item may take, whatever its tasks: its fields with ordinary names
ITEM_BYTES = 1_500


def _big_states(topics: Topics) -> list[tuple[str, bytes]]:
    codec = get_codec()
    ((_topic, value),) = [(t, v) for t, v in case_outputs([accepted(case_id="BIG-0")], topics)
                          if t == topics.case_state]
    state = codec.decode_record(value, "CaseState")
    out = []
    for i in range(CASES):
        tasks = [{"task_id": f"T{k:05d}", "department": "scjgj", "name": f"审查 {k}",
                  "status": STATUSES[k % len(STATUSES)],
                  "updated_at": datetime(2025, 10, 1, 2, 0, tzinfo=UTC)}
                 for k in range(TASKS)]
        out.append((topics.case_state, codec.encode_record(
            "CaseState", dict(state, case_id=f"BIG-{i}", tasks=tasks, version=TASKS))))
    return out


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 9, 30, 6, 0, tzinfo=UTC))  # the day they were accepted


@pytest.fixture
def app(engine: Engine, topics: Topics, settings: Settings, clock: Clock) -> FastAPI:
    load_model(engine, topics, _big_states(topics), settings, batch=4)
    return create_app(settings, engine=make_engine(settings.database_url), clock=clock)


def _counts() -> dict[str, int]:
    return dict(Counter(STATUSES[k % len(STATUSES)] for k in range(TASKS)))


def test_the_board_counts_tasks_and_its_size_is_bounded_per_case(client) -> None:
    r = client.get("/api/board")
    assert r.status_code == 200
    body = r.json()
    assert sorted(c["case_id"] for c in body["items"]) == [f"BIG-{i}" for i in range(CASES)]
    for item in body["items"]:
        assert "tasks" not in item
        assert item["tasks_total"] == TASKS and item["task_counts"] == _counts()
    # every task listed would be ~2.5 MB; counted, a few KB
    assert len(r.content) <= CASES * ITEM_BYTES + 1_000, len(r.content)


def test_one_case_lists_its_first_tasks_and_says_how_many_it_has(client, anon,
                                                                 settings) -> None:
    card = client.get("/api/cases/BIG-3/card").json()["case"]
    case = client.get("/api/cases/BIG-3").json()
    for view in (card, case):
        assert [t["task_id"] for t in view["tasks"]] == [f"T{k:05d}" for k in range(CASE_TASKS)]
        assert view["tasks_total"] == TASKS and view["task_counts"] == _counts()
    code = receipt.query_code(IdProtector.from_settings(settings).digest, "BIG-3")
    lookup = anon.post("/api/lookup", json={"case_id": "BIG-3", "query_code": code})
    assert lookup.status_code == 200 and len(lookup.json()["tasks"]) == CASE_TASKS
    assert client.get("/api/cases/BIG-3/receipt").status_code == 200


def test_lists_of_cases_list_a_few_tasks_each(client) -> None:
    page = client.get("/api/cases", params={"limit": 50}).json()
    assert len(page["items"]) == CASES
    for item in page["items"]:
        assert len(item["tasks"]) == LIST_TASKS
        assert item["tasks_total"] == TASKS and item["task_counts"] == _counts()
    found = client.post("/api/search", json={"q": "BIG-5"}).json()["items"]
    assert [len(c["tasks"]) for c in found] == [LIST_TASKS]
    assert found[0]["tasks_total"] == TASKS

