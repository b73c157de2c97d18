"""``onewindow rebuild``: recreate the read model from the output topics.

1. Drop the model (Alembic downgrade to base) and create it again (upgrade to head).
2. Note the end offsets (high watermarks) of every partition of the four output topics.
3. Read every partition from its beginning up to that end with a plain consumer, in
   chunks (``batch_max`` records, 50,000 by default), and load them in bulk
   (:mod:`sinks.bulk`): each chunk reduced per key in memory with the live sink's own
   row mapping (:func:`sinks.bootstrap.build_sink`'s :class:`~sinks.ingest.Ingestor`),
   written in one transaction with the semantics of the live sink's unit of work, the
   secondary indexes built after the load. The last transaction stores the offsets, so
   a sink started afterwards continues exactly where the rebuild stopped. With ``jobs``
   above 1, that many processes load a group of partitions each (the row mapping, most
   of the CPU, on as many cores).

Stop the sink first: the rebuild is the database's only writer while it runs. The
case-state topic is compacted, so the rebuild reads each case's newest states only;
the model is the same because the sink keeps the highest version anyway.

Before it drops anything it waits, at most ``wait`` seconds, for the broker to answer
(``onewindow.broker_wait``, as `onewindow provision` does): a broker that never answers,
or stops answering before the end offsets are known, is
:class:`~onewindow.broker_wait.BrokerUnreachable` (exit status 1 and one line on the
command line), and the model is left as it was.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from sqlalchemy import Engine, func, select

from onewindow.broker_wait import BrokerUnreachable, wait_for_broker
from onewindow.config import Settings
from onewindow.errors import OneWindowError
from onewindow.read_model.engine import shown_url
from onewindow.read_model.tables import metadata
from onewindow.security.kafka_auth import SINK, producer_config
from sinks.bootstrap import SinkParts, build_sink
from sinks.bulk import BulkLoader, CaseStateKeys, ChunkReducer, restore_indexes
from sinks.migrations import current_revision, downgrade, head_revision, upgrade
from sinks.rows import Batch

__all__ = ["CHUNK", "RebuildReport", "rebuild", "table_counts"]

#: records per chunk (one transaction) by default: bounded memory, few transactions
CHUNK = 50_000
#: most records one ``consume`` call returns
CONSUME_MAX = 10_000
#: how long a loading process waits for SQLite's write lock (another one's chunk)
LOCK_WAIT_MS = 600_000


@dataclass
class RebuildReport:
    records: int = 0
    seconds: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)
    results: dict[str, int] = field(default_factory=dict)
    #: seconds per step of the load: prepare, read_map (reading, decoding, reducing,
    #: mapping), write (the writer thread, overlapping read_map), wait_write (reading
    #: waiting for the writer), finish (indexes, avoidable flags, offsets)
    phases: dict[str, float] = field(default_factory=dict)


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables}


def rebuild(parts: SinkParts, *, batch_max: int = CHUNK, timeout: float = 3600.0,
            out: TextIO | None = None, stop: threading.Event | None = None,
            wait: float = 30.0, say: Callable[[str], None] | None = None,
            jobs: int = 1) -> RebuildReport:
    """Recreate the read model of ``parts`` (built with ``migrate=False``: the model is
    dropped and created here) from the output topics, in chunks of about ``batch_max``
    records (one transaction each), by ``jobs`` loading processes (1: this one). A
    ``stop`` ends the reading after the chunk in hand and finishes what was read.

    First waits up to ``wait`` seconds for the broker (each failed attempt told through
    ``say`` in one line); raises :class:`BrokerUnreachable` when it does not answer, or
    stops answering before the end offsets are known, and ``OneWindowError`` when an
    output topic is missing: in both cases before the model is dropped."""
    engine = parts.engine
    stop = stop or threading.Event()
    t0 = time.perf_counter()
    report = RebuildReport()
    if not wait_for_broker(producer_config(parts.settings, SINK), timeout=wait, say=say,
                           stop=stop):
        return report  # stopped while waiting: nothing dropped, nothing read
    consumer = parts.consumer(
        f"{parts.settings.topic_prefix}onewindow-sink-rebuild-{uuid.uuid4().hex}")
    try:
        ends = _end_offsets(parts, consumer)

        _restore_indexes(engine)
        downgrade(engine)
        upgrade(engine)
        if out is not None:
            print(f"read model at {shown_url(engine.url)} "  # noqa: T201
                  f"recreated; reading {sum(ends.values())} offsets of "
                  f"{len(ends)} partitions", file=out, flush=True)
        _load(parts, consumer, ends, report, chunk=batch_max,
              deadline=time.monotonic() + timeout, stop=stop, jobs=jobs)
    finally:
        consumer.close()
    report.seconds = time.perf_counter() - t0
    report.tables = table_counts(engine)
    return report


def _restore_indexes(engine: Engine) -> None:
    """A rebuild stopped inside its load leaves the secondary indexes dropped; the
    migrations' downgrade drops them by name, so they are created again first."""
    if current_revision(engine) is not None and current_revision(engine) == head_revision():
        with engine.begin() as conn:
            restore_indexes(conn)


