"""``onewindow rebuild``: recreate the read model from the output topics.

1. Drop the model (Alembic downgrade to base) and create it again (upgrade to head).
2. Note the end offsets (high watermarks) of every partition of the four output topics.
3. Read every partition from its beginning up to that end with a plain consumer, and
   write with the same parts as the live sink (:func:`sinks.bootstrap.build_sink`: the
   :class:`~sinks.ingest.Ingestor` and the :class:`~sinks.unit_of_work.UnitOfWork`),
   offsets included, so a sink started afterwards continues exactly where the rebuild
   stopped.

Stop the sink first: the rebuild is the database's only writer while it runs. The
case-state topic is compacted, so the rebuild reads each case's newest states only;
the model is the same because the sink keeps the highest version anyway.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TextIO

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from sqlalchemy import Engine, func, select

from onewindow.errors import OneWindowError
from onewindow.read_model.tables import metadata
from sinks.bootstrap import SinkParts
from sinks.migrations import downgrade, upgrade
from sinks.rows import Batch

__all__ = ["RebuildReport", "rebuild", "table_counts"]


@dataclass
class RebuildReport:
    records: int = 0
    seconds: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)
    results: dict[str, int] = field(default_factory=dict)


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables}


def rebuild(parts: SinkParts, *, batch_max: int = 5000, timeout: float = 3600.0,
            out: TextIO | None = None, stop: threading.Event | None = None) -> RebuildReport:
    """Recreate the read model of ``parts`` (built with ``migrate=False``: the model is
    dropped and created here) from the output topics."""
    engine, ingestor = parts.engine, parts.ingestor
    stop = stop or threading.Event()
    t0 = time.perf_counter()
    consumer = parts.consumer(
        f"{parts.settings.topic_prefix}onewindow-sink-rebuild-{uuid.uuid4().hex}")
    report = RebuildReport()
    try:
        md = consumer.list_topics(timeout=10)
        ends: dict[tuple[str, int], int] = {}
        for name in ingestor.topic_names:
            if name not in md.topics or md.topics[name].error is not None:
                raise OneWindowError(f"output topic {name} does not exist "
                                     "(run `onewindow provision`)")
            for p in md.topics[name].partitions:
                lo, hi = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                if hi > lo:
                    ends[(name, p)] = hi

        downgrade(engine)
        upgrade(engine)
        if out is not None:
            print(f"read model at {engine.url.render_as_string(hide_password=True)} "  # noqa: T201
                  f"recreated; reading {sum(ends.values())} offsets of "
                  f"{len(ends)} partitions", file=out, flush=True)

        pending = dict(ends)
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in pending])
        deadline = time.monotonic() + timeout
        while pending and not stop.is_set():
            if time.monotonic() > deadline:
                raise OneWindowError(f"rebuild timed out with {len(pending)} partitions left")
            msgs = consumer.consume(batch_max, 0.5)
            batch = Batch()
            for msg in msgs:
                if msg.error() is not None:
                    continue
                key = (msg.topic(), msg.partition())
                end = pending.get(key)
                if end is None or msg.offset() >= end:
                    continue  # written after the rebuild started: the live sink's job
                result = ingestor.add(batch, msg.topic(), msg.partition(), msg.offset(),
                                      msg.value())
                report.results[result] = report.results.get(result, 0) + 1
            if batch.records:
                parts.uow.write(batch)
                report.records += batch.records
            # done when the position reached the end (compaction or control records may
            # leave no record at end - 1)
            positions = consumer.position([TopicPartition(t, p) for t, p in pending])
            for tp in positions:
                if tp.offset >= 0 and tp.offset >= pending[(tp.topic, tp.partition)]:
                    del pending[(tp.topic, tp.partition)]
                    consumer.pause([TopicPartition(tp.topic, tp.partition)])
    finally:
        consumer.close()
    report.seconds = time.perf_counter() - t0
    report.tables = table_counts(engine)
    return report
