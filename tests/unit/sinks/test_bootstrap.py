"""The sink's composition root: build_sink builds every part once, on one engine, and the
unit of work it hands out commits a batch's rows and offsets together or not at all."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from onewindow.read_model.tables import Case, ConsumedOffset
from sinks.bootstrap import build_sink
from sinks.metrics import SinkMetrics
from sinks.migrations import current_revision, head_revision
from sinks.rows import Batch
from tests.unit.sinks.helpers import case_state


def test_build_sink_migrates_and_wires_every_part_to_one_engine(settings, topics) -> None:
    parts = build_sink(settings)
    try:
        assert current_revision(parts.engine) == head_revision()
        assert parts.uow.engine is parts.engine
        assert parts.topics == topics
        assert parts.ingestor.topic_names == list(topics.outputs())
        assert parts.ingestor.metrics is parts.metrics and parts.ingestor.rows is parts.rows
        assert parts.rows.protector is parts.protector
        assert parts.consumer_conf["bootstrap.servers"] == settings.kafka_bootstrap
        # offsets live in the read model, never in the consumer group
        assert parts.consumer_conf["enable.auto.commit"] is False
        assert "group.id" not in parts.consumer_conf
    finally:
        parts.engine.dispose()


def test_build_sink_takes_the_engine_and_metrics_it_is_given(engine, settings) -> None:
    metrics = SinkMetrics()
    parts = build_sink(settings, engine=engine, metrics=metrics, migrate=False)
    assert parts.engine is engine and parts.metrics is metrics
    assert parts.consumer("g").close() is None  # a consumer of the sink's config


def test_the_unit_of_work_commits_rows_and_offsets_together(engine, settings, topics,
                                                            monkeypatch) -> None:
    parts = build_sink(settings, engine=engine, migrate=False, commit_delay=0.01)
    batch = Batch()
    parts.ingestor.add(batch, topics.case_state, 0, 6,
                       parts.codec.encode_record("CaseState", case_state("C1", 1, [])))

    def crash(_seconds: float) -> None:
        raise RuntimeError("crash before COMMIT")

    monkeypatch.setattr("sinks.unit_of_work.time.sleep", crash)
    with pytest.raises(RuntimeError):
        parts.uow.write(batch)
    with engine.connect() as conn:
        assert conn.execute(select(Case)).all() == []
        assert conn.execute(select(ConsumedOffset)).all() == []
    assert parts.uow.stored_offsets([topics.case_state]) == {}

    monkeypatch.undo()
    result = parts.uow.write(batch)
    assert result.cases_changed == {"C1"}
    assert parts.uow.stored_offsets([topics.case_state]) == {(topics.case_state, 0): 7}
