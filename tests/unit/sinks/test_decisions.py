"""The decision-time summary (sinks/decisions.py, migration 0004) on SQLite and PostgreSQL:
kept by the unit of work from scenario traffic folded by the case-state step, it equals
the summary computed at once from the final rows, and the one migration 0004 fills in a
model upgraded with its data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from onewindow.read_model.tables import TASK_DECISIONS, TASKS
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from sinks.decisions import refresh_all
from sinks.migrations import downgrade, upgrade
from tests.read_model_support import case_outputs, load_model


def _summary(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(map(tuple, conn.execute(select(TASK_DECISIONS)).all()))


def test_kept_batch_by_batch_equals_computed_at_once_and_by_the_migration(
        engine: Engine, topics, settings) -> None:
    events = [e for c in ScenarioGenerator(ScenarioConfig(seed=4)).cases(30) for e in c]
    load_model(engine, topics, case_outputs(events, topics), settings, batch=5, seed=9)
    kept = _summary(engine)
    with engine.connect() as conn:
        decided = conn.execute(select(func.count()).select_from(TASKS).where(
            TASKS.c.status.in_(("APPROVED", "REJECTED")))).scalar_one()
    assert len(kept) == decided > 20  # every decided task of the scenarios has events
    assert any(r[-1] is not None for r in kept)  # some paused (补正, 特别程序)

    with engine.begin() as conn:
        assert refresh_all(conn) == len(kept)
    assert _summary(engine) == kept

    downgrade(engine, "0003")  # the table goes; the rows it came from stay
    upgrade(engine)  # 0004 fills it from them
    assert _summary(engine) == kept
