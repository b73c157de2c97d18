"""``onewindow reprocess``: re-derive case state, activity and material links from the
input topics, in batch, with the live workers' own steps over confluent-kafka
(docs/operations.md, *Re-deriving with `onewindow reprocess`*).

The target is a *generation* of topics: a topic prefix (``target_prefix``; by default the
source's own, ``settings.topic_prefix``). The input records are those of the source
generation's ``dept.<code>.events``; everything derived from them goes to the target's
``onewindow.case-state``, ``case-activity``, ``dead-letters``, ``material-index``,
``material-links`` and the changelogs of the target's two Faust tables
(`stream_apps.reprocess_stages`), and the offsets consumed are committed to the target's
two Faust consumer groups. A live worker of the target generation started afterwards
restores its table from the changelog and continues from those offsets, as after a
restart on a new machine.

Three stages, one after the other, each as the live agent it mirrors:

1. ``fold``: the input topics, partition ``p`` of every topic to partition group
   ``p % jobs`` (a case's records are on one partition number of every topic), through
   `CaseProcessor`; offsets into the case-state app's group;
2. ``route``: the target's case-activity, through `MaterialRouter`; offsets into the
   materials app's group;
3. ``index``: the target's material-index, through `MaterialIndexer`; offsets into the
   materials app's group.

Each stage reads every partition from the group's committed offset (else its beginning)
to the end offset noted when the stage starts (the first stage's: when the command
starts), by ``jobs`` processes (1: this one), each with its own consumer, output producer
and state store (RocksDB, rebuilt from the changelog when it is not empty).

Delivery is at least once, as in the live path: a process's outputs and changelog records
are flushed (acknowledged, ``acks=all``, idempotent producer) before the offsets of the
records they came from are committed, every ``COMMIT_EVERY`` seconds and at the end; a
run stopped or killed part-way continues from the committed offsets when run again, its
state from the changelog, and re-emits at most the records since the last commit (the
fold takes a replay as a duplicate, the read model upserts).
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from onewindow.broker_wait import wait_for_broker
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.errors import DeliveryError, OneWindowError
from onewindow.provision import material_index_topic
from onewindow.security.kafka_auth import STREAM, client_config, producer_config
from onewindow.topics import Topics, partition_counts
from stream_apps.calendar_checks import CalendarCheck, CalendarChecker, snapshot_of
from stream_apps.records import InRecord
from stream_apps.reprocess_run import (
    REQUEST_SECONDS,
    Runner,
    StageReport,
    broker_error,
    fold_processor,
    print_line,
    retrying,
)
from stream_apps.reprocess_stages import BATCH, COMMIT_EVERY, STAGES, Plan

__all__ = ["ReprocessReport", "reprocess"]


@dataclass
class ReprocessReport:
    """What a run did: its plan (None when stopped while waiting for the broker), each
    stage run (`StageReport`), its seconds from the start."""

    plan: Plan | None = None
    stages: list[StageReport] = field(default_factory=list)
    seconds: float = 0.0
    #: stopped by a signal before the end (what was read is committed)
    stopped: bool = False
    #: calendar snapshots written to changelog partitions that were empty
    calendar_markers: int = 0

    @property
    def input_records(self) -> int:
        return next((s.records for s in self.stages if s.name == "fold"), 0)


# --------------------------------------------------------------------------- the command


def reprocess(settings: Settings, *, target_prefix: str | None = None, jobs: int = 1,
              batch_max: int = BATCH, wait: float = 30.0,
              say: Callable[[str], None] | None = None, out: TextIO | None = None,
              stop: threading.Event | None = None, state_dir: Path | None = None,
              progress_every: float = 10.0, commit_every: float = COMMIT_EVERY
              ) -> ReprocessReport:
    """Re-derive the target generation (module docstring) and return what was done.

    Waits up to ``wait`` seconds for the broker (each failed attempt told through
    ``say``), then checks before anything is written: every input topic and every
    derived topic of the target exists (`onewindow provision` makes them), the inputs
    are co-partitioned, and no worker of the target generation is running (its consumer
    groups have no member, waited for up to ``wait`` seconds). Raises `OneWindowError` (exit status 2) for those,
    `DeliveryError` (exit status 1) when the broker is unreachable or refuses a read, a
    write or a commit. Progress goes to ``out`` every ``progress_every`` seconds. A
    ``stop`` ends the stage in hand after the batches in hand, committed, and skips the
    rest (``stopped``)."""
    stop = stop or threading.Event()
    report = ReprocessReport()
    t0 = time.perf_counter()
    if not wait_for_broker(producer_config(settings, STREAM), timeout=wait, say=say,
                           stop=stop):
        report.stopped = True
        return report
    target = target_prefix if target_prefix is not None else settings.topic_prefix
    root = (state_dir or settings.data_dir / "reprocess") / uuid.uuid4().hex[:12]
    try:
        with _Cluster(settings, target) as cluster:
            plan = cluster.plan(jobs=jobs, batch_max=batch_max, state_dir=root,
                                commit_every=commit_every)
            report.plan = plan
            cluster.refuse_running_workers(plan, wait=wait, out=out, stop=stop)
            # the processes start (and import) while the changelogs are prepared
            with Runner(settings, plan, stop, out, progress_every) as runner:
                cluster.prepare_changelogs(plan)
                report.calendar_markers = cluster.write_calendar_markers(settings, plan)
                print_line(out, f"reprocess: {len(plan.inputs)} input topics of generation "
                                f"{plan.source_prefix!r} ({plan.source_partitions} partitions)"
                                f" -> generation {plan.target_prefix!r} "
                                f"({plan.target_partitions} partitions), {jobs} process(es)")
                for stage in STAGES:
                    done = runner.run(stage, cluster.spans(plan, stage))
                    report.stages.append(done)
                    if not done.complete:  # stopped: the next stage would read too little
                        report.stopped = True
                        break
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report.seconds = time.perf_counter() - t0
    return report


class _Cluster:
    """The command's own clients (signed in as the stream principal): metadata, offsets,
    groups, the changelog topics, the calendar markers."""

    def __init__(self, settings: Settings, target_prefix: str) -> None:
        self.settings = settings
        self.source = Topics(settings.topic_prefix)
        self.target = Topics(target_prefix)
        self.admin = AdminClient(producer_config(settings, STREAM))
        #: a consumer per group whose offsets are read (never joined, nothing committed)
        self._consumers: dict[str, Consumer] = {}
        self.consumer = self.of_group(self.target.case_state_app)

    def of_group(self, group: str) -> Consumer:
        """The command's consumer in ``group`` (its committed offsets)."""
        consumer = self._consumers.get(group)
        if consumer is None:
            consumer = self._consumers[group] = Consumer({
                **client_config(self.settings, STREAM), "group.id": group,
                "enable.auto.commit": False})
        return consumer

    def __enter__(self) -> _Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        for consumer in self._consumers.values():
            consumer.close()

    def _partitions(self) -> dict[str, int]:
        try:
            md = self.consumer.list_topics(timeout=REQUEST_SECONDS)
        except KafkaException as exc:
            raise broker_error(exc, self.settings, "reading the topics") from exc
        return partition_counts(md)

    def plan(self, *, jobs: int, batch_max: int, state_dir: Path,
             commit_every: float) -> Plan:
        have = self._partitions()
        registry = load_registry(self.settings.departments_file)
        inputs = tuple(self.source.inputs(registry.codes))
        missing = [t for t in inputs if t not in have]
        if missing:
            raise OneWindowError(f"input topic {missing[0]} does not exist (run `onewindow "
                                 "provision` for the source generation)")
        counts = {have[t] for t in inputs}
        if len(counts) != 1:
            raise OneWindowError("the input topics are not co-partitioned: "
                                 + ", ".join(f"{t} {have[t]}" for t in inputs))
        derived = [*self.target.outputs(), material_index_topic(self.target)]
        missing = [t for t in derived if t not in have]
        if missing:
            raise OneWindowError(
                f"target topic {missing[0]} does not exist: provision the generation "
                f"first (`onewindow provision --topic-prefix {self.target.prefix!r}`, "
                "with its partition count in ONEWINDOW_PARTITIONS)")
        target_n = have[self.target.case_state]
        other = [t for t in (*derived, *self.target.inputs(registry.codes))
                 if t in have and have[t] != target_n]
        if other:
            raise OneWindowError(f"the target generation is not co-partitioned: "
                                 f"{self.target.case_state} has {target_n} partitions, "
                                 f"{other[0]} {have[other[0]]}")
        return Plan(self.source.prefix, self.target.prefix, counts.pop(), target_n, inputs,
                    jobs, batch_max, str(state_dir), commit_every)

    def refuse_running_workers(self, plan: Plan, *, wait: float, out: TextIO | None,
                               stop: threading.Event) -> None:
        """A worker of the target generation would process the same records beside this
        run, and the broker refuses a commit into a group that has members. A worker
        just stopped may stay a member for up to its session timeout (a static member,
        ``group.instance.id``, leaves no earlier): waits up to ``wait`` seconds for the
        groups to empty (told once on ``out``), then refuses."""
        deadline = time.monotonic() + wait
        told = False
        for group in (plan.case_group, plan.materials_group):
            while members := retrying(lambda g=group: self._members(g), self.settings,
                                      f"describing group {group}"):
                if time.monotonic() > deadline or stop.is_set():
                    raise OneWindowError(
                        f"consumer group {group} has {members} member(s): stop the stream "
                        f"workers of generation {plan.target_prefix!r} first")
                if not told:
                    print_line(out, f"reprocess: consumer group {group} has {members} "
                                    f"member(s); waiting up to {wait:g}s for them to leave")
                    told = True
                stop.wait(1.0)

    def _members(self, group: str) -> int:
        future = self.admin.describe_consumer_groups(
            [group], request_timeout=REQUEST_SECONDS)[group]
        try:
            return len(future.result().members)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.GROUP_ID_NOT_FOUND:
                return 0
            raise

    def prepare_changelogs(self, plan: Plan) -> None:
        """Create the two changelog topics as Faust would (compacted, the table's
        partitions) when missing; refuse offsets without state (a group whose table was
        deleted: reading on from its offsets with empty tables would lose the state)."""
        have = self._partitions()
        wanted = {plan.fold_changelog: plan.target_partitions,
                  plan.index_changelog: plan.target_partitions}
        for name, n in wanted.items():
            if name in have and have[name] != n:
                raise OneWindowError(f"changelog {name} has {have[name]} partitions, its "
                                     f"table {n}")
        missing = [NewTopic(name, num_partitions=n,
                            replication_factor=self.settings.replication_factor,
                            config={"cleanup.policy": "compact"})
                   for name, n in wanted.items() if name not in have]
        created = self.admin.create_topics(missing, operation_timeout=REQUEST_SECONDS) \
            if missing else {}
        for name, fut in created.items():
            try:
                fut.result()
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if not (isinstance(err, KafkaError)
                        and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                    raise broker_error(exc, self.settings, f"creating {name}") from exc
        for stage, changelog in (("fold", plan.fold_changelog),
                                 ("index", plan.index_changelog)):
            spans = self.spans(plan, stage)
            committed = any(start > 0 for start, _end in spans.values())
            if committed and not any(self.ends([changelog]).values()):
                raise OneWindowError(
                    f"consumer group {plan.group_of(stage)} has committed offsets but "
                    f"{changelog} is empty: delete the group too (docs/operations.md, "
                    "re-deriving)")

    def ends(self, topics: list[str]) -> dict[tuple[str, int], int]:
        """The high watermark of every partition of ``topics``."""
        have = self._partitions()
        try:
            return {(t, p): self.consumer.get_watermark_offsets(
                        TopicPartition(t, p), timeout=REQUEST_SECONDS)[1]
                    for t in topics for p in range(have.get(t, 0))}
        except KafkaException as exc:
            raise broker_error(exc, self.settings, "reading the end offsets") from exc

    def spans(self, plan: Plan, stage: str) -> dict[tuple[str, int], tuple[int, int]]:
        """``(topic, partition) -> (first offset, end offset)`` of what ``stage`` reads:
        from the group's committed offset (else the partition's first), to its high
        watermark now."""
        topics = {"fold": list(plan.inputs), "route": [plan.target.case_activity],
                  "index": [plan.material_index]}[stage]
        have = self._partitions()
        tps = [TopicPartition(t, p) for t in topics for p in range(have[t])]
        consumer = self.of_group(plan.group_of(stage))
        try:
            committed = {(tp.topic, tp.partition): tp.offset
                         for tp in retrying(lambda: consumer.committed(
                             tps, timeout=REQUEST_SECONDS), self.settings,
                             f"reading the offsets of {plan.group_of(stage)}")}
            out = {}
            for tp in tps:
                lo, hi = consumer.get_watermark_offsets(tp, timeout=REQUEST_SECONDS)
                start = max(lo, committed[(tp.topic, tp.partition)])
                out[(tp.topic, tp.partition)] = (start, hi)
            return out
        except KafkaException as exc:
            raise broker_error(exc, self.settings, f"reading the offsets of "
                                f"{plan.group_of(stage)}") from exc

    def write_calendar_markers(self, settings: Settings, plan: Plan) -> int:
        """The working-day calendar this run settles deadlines with, stored as the case-fold
        table's calendar snapshot (``@calendar:<p>``, stream_apps.calendar_checks) of every
        changelog partition that is empty: a worker starting on them checks its calendar
        against it (an unchanged calendar re-publishes nothing). A partition that holds
        records keeps the snapshot it has (its cases were published with that one)."""
        empty = [p for (_t, p), end in self.ends([plan.fold_changelog]).items() if end == 0]
        if not empty:
            return 0
        checker = CalendarChecker(fold_processor(settings, plan))
        current = snapshot_of(checker.processor.calendar)
        producer = Producer({**producer_config(settings, STREAM), "acks": "all",
                             "enable.idempotence": True})
        errors: list[str] = []

        def delivered(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                errors.append(err.str())

        for p in empty:
            check = CalendarCheck(InRecord(plan.target.calendar_checks, p, -1, None, None,
                                           None), None, current, False,
                                  {"reason": "reprocess"})
            key, value = checker.finish(check)
            producer.produce(plan.fold_changelog, value, key.encode("utf-8"), partition=p,
                             on_delivery=delivered)
        if producer.flush(REQUEST_SECONDS * 2) or errors:
            raise DeliveryError(f"writing the calendar snapshots to {plan.fold_changelog} on "
                                f"{settings.kafka_bootstrap}: "
                                f"{(errors or ['no acknowledgement'])[0]}")
        return len(empty)
