"""How `onewindow reprocess` (`stream_apps.reprocess`) runs a stage: its partition groups
in this process or in spawned ones, each group's batch loop over confluent-kafka (restore
the stage's state from its changelog, consume to the end offsets, step, send, flush, commit)
and the progress lines."""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent import futures
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.domain.normalise import has_digit
from onewindow.errors import DeliveryError
from onewindow.security.id_protection import IdProtector
from onewindow.security.kafka_auth import STREAM, client_config, producer_config
from onewindow.topics import partition_for
from onewindow.uscc_exceptions import load_uscc_exceptions
from stream_apps.case_processor import CaseProcessor
from stream_apps.materials_processor import MaterialIndexer, MaterialRouter
from stream_apps.output import OutputDeliveryError, OutputProducer
from stream_apps.records import InRecord
from stream_apps.reprocess_stages import (
    FoldStage,
    IndexStage,
    Plan,
    RouteStage,
    StateStore,
    merge_counts,
)

__all__ = ["REQUEST_SECONDS", "Runner", "StageReport", "broker_error", "fold_processor",
           "groups", "print_line", "retrying", "run_group"]

_T = TypeVar("_T")

#: how long one metadata or offsets request may take
REQUEST_SECONDS = 15.0

#: Errors of a consumed record that end the run (the others are retried by librdkafka)
_FATAL_READ = frozenset({KafkaError.TOPIC_AUTHORIZATION_FAILED,
                         KafkaError.GROUP_AUTHORIZATION_FAILED,
                         KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})


@dataclass
class StageReport:
    """One stage of a run (`STAGES`), its processes' counts added up."""

    name: str
    #: records read (up to the end offsets)
    records: int = 0
    seconds: float = 0.0
    #: changelog records applied to the state stores before the stage began
    restored: int = 0
    #: what happened to the records (`stream_apps.reprocess_stages`)
    counts: dict[str, int] = field(default_factory=dict)
    #: records written per topic
    outputs: dict[str, int] = field(default_factory=dict)
    #: the partitions read, and how many processes read them
    partitions: int = 0
    processes: int = 0
    #: every partition read to its end offset (False: stopped before)
    complete: bool = True


#: what a group coordinator answers while it moves or loads: asked again
_COORDINATOR_MOVING = frozenset({KafkaError.NOT_COORDINATOR,
                                 KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                                 KafkaError.COORDINATOR_NOT_AVAILABLE})


def retrying(call: Callable[[], _T], settings: Settings, what: str,
              seconds: float = 2 * REQUEST_SECONDS) -> _T:
    """``call()``, asked again for ``seconds`` while the broker answers with a retriable
    error (a group coordinator moving or loading: right after the broker starts, or the
    first time a group is used); any other error, or the last, as a `DeliveryError`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            again = isinstance(err, KafkaError) and (err.retriable()
                                                     or err.code() in _COORDINATOR_MOVING)
            if not again or time.monotonic() > deadline:
                raise broker_error(exc, settings, what) from exc
            time.sleep(0.5)


def print_line(out: TextIO | None, line: str) -> None:
    """One line of the command's progress on ``out`` (none without)."""
    if out is not None:
        print(line, file=out, flush=True)  # noqa: T201 - the command's progress lines


def broker_error(exc: KafkaException, settings: Settings, what: str) -> DeliveryError:
    """librdkafka's error as the one line of a `DeliveryError`: what failed, the broker,
    its reason."""
    err = exc.args[0] if exc.args else None
    detail = err.str() if isinstance(err, KafkaError) else str(exc)
    return DeliveryError(f"{what} on {settings.kafka_bootstrap}: {detail}")


# --------------------------------------------------------------------------- the stages


def fold_processor(settings: Settings, plan: Plan) -> CaseProcessor:
    """The live case-state worker's `CaseProcessor` (`stream_apps.app.create_app`), its
    outputs on the target generation, ``WRONG_PARTITION`` over the source's partitions."""
    registry = load_registry(settings.departments_file)
    return CaseProcessor(codec=get_codec(), topics=plan.target, departments=registry.codes,
                         counters=registry.counter_codes,
                         calendar=load_calendar(settings.calendar_override_file),
                         ids=IdProtector.from_settings(settings),
                         partitions=plan.source_partitions,
                         uscc_exceptions=load_uscc_exceptions(settings.uscc_exceptions_file))


