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

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from sinks.bootstrap import SinkParts
from sinks.rows import Batch
from sinks.unit_of_work import WriteResult

__all__ = ["SinkRunner"]

log = logging.getLogger(__name__)


class SinkRunner:
    """The live sink over the parts :func:`sinks.bootstrap.build_sink` built."""

    def __init__(self, parts: SinkParts, *, batch_max: int = 2000, linger: float = 0.02,
                 idle_wait: float = 0.5,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.parts = parts
        self.settings = parts.settings
        self.engine = parts.engine
        self.metrics = parts.metrics
        self.ingestor = parts.ingestor
        self.uow = parts.uow
        self.batch_max = batch_max
        self.linger = linger
        self.idle_wait = idle_wait
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
        partitions = self._partitions(consumer, stop)
        stored = self.uow.stored_offsets(self.ingestor.topic_names)
        assignment = []
        for t, p in partitions:
            off = stored.get((t, p))
            assignment.append(TopicPartition(t, p, OFFSET_BEGINNING if off is None else off))
            if off is not None:
                self.next_offsets[(t, p)] = off
        consumer.assign(assignment)
        log.info("sink assigned %d partitions, %d with stored offsets", len(partitions),
                 len(stored))

    # ------------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        consumer = self.parts.consumer(f"{self.settings.topic_prefix}onewindow-sink")
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
        result = self.uow.write(batch, self.clock())
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