def _load(parts: SinkParts, consumer: Consumer, ends: dict[tuple[str, int], int],
          report: RebuildReport, *, chunk: int, deadline: float, stop: threading.Event,
          jobs: int = 1) -> None:
    """Drop the secondary indexes, load every partition up to its end offset (in this
    process, or in ``jobs`` processes each loading a group of partitions:
    :func:`_load_group`), then the indexes, the avoidable flags and the offsets in a
    last transaction."""
    phases = report.phases
    with parts.engine.connect() as conn, _timed(phases, "prepare"), conn.begin():
        BulkLoader(conn).prepare()
    if jobs <= 1 or len(ends) <= 1:
        offsets = _load_partitions(parts, consumer, ends, report, chunk=chunk,
                                   deadline=deadline, stop=stop)
    else:
        offsets = _load_in_processes(parts, ends, report, chunk=chunk, deadline=deadline,
                                     stop=stop, jobs=jobs)
    with parts.engine.connect() as conn, _timed(phases, "finish"), conn.begin():
        BulkLoader(conn).finish(offsets, datetime.now(UTC))


def _load_partitions(parts: SinkParts, consumer: Consumer, ends: dict[tuple[str, int], int],
                     report: RebuildReport, *, chunk: int, deadline: float,
                     stop: Any) -> dict[tuple[str, int], int]:
    """Read the partitions of ``ends`` from their beginning up to their end offsets, in
    chunks of about ``chunk`` records, each reduced (:class:`~sinks.bulk.ChunkReducer`)
    and written in one transaction (:class:`~sinks.bulk.BulkLoader.write`) by a writer
    thread while the next chunk is read (the database's own work, SQLite's inside the
    driver or PostgreSQL's server, overlaps the reading; at most two chunks in memory).
    A stop ends the reading after the chunk in hand. Returns the next offset of every
    partition read."""
    pending = dict(ends)
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in pending])
    keys = CaseStateKeys(parts.codec)
    offsets: dict[tuple[str, int], int] = {}
    phases = report.phases
    with parts.engine.connect() as conn, ThreadPoolExecutor(
            1, thread_name_prefix="rebuild-writer") as writer:
        if conn.dialect.name == "sqlite":
            # several loading processes take turns at SQLite's one writer lock (on the
            # driver's connection: no SQLAlchemy transaction begins for it)
            conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
                f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
        loader = BulkLoader(conn)

        def write(batch: Batch) -> None:
            with _timed(phases, "write"), conn.begin():
                loader.write(batch, datetime.now(UTC))

        writing: Future[None] | None = None
        while pending and not stop.is_set():
            with _timed(phases, "read_map"):
                reducer = ChunkReducer(parts.ingestor, keys)
                _read_chunk(consumer, pending, reducer, chunk=chunk, deadline=deadline,
                            stop=stop)
                batch = reducer.finish()
            for result, n in reducer.results.items():
                report.results[result] = report.results.get(result, 0) + n
            if not batch.records:
                continue
            if writing is not None:
                with _timed(phases, "wait_write"):
                    writing.result()  # the previous chunk first (its error, if any, here)
            writing = writer.submit(write, batch)
            report.records += batch.records
            for key, nxt in batch.offsets.items():
                offsets[key] = max(offsets.get(key, 0), nxt)
        if writing is not None:
            with _timed(phases, "wait_write"):
                writing.result()
    return offsets


# --------------------------------------------------------------------------- processes

#: the stop of a loading process (set by the parent's stop: :func:`_init_process`)
_PROCESS_STOP: Any = None


def _groups(ends: dict[tuple[str, int], int], jobs: int) -> list[dict[tuple[str, int], int]]:
    """Partition ``p`` of every topic to group ``p % jobs``: a case's records (keyed by
    ``case_id``, so on one partition number of each topic) stay in one group."""
    groups: list[dict[tuple[str, int], int]] = [{} for _ in range(jobs)]
    for (topic, partition), end in sorted(ends.items()):
        groups[partition % jobs][(topic, partition)] = end
    return [g for g in groups if g]


