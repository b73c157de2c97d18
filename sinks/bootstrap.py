"""The composition root of a sink process: every part built once, in one place.

``onewindow sink`` (:class:`~sinks.runner.SinkRunner`), ``onewindow rebuild``
(:func:`~sinks.rebuild.rebuild`) and the benchmarks call :func:`build_sink` and take the
parts from it; none of them builds an engine, a codec or a row mapping of its own::

    parts = build_sink(settings)                      # migrated to head
    runner = SinkRunner(parts, batch_max=2000)
    report = rebuild(build_sink(settings, migrate=False))

Tests hand in their own ``engine`` (a file per test) or ``metrics``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer
from sqlalchemy import Engine

from onewindow.codec import Codec, get_codec
from onewindow.config import Settings
from onewindow.read_model.engine import make_engine, wait_for_database
from onewindow.security.id_protection import IdProtector
from onewindow.security.kafka_auth import SINK, client_config
from onewindow.topics import Topics
from sinks.ingest import Ingestor
from sinks.metrics import SinkMetrics
from sinks.migrations import upgrade
from sinks.rows import RowMaker
from sinks.unit_of_work import UnitOfWork

__all__ = ["SinkParts", "build_sink", "consumer_config"]

log = logging.getLogger(__name__)


def consumer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """librdkafka settings of a sink consumer. Offsets live in the read model: the group's
    committed offsets are never used (the group id is given per consumer)."""
    conf: dict[str, Any] = {
        **client_config(settings, SINK),  # signed in as svc-sink, read_committed
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 50,
        "queued.max.messages.kbytes": 65536,
    }
    conf.update(extra)
    return conf


@dataclass(frozen=True)
class SinkParts:
    """The dependencies of a sink process, built by :func:`build_sink`."""

    settings: Settings
    engine: Engine
    topics: Topics
    codec: Codec
    protector: IdProtector
    rows: RowMaker
    metrics: SinkMetrics
    #: one consumed record into a batch's rows (shared by the live sink and the rebuild)
    ingestor: Ingestor
    #: a batch's rows and offsets in one transaction
    uow: UnitOfWork
    consumer_conf: dict[str, Any]

    def consumer(self, group: str) -> Consumer:
        """A new consumer over the output topics' cluster (``group.id`` is required by
        librdkafka; no offset is ever committed to it)."""
        return Consumer({**self.consumer_conf, "group.id": group})


def build_sink(settings: Settings, *, engine: Engine | None = None,
               metrics: SinkMetrics | None = None, migrate: bool = True,
               commit_delay: float = 0.0) -> SinkParts:
    """Build every part of a sink once.

    ``engine``: the read model (default: a writer engine on ``settings.database_url``, once
    that database accepts connections: ``wait_for_database``, with backoff, when migrating).
    ``metrics``: the Prometheus metrics (default: a fresh registry). ``migrate``: bring the
    read model to the newest Alembic revision now (the rebuild passes False: it drops and
    recreates the model itself). ``commit_delay``: test-only fault injection, seconds the
    unit of work sleeps inside the transaction before COMMIT.
    """
    # the key first: without one the process stops before it touches the database
    protector = IdProtector.from_settings(settings)
    if engine is None and migrate:
        # a database still starting (or down) is waited for, with backoff, not died of
        wait_for_database(settings.database_url, say=log.warning)
    engine = engine or make_engine(settings.database_url, writer=True)
    if migrate:
        upgrade(engine)
    topics = Topics(settings.topic_prefix)
    codec = get_codec()
    rows = RowMaker(codec, protector)
    metrics = metrics or SinkMetrics()
    return SinkParts(settings=settings, engine=engine, topics=topics, codec=codec,
                     protector=protector, rows=rows, metrics=metrics,
                     ingestor=Ingestor(topics, codec, rows, metrics),
                     uow=UnitOfWork(engine, commit_delay=commit_delay),
                     consumer_conf=consumer_config(settings))