def _stage(settings: Settings, plan: Plan, name: str, group: int
           ) -> FoldStage | RouteStage | IndexStage:
    codec = get_codec()
    budget = settings.table_memory_mib * 1024 * 1024
    path = Path(plan.state_dir) / f"{name}-{group}"
    if name == "fold":
        jobs, source_n = plan.jobs, plan.source_partitions
        return FoldStage(fold_processor(settings, plan), StateStore(path, budget),
                         changelog=plan.fold_changelog,
                         target_partitions=plan.target_partitions,
                         owns=lambda key: partition_for(key, source_n) % jobs == group)
    if name == "route":
        return RouteStage(MaterialRouter(codec=codec, index_topic=plan.material_index,
                                         ids=IdProtector.from_settings(settings)))
    return IndexStage(MaterialIndexer(codec=codec, links_topic=plan.target.material_links),
                      StateStore(path, budget), changelog=plan.index_changelog)


def groups(spans: Mapping[tuple[str, int], tuple[int, int]], jobs: int
           ) -> dict[int, dict[tuple[str, int], tuple[int, int]]]:
    """Partition ``p`` of every topic to group ``p % jobs``; groups with nothing to read
    left out."""
    out: dict[int, dict[tuple[str, int], tuple[int, int]]] = {}
    for (topic, p), (start, end) in sorted(spans.items()):
        if start < end:
            out.setdefault(p % jobs, {})[(topic, p)] = (start, end)
    return out


class Runner:
    """Runs a stage's partition groups: here when ``jobs`` is 1, else in ``jobs`` spawned
    processes (started once, for all three stages); prints progress."""

    def __init__(self, settings: Settings, plan: Plan, stop: threading.Event,
                 out: TextIO | None, progress_every: float) -> None:
        self.settings, self.plan, self.stop, self.out = settings, plan, stop, out
        self.progress_every = progress_every
        context = multiprocessing.get_context("spawn")
        self.done = context.Array("q", plan.jobs, lock=False)
        self.process_stop = context.Event()
        self.pool: Executor | None = None
        if plan.jobs > 1:
            self.pool = ProcessPoolExecutor(plan.jobs, mp_context=context,
                                            initializer=_init_process,
                                            initargs=(self.process_stop, self.done))
            for _ in range(plan.jobs):  # started now: they import while the parent prepares
                self.pool.submit(_warm)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process_stop.set()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, stage: str, spans: dict[tuple[str, int], tuple[int, int]]) -> StageReport:
        report = StageReport(stage, partitions=len(spans))
        parts = groups(spans, self.plan.jobs)
        report.processes = len(parts)
        total = sum(end - start for start, end in spans.values())
        for i in range(self.plan.jobs):
            self.done[i] = 0
        t0 = time.perf_counter()
        finished = threading.Event()
        ticker = threading.Thread(target=self._progress, args=(stage, total, t0, finished),
                                  name="reprocess-progress", daemon=True)
        ticker.start()
        try:
            if self.pool is None:
                results = [run_group(self.settings, self.plan, stage, g, part, self.done,
                                     self.stop) for g, part in parts.items()]
            else:
                results = self._in_processes(stage, parts)
        finally:
            finished.set()
        report.seconds = time.perf_counter() - t0
        for r in results:
            report.complete = report.complete and r["complete"]
            report.records += r["records"]
            report.restored += r["restored"]
            merge_counts(report.counts, r["counts"])
            merge_counts(report.outputs, r["outputs"])
        print_line(self.out, f"reprocess: {stage} done: {report.records:,} records in "
                             f"{report.seconds:.1f}s")
        return report

    def _in_processes(self, stage: str, parts: dict[int, dict[tuple[str, int],
                                                               tuple[int, int]]]
                      ) -> list[dict[str, Any]]:
        assert self.pool is not None
        submitted = [self.pool.submit(_run_group_in_process, self.settings, self.plan, stage,
                                      g, part) for g, part in parts.items()]
        pending = set(submitted)
        while pending:
            if self.stop.is_set():
                self.process_stop.set()
            done, pending = futures.wait(pending, timeout=0.5,
                                         return_when=futures.FIRST_EXCEPTION)
            for future in done:
                exc = future.exception()
                if isinstance(exc, BrokenProcessPool):
                    raise DeliveryError(f"{stage}: a reprocess process ended abruptly "
                                        "(killed?); what it committed stays: run the command "
                                        "again to continue") from exc
                if exc is not None:
                    self.process_stop.set()
                    raise exc
        return [f.result() for f in submitted]

    def _progress(self, stage: str, total: int, t0: float, finished: threading.Event
                  ) -> None:
        while not finished.wait(self.progress_every):
            done = sum(self.done)
            rate = done / max(time.perf_counter() - t0, 1e-9)
            print_line(self.out, f"reprocess: {stage} {done / max(total, 1):4.0%} ({done:,} "
                                 f"of {total:,} records, {rate:,.0f} records/s)")


