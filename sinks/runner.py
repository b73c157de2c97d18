"""The sink: one confluent-kafka consumer over the four output topics into the read model.

Exactly once into SQL, without Kafka's group offsets:

1. On start the sink reads ``consumed_offsets`` from the database and assigns every
   partition of the four topics itself, starting at the stored next offset (from the
   beginning where none is stored). Kafka's committed group offsets are never used.
2. It takes a batch (up to ``batch_max`` records: the first record waits up to
   ``idle_wait``, then whatever arrives within ``linger`` joins it), turns it into rows,
   and writes rows and the batch's next offsets in ONE transaction.
3. A crash before the commit leaves neither rows nor offsets: the restarted sink reads
   the same records again. A crash after it leaves both: it continues after them. The
   upserts are idempotent besides (first copy wins, highest version wins), so even a
   record delivered twice on the topic, or read by a zombie sink, changes nothing.

SIGTERM/SIGINT set ``stop``: the current batch is finished and committed, then the
consumer closes. One sink process writes a database (single writer: that also makes the
cross-topic ``materials.avoidable`` update race-free).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from sqlalchemy import Engine

from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.read_model.engine import make_engine
from onewindow.read_model.privacy import IdProtector
from onewindow.topics import Topics
from sinks.ingest import Ingestor
from sinks.metrics import SinkMetrics
from sinks.rows import Batch, RowMaker
from sinks.unit_of_work import WriteResult, load_offsets, write_batch

__all__ = ["SinkRunner", "consumer_config"]

log = logging.getLogger(__name__)


def consumer_config(settings: Settings, group: str, **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group,  # required by librdkafka; offsets are never committed to it
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 50,
        "queued.max.messages.kbytes": 65536,
    }
    conf.update(extra)
    return conf


class SinkRunner:
    def __init__(self, settings: Settings, *, engine: Engine | None = None,
                 metrics: SinkMetrics | None = None, batch_max: int = 2000,
                 linger: float = 0.02, idle_wait: float = 0.5, commit_delay: float = 0.0,
                 migrate: bool = True,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url, writer=True)
        self.metrics = metrics or SinkMetrics()
        self.topics = Topics(settings.topic_prefix)
        protector = IdProtector.from_settings(settings)
        if protector.is_dev_key:
            log.warning("ONEWINDOW_ID_HASH_KEY is the development default: set a secret key "
                        "in production")
        codec = get_codec()
        self.ingestor = Ingestor(self.topics, codec, RowMaker(codec, protector), self.metrics)
        self.batch_max = batch_max
        self.linger = linger
        self.idle_wait = idle_wait
        self.commit_delay = commit_delay  # test-only fault injection: sleep before COMMIT
        self.migrate = migrate
        self.clock = clock
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.committed_records = 0
        self._lag_at = 0.0

    # ------------------------------------------------------------------ start

    def _partitions(self, consumer: Consumer, stop: threading.Event) -> list[tuple[str, int]]:
        """Every partition of the four output topics, waiting until they exist."""
        names = self.ingestor.topic_names
        warned = False
        while not stop.is_set():
            md = consumer.list_topics(timeout=10)
            missing = [t for t in names if t not in md.topics or md.topics[t].error is not None
                       or not md.topics[t].partitions]
            if not missing:
                return [(t, p) for t in names for p in sorted(md.topics[t].partitions)]
            if not warned:
                log.warning("waiting for output topics %s (run `onewindow provision`)", missing)
                warned = True
            stop.wait(1.0)
        return []

    def _assign(self, consumer: Consumer, stop: threading.Event) -> None:
        parts = self._partitions(consumer, stop)
        with self.engine.connect() as conn:
            stored = load_offsets(conn, self.ingestor.topic_names)
        assignment = []
        for t, p in parts:
            off = stored.get((t, p))
            assignment.append(TopicPartition(t, p, OFFSET_BEGINNING if off is None else off))
            if off is not None:
                self.next_offsets[(t, p)] = off
        consumer.assign(assignment)
        log.info("sink assigned %d partitions, %d with stored offsets", len(parts), len(stored))

    # ------------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        if self.migrate:
            from sinks.migrations import upgrade

            upgrade(self.engine)
        group = f"{self.settings.topic_prefix}onewindow-sink"
        consumer = Consumer(consumer_config(self.settings, group))
        try:
            self._assign(consumer, stop)
            while not stop.is_set():
                batch = self._take(consumer)
                if batch is None:
                    self._update_lag(consumer)
                    continue
                if not self._commit(batch, stop):
                    break  # stopping while the database was failing: nothing committed
                self._update_lag(consumer)
        finally:
            consumer.close()

    def _take(self, consumer: Consumer) -> Batch | None:
        first = consumer.poll(self.idle_wait)
        if first is None:
            return None
        msgs = [first]
        if self.batch_max > 1:
            msgs += consumer.consume(self.batch_max - 1, self.linger)
        batch = Batch()
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", err)
                continue
            self.ingestor.add(batch, msg.topic(), msg.partition(), msg.offset(), msg.value(),
                              msg.timestamp()[1] if msg.timestamp()[0] else None)
        return batch if batch.records else None

    def write(self, batch: Batch) -> tuple[WriteResult, datetime, float]:
        """One transaction: rows + offsets. Returns the result, commit time and duration."""
        t0 = time.perf_counter()
        now = self.clock()
        with self.engine.begin() as conn:
            result = write_batch(conn, batch, now)
            if self.commit_delay:
                time.sleep(self.commit_delay)
        return result, self.clock(), time.perf_counter() - t0

    def _commit(self, batch: Batch, stop: threading.Event) -> bool:
        delay = 0.5
        while True:
            try:
                result, committed_at, seconds = self.write(batch)
                break
            except Exception:  # noqa: BLE001 - retry the same (idempotent) batch
                self.metrics.failures.inc()
                log.exception("writing a batch of %d records failed; retrying in %.1fs",
                              len(batch), delay)
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, 10.0)
        self.next_offsets.update(batch.offsets)
        self.committed_records += len(batch)
        stale = 0
        stamps = []
        for label, published, occurred, case_id in batch.stamps:
            if case_id is not None and case_id not in result.cases_changed:
                stale += 1
                continue
            stamps.append((label, published, occurred))
        if result.cases_stale:
            self.metrics.records.labels("case-state", "stale").inc(result.cases_stale)
        self.metrics.committed(len(batch), seconds, committed_at, result.rows, stamps)
        return True

    def _update_lag(self, consumer: Consumer, every: float = 1.0) -> None:
        now = time.monotonic()
        if now - self._lag_at < every:
            return
        self._lag_at = now
        for tp in consumer.assignment():
            try:
                lo, hi = consumer.get_watermark_offsets(tp, cached=True)
            except Exception as exc:  # noqa: BLE001 - lag is best effort
                log.debug("no watermarks for %s[%d]: %s", tp.topic, tp.partition, exc)
                continue
            if hi is None or hi < 0:
                continue
            nxt = self.next_offsets.get((tp.topic, tp.partition), max(lo, 0))
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, hi - nxt))
