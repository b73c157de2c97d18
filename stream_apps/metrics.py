"""Prometheus metrics of the stream workers (one registry per app, no globals)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from onewindow.observability import instrument
from onewindow.observability.lag import ConsumerLag
from stream_apps.case_processor import (
    APPLIED,
    DEAD_LETTERED,
    DUPLICATE,
    BatchResult,
    OutcomeKey,
    Tally,
)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        instrument(r)  # onewindow_build_info, process_*, python_info
        self.lag = ConsumerLag(r)  # onewindow_consumer_lag{group,topic,partition}
        labels = ["department", "type"]
        self.consumed = Counter("onewindow_events_consumed_total",
                                "Input records consumed", labels, registry=r)
        self.applied = Counter("onewindow_events_applied_total",
                               "Events applied to a case", labels, registry=r)
        self.duplicates = Counter("onewindow_events_duplicates_total",
                                  "Events ignored as duplicates (same event_id, same content)",
                                  labels, registry=r)
        self.dead_lettered = Counter("onewindow_events_dead_lettered_total",
                                     "Records written to the dead-letter topic",
                                     [*labels, "reason"], registry=r)
        self.out_of_role = Counter(
            "onewindow_task_updates_out_of_role_total",
            "TaskUpdated events applied from another department than the one their task "
            "belongs to (domain.md section 3: they do not change the task), by sender",
            ["department"], registry=r)
        self.provisional = Counter(
            "onewindow_deadlines_provisional_total",
            "Case states emitted whose deadline consulted a date outside every known holiday "
            "schedule (due_provisional: Monday to Friday assumed)", registry=r)
        # the batches of a stream worker, both workers alike (the materials worker's steps
        # are route and index): this worker's one step, ``step="fold"``
        self.batch_seconds = Histogram(
            "onewindow_stream_batch_processing_seconds",
            "Time to process one batch of input records, by step (fold: decode, validate, "
            "fold, encode)", ["step"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r).labels("fold")
        self.batch_size = Histogram("onewindow_stream_batch_records",
                                    "Input records per processed batch, by step", ["step"],
                                    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
                                    registry=r).labels("fold")
        self.table_keys = Gauge("onewindow_table_keys",
                                "Cases held in this worker's state table partitions",
                                registry=r)
        self.uscc_exceptions = Counter(
            "onewindow_uscc_exceptions_accepted_total",
            "Events applied whose USCC fails its GB 32100 check character but is on the "
            "operator's list of known exceptions (domain.md section 2), by sender",
            ["department"], registry=r)
        self.calendar = Info(
            "onewindow_calendar",
            "The working-day calendar this worker computes deadlines with: the digest of "
            "its answers, the chinesecalendar version (stream_apps.calendar_checks)",
            registry=r)
        self.calendar_checks = Counter(
            "onewindow_calendar_checks_total",
            "Calendar checks of a table partition, by outcome: unchanged, recomputed (the "
            "calendar had changed), abandoned (the partition moved mid-check)",
            ["outcome"], registry=r)
        self.deadlines_republished = Counter(
            "onewindow_deadlines_republished_total",
            "Case states re-published by calendar checks: open cases whose deadline the "
            "new calendar moved", registry=r)
        self.event_lag = Histogram(
            "onewindow_stream_event_age_seconds",
            "Age of an input record (now - Kafka record timestamp) when the worker applied it",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r)

    def count_batch(self, result: BatchResult) -> None:
        """A processed batch: its outcomes as counted in place (``BatchResult.counts``),
        one increment per kind of outcome, not per record."""
        self.count_outcomes(result.counts, result.provisional_states)

    def count(self, tallies: Iterable[Tally], provisional_states: int = 0) -> None:
        """Records one by one (``BatchResult.tallies``)."""
        counts: dict[OutcomeKey, int] = {}
        for t in tallies:
            key = (t.department, t.event_type, t.result, t.reason, t.out_of_role,
                   t.uscc_exception)
            counts[key] = counts.get(key, 0) + 1
        self.count_outcomes(counts, provisional_states)

    def count_outcomes(self, counts: Mapping[OutcomeKey, int],
                       provisional_states: int = 0) -> None:
        """``counts``: records per ``(department, type, result, reason, out_of_role,
        uscc_exception)``."""
        self.provisional.inc(provisional_states)
        for (department, etype, result, reason, out_of_role, uscc), n in counts.items():
            self.consumed.labels(department, etype).inc(n)
            if result == APPLIED:
                self.applied.labels(department, etype).inc(n)
                if out_of_role:
                    self.out_of_role.labels(department).inc(n)
                if uscc:
                    self.uscc_exceptions.labels(department).inc(n)
            elif result == DUPLICATE:
                self.duplicates.labels(department, etype).inc(n)
            elif result == DEAD_LETTERED:
                self.dead_lettered.labels(department, etype, reason or "").inc(n)