# --------------------------------------------------------------------------- one group

#: a process's stop and the progress counters (set by `_init_process`)
_PROCESS_STOP: Any = None
_PROCESS_DONE: Any = None


def _init_process(stop: Any, done: Any) -> None:
    global _PROCESS_STOP, _PROCESS_DONE  # noqa: PLW0603 - one per process, set at its start
    _PROCESS_STOP, _PROCESS_DONE = stop, done
    # Ctrl-C reaches the whole process group: a process ends its batch, commits and
    # returns when the parent says so (its stop), never in the middle of a batch
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def _warm() -> None:
    """A process's first task: what every stage needs once (the normalisation tables,
    built by the first non-ASCII text without an ASCII digit)."""
    has_digit("\u3007")


def _run_group_in_process(settings: Settings, plan: Plan, stage: str, group: int,
                          spans: dict[tuple[str, int], tuple[int, int]]) -> dict[str, Any]:
    return run_group(settings, plan, stage, group, spans, _PROCESS_DONE, _PROCESS_STOP)


def run_group(settings: Settings, plan: Plan, stage_name: str, group: int,
              spans: dict[tuple[str, int], tuple[int, int]], done: Any, stop: Any
              ) -> dict[str, Any]:
    """One partition group of one stage (module docstring): restore the stage's state,
    read ``spans`` from their first to their end offsets in batches, write the outputs,
    commit. ``done[group]`` counts the records read; ``stop`` (an event) ends it after
    the batch in hand. Returns its counts (plain data: it crosses a process boundary)."""
    stage = _stage(settings, plan, stage_name, group)
    topic_group = plan.group_of(stage_name)
    conf = {**client_config(settings, STREAM), "group.id": topic_group,
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "enable.partition.eof": False, "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 50, "queued.max.messages.kbytes": 16384}
    output = OutputProducer(
        settings.kafka_bootstrap, client_id=f"{topic_group}-reprocess-{stage_name}-{group}",
        # the materials app writes its index records and links murmur2-placed (the Java
        # rule); the case-state app keeps librdkafka's default
        config={**producer_config(settings, STREAM),
                **({} if stage_name == "fold" else {"partitioner": "murmur2_random"})},
        on_failed=stage.output_failed if stage_name == "fold" else None)
    consumer = Consumer(conf)
    result: dict[str, Any] = {"records": 0, "restored": 0, "counts": {}, "outputs": {},
                              "complete": False}
    try:
        result["restored"] = _restore(settings, plan, stage, group, consumer)
        _read(settings, plan, stage, spans, consumer, output, result,
              lambda n: _count(done, group, n), stop)
    except OutputDeliveryError as exc:
        raise DeliveryError(f"{stage_name}: an output was not delivered to "
                            f"{settings.kafka_bootstrap}: {exc}") from exc
    finally:
        consumer.close()
        store = getattr(stage, "store", None)
        if store is not None:
            store.destroy()
    result["counts"] = dict(stage.counts)
    return result


def _count(done: Any, group: int, n: int) -> None:
    if done is not None:
        done[group] += n


def _restore(settings: Settings, plan: Plan, stage: FoldStage | RouteStage | IndexStage,
             group: int, consumer: Consumer) -> int:
    """Apply the stage's changelog to its store: the partitions of this group (every
    partition for a fold whose target has another partition count than its source, the
    keys filtered by case), from their first record to their high watermark, with the
    group's consumer (assigned to its inputs afterwards)."""
    changelog = {"fold": plan.fold_changelog, "index": plan.index_changelog}.get(stage.name)
    if changelog is None:
        return 0
    every = stage.name == "fold" and plan.source_partitions != plan.target_partitions
    applied = 0
    try:
        pending = {}
        for p in range(plan.target_partitions):
            if every or p % plan.jobs == group:
                lo, hi = consumer.get_watermark_offsets(TopicPartition(changelog, p),
                                                        timeout=REQUEST_SECONDS)
                if hi > lo:
                    pending[p] = hi
        if not pending:
            return 0
        consumer.assign([TopicPartition(changelog, p, OFFSET_BEGINNING) for p in pending])
        while pending:
            for msg in consumer.consume(10_000, 0.5):
                if msg.error() is not None:
                    _check_read_error(msg.error(), settings, changelog)
                    continue
                if msg.offset() < pending.get(msg.partition(), -1):
                    applied += stage.restore(msg.key(), msg.value())
            for tp in consumer.position([TopicPartition(changelog, p) for p in pending]):
                if tp.offset >= pending[tp.partition]:
                    del pending[tp.partition]
                    consumer.pause([tp])
    except KafkaException as exc:
        raise broker_error(exc, settings, f"restoring from {changelog}") from exc
    finally:
        consumer.unassign()
    return applied


def _check_read_error(err: KafkaError, settings: Settings, topic: str) -> None:
    if err.fatal() or err.code() in _FATAL_READ:
        raise DeliveryError(f"reading {topic} on {settings.kafka_bootstrap}: {err.str()}")


def _read(settings: Settings, plan: Plan, stage: FoldStage | RouteStage | IndexStage,
          spans: dict[tuple[str, int], tuple[int, int]], consumer: Consumer,
          output: OutputProducer, result: dict[str, Any], counted: Callable[[int], None],
          stop: Any) -> None:
    """The batch loop of one group: consume up to ``plan.batch_max`` records, step, send;
    every ``plan.commit_every`` seconds and at the end flush, then commit the positions
    (each at most its end offset)."""
    pending = {tp: end for tp, (_start, end) in spans.items()}
    outputs: Counter[str] = Counter()
    consumer.assign([TopicPartition(t, p, start) for (t, p), (start, _e) in spans.items()])
    last_commit = time.monotonic()
    try:
        while pending and not stop.is_set():
            recs = []
            for msg in consumer.consume(plan.batch_max, 0.2):
                err = msg.error()
                if err is not None:
                    _check_read_error(err, settings, str(msg.topic()))
                    continue
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                end = pending.get((topic, partition))
                if end is None or offset >= end:
                    continue  # after the end offsets: the live workers' (or a later run's)
                ts_type, ts = msg.timestamp()
                recs.append(InRecord(topic, partition, offset, msg.key(), msg.value(),
                                     ts if ts_type != TIMESTAMP_NOT_AVAILABLE and ts
                                     else None))
            if recs:
                outs = stage.step(recs)
                output.send_batch(outs)
                outputs.update(o.topic for o in outs)
                result["records"] += len(recs)
                counted(len(recs))
            for tp in consumer.position([TopicPartition(t, p) for t, p in pending]):
                if tp.offset >= 0 and tp.offset >= pending[(tp.topic, tp.partition)]:
                    del pending[(tp.topic, tp.partition)]
                    consumer.pause([TopicPartition(tp.topic, tp.partition)])
            if pending and time.monotonic() - last_commit >= plan.commit_every:
                _commit(settings, consumer, output, spans)
                last_commit = time.monotonic()
        _commit(settings, consumer, output, spans)
        result["complete"] = not pending
    finally:
        result["outputs"] = {t.removeprefix(plan.target_prefix): n for t, n in outputs.items()}


def _commit(settings: Settings, consumer: Consumer, output: OutputProducer,
            spans: dict[tuple[str, int], tuple[int, int]]) -> None:
    """Flush the outputs (all acknowledged), then commit each partition's position, at
    most its end offset: what lies after it is left to the live workers."""
    output.flush_blocking()
    offsets = []
    for tp in consumer.position([TopicPartition(t, p) for t, p in spans]):
        if tp.offset >= 0:
            end = spans[(tp.topic, tp.partition)][1]
            offsets.append(TopicPartition(tp.topic, tp.partition, min(tp.offset, end)))
    if offsets:
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise broker_error(exc, settings, "committing the offsets") from exc
