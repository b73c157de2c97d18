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

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from onewindow.backoff import Backoff
from onewindow.observability.health import ConsumerHealth
from sinks.bootstrap import SinkParts
from sinks.rows import Batch
from sinks.unit_of_work import WriteResult

__all__ = ["LAG_EVERY", "SinkRunner"]

#: Seconds between two measurements of the sink's lag (asked of the broker, not cached).
LAG_EVERY = 5.0

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
        #: the delays between attempts to reach the broker at start
        self.connect_backoff = Backoff(first=1.0, cap=30.0)
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.committed_records = 0
        #: `/healthz`, `/readyz` (sinks/commands.py serves them): stamped by the poll loop
        self.health = ConsumerHealth(stall=self.settings.stall_seconds, lag_every=LAG_EVERY)
        self._lag_at = 0.0
        #: the consumer's ``group.id`` (no offset is committed to it): the ``group`` label
        #: of its ``onewindow_consumer_lag``
        self.group = f"{self.settings.topic_prefix}onewindow-sink"

    # ------------------------------------------------------------------ start

    def _partitions(self, consumer: Consumer, stop: threading.Event) -> list[tuple[str, int]]:
        """Every partition of the four output topics, waiting until they exist. While the
        broker does not answer, it retries with backoff (1 s doubling to 30 s, one log
        line per attempt) until `stop`; it never dies of a broker that is not up yet."""
        names = self.ingestor.topic_names
        warned = False
        failures = 0
        while not stop.is_set():
            try:
                md = consumer.list_topics(timeout=5)
            except KafkaException as exc:
                failures += 1
                delay = self.connect_backoff.delay(failures)
                err = exc.args[0] if exc.args else exc
                log.warning("Kafka on %s does not answer (%s); retrying in %.3gs",
                            self.settings.kafka_bootstrap,
                            err.str() if isinstance(err, KafkaError) else err, delay)
                stop.wait(delay)
                continue
            failures = 0
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
        consumer = self.parts.consumer(self.group)
        health = self.health
        try:
            self._assign(consumer, stop)
            health.ready()
            while not stop.is_set():
                health.beat()
                batch = self._take(consumer)
                if batch is None:
                    self._update_lag(consumer)
                    continue
                health.taken(len(batch))
                if not self._commit(batch, stop):
                    break  # stopping while the database was failing: nothing committed
                health.finished(len(batch))
                health.progressed()
                self._update_lag(consumer)
        finally:
            health.stopping()
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

    def _update_lag(self, consumer: Consumer, every: float = LAG_EVERY,
                    timeout: float = 2.0) -> None:
        """Every ``every`` seconds, the lag of each assigned partition from its high
        watermark asked of the broker (librdkafka's cached one stays at its last value
        while the broker is away) and the next offset stored with the rows. A failed
        query ends the round (``timeout`` seconds at most) and is reported to the health;
        once the last good measurement is older than the stall limit the gauge is
        cleared, so a lag that cannot be read shows as missing, not frozen."""
        now = time.monotonic()
        if now - self._lag_at < every:
            return
        self._lag_at = now
        lags: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            try:
                lo, hi = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            except Exception as exc:  # noqa: BLE001 - lag is best effort; health says so
                log.debug("no watermarks for %s[%d]: %s", tp.topic, tp.partition, exc)
                self.health.lag_failed(f"{tp.topic}[{tp.partition}]: {exc}"[:200])
                if self.health.lag_stale():
                    self.metrics.lag.forget(self.group)
                return
            if hi is None or hi < 0:
                continue
            nxt = self.next_offsets.get((tp.topic, tp.partition), max(lo, 0))
            lags[(tp.topic, tp.partition)] = max(0, hi - nxt)
        self.metrics.lag.update(self.group, lags)
        self.health.lag_measured(sum(lags.values()))
