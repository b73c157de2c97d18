"""The case-state Faust app: one agent over every department topic, concurrency 1.

Thin shell: take a batch of raw records, hand it to `CaseProcessor` (decode, validate,
de-duplicate, fold: all pure rules), write each changed case once to the RocksDB table,
and queue the output records (`stream_apps.output`). Batches come from
`stream_apps.batching.take_batches` (Faust's `take_events`, growing with the backlog);
the `onewindow worker` command runs the step in a process of its own, which gets the next
batch while this one is written (`stream_apps.step_process`). An event is acked only once
its batch is written; before Faust commits acked offsets, a sensor flushes the output
producer, which also carries the table's changelog (`stream_apps.changelog`). So every
output and state change of a committed record is on the broker: outputs are at least
once, and the sinks upsert. An output refused for good dead-letters its input
``OUTPUT_FAILED`` (`stream_apps.output`) instead of stopping the worker. The same agent
reads the calendar-check topic: a check of a partition re-publishes the deadlines a
changed calendar moves (`stream_apps.calendar_checks`); the worker asks for one per
partition on start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from prometheus_client import generate_latest

from onewindow.calendar_source import CHINESECALENDAR_VERSION, CalendarFile, describe
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.observability import TEXT_CONTENT_TYPE
from onewindow.security.id_protection import IdProtector
from onewindow.security.kafka_auth import STREAM, producer_config
from onewindow.topics import Topics
from onewindow.uscc_exceptions import load_uscc_exceptions
from stream_apps import table_store
from stream_apps.batching import take_batches, waiting
from stream_apps.calendar_checks import (
    CalendarCheck,
    CalendarChecker,
    check_records,
    run_check,
    snapshot_of,
)
from stream_apps.case_processor import BatchResult, CaseProcessor
from stream_apps.changelog import new_table
from stream_apps.faust_base import new_app
from stream_apps.faust_context import TableAccess, records, still_current
from stream_apps.lag import measure_lag
from stream_apps.metrics import WorkerMetrics
from stream_apps.output import OutputProducer
from stream_apps.records import InRecord, OutRecord
from stream_apps.step_process import InlineStep, StepProcess, Submitted

log = logging.getLogger(__name__)

BATCH_MAX = 1000
BATCH_WITHIN = 0.05  # seconds: a lone event waits at most this long for company
#: Events waiting in the stream's queue from which a batch is left in the step while the
#: next one is taken (a backlog); with fewer, its outputs go out at once (latency).
PIPELINE_BACKLOG = BATCH_MAX // 4


def create_app(settings: Settings, *, app_id: str | None = None,
               worker_name: str = "worker", ids: IdProtector | None = None,
               step_process: bool = False) -> faust.App:
    """The case-state app. ``ids``: the keyed hash of ID numbers (default: from
    ``settings.id_hash_key``; the sink and the counter must use the same key).
    ``step_process``: run the step in a child process (`stream_apps.step_process`: the
    `onewindow worker` command does); it is forked here, so only from a process that has
    started no thread yet. Without it the step runs in the agent."""
    ids = ids or IdProtector.from_settings(settings)
    registry = load_registry(settings.departments_file)
    topics = Topics(settings.topic_prefix)
    metrics = WorkerMetrics()
    table_store.register_metrics(metrics.registry)
    # The input topics are co-partitioned with settings.partitions (onewindow.provision
    # creates them so and refuses a topic with another count; the table below has as
    # many): the partition count of WRONG_PARTITION.
    calendar_file = CalendarFile(settings.calendar_override_file)
    processor = CaseProcessor(codec=get_codec(), topics=topics,
                              departments=registry.codes, counters=registry.counter_codes,
                              calendar=calendar_file.calendar,
                              ids=ids, partitions=settings.partitions,
                              uscc_exceptions=load_uscc_exceptions(
                                  settings.uscc_exceptions_file))
    checker = CalendarChecker(processor, calendar_file)
    # forked before anything below starts a thread (the output producer's, Faust's)
    step = StepProcess(processor) if step_process else InlineStep(processor)
    app = new_app(settings, app_id=app_id or topics.case_state_app,
                  worker_name=worker_name, batch_max=BATCH_MAX, web_port=settings.worker_web_port)
    inputs = list(topics.inputs(registry.codes))
    checks_topic = topics.calendar_checks
    source = app.topic(*inputs, topics.calendar_checks, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw")

    def output_failed(rec: InRecord, why: str) -> OutRecord:
        """An output of ``rec`` refused for good: ``rec`` is dead-lettered OUTPUT_FAILED
        (stream_apps.output), and counted."""
        dead, tally = processor.output_failed(rec, why)
        # counted as applied already (its state advanced): only the dead letter here
        metrics.dead_lettered.labels(tally.department, tally.event_type, tally.reason).inc()
        return dead

    output = OutputProducer(settings.kafka_bootstrap, client_id=f"{app.conf.id}-output",
                            config=producer_config(settings, STREAM), on_failed=output_failed)
    output.guard_commits(app)
    # its changelog through the output producer (stream_apps.changelog)
    table = new_table(app, "case-fold", output, default=None, partitions=settings.partitions,
                      key_type=bytes, value_type=bytes)  # bytes: Faust's raw codec
    access = TableAccess(table)
    calendar = snapshot_of(processor.calendar)
    metrics.calendar.info({"digest": calendar.digest, "chinesecalendar": CHINESECALENDAR_VERSION})
    log.info("working-day %s", describe(calendar))

    def republish(chunk: BatchResult) -> None:
        """Queue the CaseState records a calendar check re-publishes, and count them."""
        output.send_batch(chunk.outputs)
        metrics.provisional.inc(chunk.provisional_states)
        metrics.deadlines_republished.inc(len(chunk.outputs))

    def checked(check: CalendarCheck, outcome: str) -> None:
        metrics.calendar_checks.labels(outcome).inc()
        metrics.calendar.info({"digest": check.current.digest,
                               "chinesecalendar": CHINESECALENDAR_VERSION})

    @app.task
    async def ask_for_calendar_checks() -> None:
        """On start, a check of every partition: the calendar may have changed while the
        worker was down (stream_apps.calendar_checks)."""
        output.send_batch(check_records(
            topics, settings.partitions, reason="start",
            digest=snapshot_of(processor.calendar).digest,
            requested_by=f"worker {worker_name}"))

    async def finish(batch: Submitted, stream: faust.StreamT[bytes]) -> None:
        """Write a batch's results (states, outputs, metrics), run its calendar checks,
        then ack its events."""
        result = await batch.result
        access.store(result.states)
        output.send_batch(result.outputs)
        metrics.count_batch(result)  # counted in place by the processor
        metrics.batch_size.observe(len(batch.recs))
        metrics.batch_seconds.observe(time.perf_counter() - batch.started)
        now = time.time()
        for rec in batch.recs:
            if rec.timestamp_ms:
                metrics.event_lag.observe(max(0.0, now - rec.timestamp_ms / 1000))
        for check in result.checks:  # after the batch's events: its states are stored
            await run_check(checker, check, access, republish,
                            lambda rec=check: still_current(app, rec), on_done=checked)
        for rec in batch.recs:
            await stream.ack(rec.ref)

    @app.agent(source, concurrency=1)
    async def fold_cases(stream: faust.StreamT[bytes]) -> None:
        # Batch N+1 goes to the step before batch N is written when a backlog waits
        # (stream_apps.step_process: the child folds while this loop writes, delivers and
        # acks); an event is acked once its batch is written.
        pending: Submitted | None = None
        async for batch in take_batches(stream, BATCH_MAX, BATCH_WITHIN, manual_acks=True):
            if not batch:  # a quiet window: finish what is in hand
                if pending is not None:
                    await finish(pending, stream)
                    pending = None
                continue
            recs = records(batch)
            checks = any(rec.topic == checks_topic for rec in recs)
            if pending is not None and (checks or pending.checks):
                await finish(pending, stream)
                pending = None
            submitted = step.submit(recs, access.load, after=pending)
            submitted.started, submitted.checks = time.perf_counter(), checks
            if pending is not None:
                await finish(pending, stream)
            pending = submitted
            if checks or waiting(stream) < PIPELINE_BACKLOG:
                await finish(pending, stream)  # no backlog: its outputs go out now
                pending = None

    @app.timer(15.0)
    async def measure_table() -> None:
        metrics.table_keys.set(await asyncio.to_thread(access.count_keys))

    @app.timer(10.0)
    async def measure_consumer_lag() -> None:
        await measure_lag(app, metrics.lag, inputs)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(metrics.registry),
                         headers={"Content-Type": TEXT_CONTENT_TYPE})

    return app
