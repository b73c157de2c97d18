"""Prometheus metrics of the sink (one registry per runner, no globals).

Freshness for ops: ``onewindow_read_model_latency_seconds`` is the time from the moment the
input event was published (its Kafka record timestamp, carried as ``source_timestamp``
through the stream app) to the commit of the read-model row it changed;
``onewindow_read_model_event_age_seconds`` the time from the event's ``occurred_at``
(interfaces.md's end-to-end latency, which includes the department system's own delay).

Like every process's page: build info and process metrics (``onewindow.observability.
instrument``), and the lag as ``onewindow_consumer_lag{group,topic,partition}`` (the one
lag metric of every consumer, ``onewindow.observability.lag.ConsumerLag``; the sink's
group is ``<prefix>onewindow-sink``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from onewindow.observability import instrument
from onewindow.observability.lag import ConsumerLag

__all__ = ["SinkMetrics"]

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        instrument(r)  # onewindow_build_info, process_*, python_info
        self.records = Counter("onewindow_sink_records_total",
                               "Output-topic records consumed by the sink, by result: accepted "
                               "(mapped to rows), stale (of those, a case state older than "
                               "the stored version), undecodable, tombstone, wrong_type, "
                               "unmappable (skipped, offset advanced)",
                               ["topic", "result"], registry=r)
        self.rows = Counter("onewindow_sink_rows_written_total",
                            "Rows upserted into the read model, by table", ["table"], registry=r)
        self.batches = Counter("onewindow_sink_batches_total", "Committed batches", registry=r)
        self.failures = Counter("onewindow_sink_batch_failures_total",
                                "Batches whose transaction failed (retried)", registry=r)
        self.batch_size = Histogram("onewindow_sink_batch_records",
                                    "Records per committed batch",
                                    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
                                    registry=r)
        self.commit_seconds = Histogram(
            "onewindow_sink_commit_seconds",
            "Time of one batch's SQL transaction (rows + offsets), begin to commit",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r)
        #: onewindow_consumer_lag{group,topic,partition}: records not yet in the read model
        #: (high watermark - the next offset stored with the rows)
        self.lag = ConsumerLag(r)
        self.latency = Histogram(
            "onewindow_read_model_latency_seconds",
            "From the input event's publication (Kafka record timestamp) to the commit "
            "of the read-model row it changed",
            ["topic"], buckets=LATENCY_BUCKETS, registry=r)
        self.event_age = Histogram(
            "onewindow_read_model_event_age_seconds",
            "From an event's occurred_at to the commit of its read-model row",
            ["topic"], buckets=LATENCY_BUCKETS, registry=r)
        self.last_commit = Gauge("onewindow_sink_last_commit_timestamp_seconds",
                                 "Unix time of the last committed batch", registry=r)

    def committed(self, n_records: int, seconds: float, committed_at: datetime,
                  rows: dict[str, int],
                  stamps: Iterable[tuple[str, datetime | None, datetime | None]]) -> None:
        """Observe one committed batch; ``stamps`` are (topic label, published, occurred_at)
        of the records that changed a row."""
        self.batches.inc()
        self.batch_size.observe(n_records)
        self.commit_seconds.observe(seconds)
        self.last_commit.set(committed_at.timestamp())
        for table, n in rows.items():
            if n:
                self.rows.labels(table).inc(n)
        for topic, published, occurred in stamps:
            if published is not None:
                self.latency.labels(topic).observe(
                    max(0.0, (committed_at - published).total_seconds()))
            if occurred is not None:
                self.event_age.labels(topic).observe(
                    max(0.0, (committed_at - occurred).total_seconds()))