def _load_in_processes(parts: SinkParts, ends: dict[tuple[str, int], int],
                       report: RebuildReport, *, chunk: int, deadline: float,
                       stop: threading.Event, jobs: int) -> dict[tuple[str, int], int]:
    """``jobs`` fresh processes (``spawn``), each loading one group of partitions
    (:func:`_groups`) with its own consumer and connection: the row mapping, which takes
    most of a rebuild's CPU, on as many cores. Their rows never share a key but by
    accident (a case, its timeline and its tasks are in one group), so the writers do not
    wait for each other on PostgreSQL and take turns on SQLite. The parent's ``stop`` is
    passed on; an error of any process is raised here (the load then ends unfinished)."""
    context = multiprocessing.get_context("spawn")
    process_stop = context.Event()
    offsets: dict[tuple[str, int], int] = {}
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_process,
                             initargs=(process_stop,)) as pool:
        submitted = [pool.submit(_load_group, parts.settings, group, chunk,
                                 deadline - time.monotonic())
                     for group in _groups(ends, jobs)]
        pending = set(submitted)
        while pending:
            if stop.is_set():
                process_stop.set()
            done, pending = futures.wait(pending, timeout=0.5,
                                         return_when=futures.FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    process_stop.set()
                    raise future.exception()  # type: ignore[misc]
        for future in submitted:
            part = future.result()
            offsets.update(part["offsets"])
            report.records += part["records"]
            for k, v in part["results"].items():
                report.results[k] = report.results.get(k, 0) + v
            for k, v in part["phases"].items():  # the slowest process's
                report.phases[k] = max(report.phases.get(k, 0.0), v)
    return offsets


def _init_process(process_stop: Any) -> None:
    global _PROCESS_STOP  # noqa: PLW0603 - one per loading process, set once at its start
    _PROCESS_STOP = process_stop


def _load_group(settings: Settings, ends: dict[tuple[str, int], int], chunk: int,
                seconds: float) -> dict[str, Any]:
    """One loading process: its own sink parts (the same composition root), consumer and
    connection; returns its offsets, record count, results and steps."""
    parts = build_sink(settings, migrate=False)
    consumer = parts.consumer(
        f"{settings.topic_prefix}onewindow-sink-rebuild-{uuid.uuid4().hex}")
    report = RebuildReport()
    try:
        offsets = _load_partitions(parts, consumer, ends, report, chunk=chunk,
                                   deadline=time.monotonic() + seconds,
                                   stop=_PROCESS_STOP or threading.Event())
    finally:
        consumer.close()
        parts.engine.dispose()
    return {"offsets": offsets, "records": report.records, "results": report.results,
            "phases": report.phases}


def _read_chunk(consumer: Consumer, pending: dict[tuple[str, int], int],
                reducer: ChunkReducer, *, chunk: int, deadline: float,
                stop: threading.Event) -> None:
    """About ``chunk`` records into ``reducer``, in ``consume`` calls of up to
    :data:`CONSUME_MAX`; a partition whose position reached its end offset leaves
    ``pending`` (and is paused)."""
    read = 0
    while pending and read < chunk and not stop.is_set():
        if time.monotonic() > deadline:
            raise OneWindowError(f"rebuild timed out with {len(pending)} partitions left")
        for msg in consumer.consume(min(CONSUME_MAX, chunk - read), 0.5):
            if msg.error() is not None:
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            end = pending.get((topic, partition))
            if end is None or offset >= end:
                continue  # written after the rebuild started: the live sink's job
            reducer.add(topic, partition, offset, msg.value())
            read += 1
        # done when the position reached the end (compaction or control records may
        # leave no record at end - 1)
        for tp in consumer.position([TopicPartition(t, p) for t, p in pending]):
            if tp.offset >= 0 and tp.offset >= pending[(tp.topic, tp.partition)]:
                del pending[(tp.topic, tp.partition)]
                consumer.pause([TopicPartition(tp.topic, tp.partition)])


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


def _end_offsets(parts: SinkParts, consumer: Consumer) -> dict[tuple[str, int], int]:
    """The high watermark of every non-empty partition of the output topics."""
    try:
        md = consumer.list_topics(timeout=10)
        ends: dict[tuple[str, int], int] = {}
        for name in parts.ingestor.topic_names:
            if name not in md.topics or md.topics[name].error is not None:
                raise OneWindowError(f"output topic {name} does not exist "
                                     "(run `onewindow provision`)")
            for p in md.topics[name].partitions:
                lo, hi = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                if hi > lo:
                    ends[(name, p)] = hi
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        raise BrokerUnreachable(
            f"Kafka on {parts.settings.kafka_bootstrap} stopped answering: "
            f"{err.str() if isinstance(err, KafkaError) else exc}") from exc
    return ends
