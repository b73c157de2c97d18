"""``onewindow copy-inputs``: copy the input topics of one generation (a topic prefix)
into those of another, of as many partitions or more (docs/operations.md, *Growing the
partition count*).

Every record of ``<source>dept.<code>.events`` is written to ``<target>dept.<code>.events``
with its key, value, headers and timestamp, on the partition
`onewindow.topics.copied_partition` gives (its key's partition under the target's count;
a record the source's workers dead-letter for its partition stays off its key's
partition, so the target derives the same dead letter). A partition of the target
receives the records of every source partition in the order of each source partition,
so each key's records keep their order.

**Exactly once, and run as often as wanted.** Each run copies what the source holds up to
the end offsets noted when it starts, from where the last run ended; the copy's progress
lives in the consumer group ``<target>onewindow-copy-inputs``: for each source partition
the next offset to copy, for each target partition the end offset the copy has written up
to. A batch is noted before it is written (its source partitions' committed offsets
carry the batch's end as metadata, ``batch-end=<offset>``), written in a fixed order
(by source partition, then offset), acknowledged (idempotent producer, ``acks=all``, no
gaps), and the next note records its end. A run killed inside a batch leaves that note:
the next run reads the same batch again, finds how many of each target partition's
records of it are already written (the target partition's end minus the noted end; they
are a prefix of the partition's share of the batch, compared record by record) and
writes only the rest. Kafka transactions (the batch and its offsets in one) were not
used: a run killed inside a transaction would hold every ``read_committed`` reader of the
target's inputs (the new generation's workers, which may run behind the copy during a
migration, and ``onewindow reprocess``) at the open transaction until the next run fences
it or ``transaction.timeout.ms`` passes; the notes give exactly once with plain idempotent
writes, and tell the copy's own records from anyone else's.

**Nobody else may write the target's inputs while there is something to copy.** A record
the copy did not write in a target partition (a department that already publishes to the
new generation) is found before each batch by the offsets its records are acknowledged
at and at the start of a run by the noted ends; a copy that would put older records of
the source after it stops there (`OneWindowError`, exit status 2). A topic with nothing
new in the source is left alone, so departments can move to the new generation one at a
time (docs/operations.md). The records a department sent to the source after it moved
(and sent again to the target) are skipped with `skip_to_end` (``--skip-to-end TOPIC``):
the copy's progress on that topic moved to its end, so that no copy writes them.

It signs in as the broker's own principal (``admin``), like `onewindow provision`: reading
every department's topic and writing every department's topic of another generation is
the operator's act during a migration, which no service principal is granted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TextIO

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from onewindow.broker_wait import wait_for_broker
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.errors import DeliveryError, OneWindowError
from onewindow.security.kafka_auth import ADMIN, client_config, producer_config
from onewindow.topics import (
    Topics,
    copied_partition,
    partition_counts,
    partition_for,
    prefix_problem,
)
from stream_apps.reprocess_run import REQUEST_SECONDS, broker_error, print_line, retrying

__all__ = ["BATCH", "COPY_GROUP", "CopyPlan", "CopyReport", "ForeignRecords", "Skipped",
           "TopicCopy", "TopicCopier", "copy_inputs", "foreign_refusal", "plan_copy",
           "refuse_foreign", "skip_to_end", "skip_topics_problem", "skipped_line"]

#: records per batch by default (a batch is also cut at :data:`BATCH_BYTES`)
BATCH = 5_000
#: bytes of keys and values per batch, about (checked between reads of at most 100)
BATCH_BYTES = 16 * 1024 * 1024
#: the consumer group (after the target's prefix) holding the copy's progress
COPY_GROUP = "onewindow-copy-inputs"
#: the metadata of a source partition's committed offset while its batch is written
_BATCH_END = "batch-end="
#: seconds the producer waits for an acknowledgement before it fails the run
_ACK_SECONDS = 120.0
#: the longest wait of one read for more records (the ends are checked between reads: a
#: partition read to its end does not wait for records that will not come)
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class CopyPlan:
    """What a run copies: every department's input topic of ``source_prefix`` (each of
    ``source_partitions``) into ``target_prefix``'s (each of ``target_partitions``);
    ``ends``: the source partitions' end offsets noted when the run began."""

    source_prefix: str
    target_prefix: str
    source_partitions: int
    target_partitions: int
    #: (source topic, target topic), one per department, sorted by department
    pairs: tuple[tuple[str, str], ...]
    ends: dict[tuple[str, int], int]

    @property
    def group(self) -> str:
        """The consumer group of the copy's progress."""
        return f"{self.target_prefix}{COPY_GROUP}"


@dataclass
class TopicCopy:
    """One input topic's part of a run."""

    source: str
    target: str
    #: records written by this run
    copied: int = 0
    #: records of a batch a killed run had written already (found, not written again)
    already: int = 0
    #: records written off their key's partition (dead-lettered WRONG_PARTITION in the source)
    misplaced: int = 0
    #: records without a key (placed by their source partition)
    keyless: int = 0
    #: records in the target the copy did not write (its department publishes there)
    foreign: int = 0


@dataclass
class CopyReport:
    """What a run did; ``plan`` None when it was stopped while waiting for the broker."""

    plan: CopyPlan | None = None
    topics: list[TopicCopy] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False

    @property
    def copied(self) -> int:
        return sum(t.copied for t in self.topics)


# --------------------------------------------------------------------------- the command


def copy_inputs(settings: Settings, *, target_prefix: str, batch_max: int = BATCH,
                wait: float = 30.0, say: Callable[[str], None] | None = None,
                out: TextIO | None = None, stop: threading.Event | None = None,
                progress_every: float = 10.0) -> CopyReport:
    """Copy the input topics of ``settings.topic_prefix`` into ``target_prefix``'s (module
    docstring) and return what was done.

    Waits up to ``wait`` seconds for the broker (each failed attempt told through
    ``say``), then checks before anything is written (`plan_copy`). Raises
    `OneWindowError` (exit status 2) for what the operator fixes, `DeliveryError` (1) when
    the broker is unreachable or refuses a read, a write or a commit. A progress line goes
    to ``out`` every ``progress_every`` seconds; ``stop`` ends the run after the batch in
    hand (``stopped``: run it again to go on)."""
    stop = stop or threading.Event()
    report = CopyReport()
    t0 = time.perf_counter()
    _check_prefixes(settings, target_prefix)
    if not wait_for_broker(producer_config(settings, ADMIN), timeout=wait, say=say,
                           stop=stop):
        report.stopped = True
        return report
    consumer = _copy_consumer(settings, target_prefix)
    producer: Producer | None = None
    try:
        plan = plan_copy(settings, consumer, target_prefix)
        report.plan = plan
        producer = Producer({**producer_config(settings, ADMIN), "acks": "all",
                             "enable.idempotence": True, "enable.gapless.guarantee": True,
                             "linger.ms": 20, "compression.type": "lz4",
                             "message.timeout.ms": int(_ACK_SECONDS * 1000),
                             # any record the broker took from a department (its limit,
                             # max.message.bytes, decides)
                             "message.max.bytes": 2 * 1024 * 1024,
                             "queue.buffering.max.messages": 2 * batch_max + 1000,
                             "queue.buffering.max.kbytes": 2 * BATCH_BYTES // 1024 + 4096})
        copiers = [TopicCopier(settings, plan, source, target, consumer, producer, stop)
                   for source, target in plan.pairs]
        # every topic's progress read and checked first: one refusal names them all
        progress = _Progress(out, progress_every,
                             sum(c.resume(refuse=False) for c in copiers))
        refuse_foreign(copiers)
        print_line(out, f"copy-inputs: {len(plan.pairs)} input topics of generation "
                        f"{plan.source_prefix!r} ({plan.source_partitions} partitions) -> "
                        f"{plan.target_prefix!r} ({plan.target_partitions} partitions), "
                        f"{progress.total:,} records to copy")
        for copier in copiers:
            report.topics.append(copier.report)
            if stop.is_set():
                report.stopped = True
                break
            copier.finish_interrupted(progress)
            while not stop.is_set() and (batch := copier.next_batch(batch_max)):
                copier.write(batch)
                progress.add(len(batch))
            copier.commit()
            if copier.pending:
                report.stopped = True
                break
    finally:
        if producer is not None:
            producer.flush(REQUEST_SECONDS)
        consumer.close()
    report.seconds = time.perf_counter() - t0
    return report


def _check_prefixes(settings: Settings, target_prefix: str) -> None:
    """`OneWindowError` when either generation's prefix makes no topic name Kafka takes
    with the registry's departments, or both are the same; before the broker is asked."""
    codes = load_registry(settings.departments_file).codes
    for name, prefix in (("the topic prefix (--topic-prefix, ONEWINDOW_TOPIC_PREFIX)",
                          settings.topic_prefix), ("--to-prefix", target_prefix)):
        problem = prefix_problem(prefix, codes)
        if problem is not None:
            raise OneWindowError(f"{name} {prefix!r} is not a valid topic prefix: {problem}")
    if target_prefix == settings.topic_prefix:
        raise OneWindowError(f"--to-prefix {target_prefix!r} is the source generation "
                             "itself (--topic-prefix): name the new generation")


def _copy_consumer(settings: Settings, target_prefix: str) -> Consumer:
    """The copy's consumer, signed in as ``admin``, in the group of its progress
    (``<target>onewindow-copy-inputs``): it assigns partitions itself and commits only
    explicit offsets."""
    return Consumer({**client_config(settings, ADMIN),
                     "group.id": f"{target_prefix}{COPY_GROUP}",
                     "enable.auto.commit": False, "enable.auto.offset.store": False,
                     "enable.partition.eof": False, "auto.offset.reset": "earliest",
                     "fetch.wait.max.ms": 50})


def plan_copy(settings: Settings, consumer: Consumer, target_prefix: str) -> CopyPlan:
    """The run's plan and its checks, nothing written: every department's input topic of
    both generations exists (`OneWindowError` naming the first missing, with what to run),
    each generation's inputs are co-partitioned, the target has at least the source's
    partition count; the source's end offsets are noted."""
    source, target = Topics(settings.topic_prefix), Topics(target_prefix)
    codes = load_registry(settings.departments_file).codes
    try:
        md = consumer.list_topics(timeout=REQUEST_SECONDS)
    except KafkaException as exc:
        raise broker_error(exc, settings, "reading the topics") from exc
    have = partition_counts(md)
    counts = {}
    for gen, what in ((source, "--topic-prefix"), (target, "--to-prefix")):
        names = gen.inputs(codes)
        missing = [n for n in names if n not in have]
        if len(missing) == len(names) and gen is source:
            raise OneWindowError(f"no input topic of generation {gen.prefix!r} ({missing[0]} "
                                 f"does not exist): check {what}")
        if missing:
            raise OneWindowError(
                f"input topic {missing[0]} does not exist: provision generation "
                f"{gen.prefix!r} first (ONEWINDOW_TOPIC_PREFIX={gen.prefix} "
                "ONEWINDOW_PARTITIONS=N onewindow provision)")
        sizes = {have[n] for n in names}
        if len(sizes) != 1:
            raise OneWindowError(f"the input topics of generation {gen.prefix!r} are not "
                                 "co-partitioned: " + ", ".join(f"{n} {have[n]}"
                                                                for n in names))
        counts[gen.prefix] = sizes.pop()
    n, m = counts[source.prefix], counts[target.prefix]
    if m < n:
        raise OneWindowError(
            f"generation {target.prefix!r} has {m} partitions, fewer than the {n} of "
            f"{source.prefix!r}: a copy keeps or grows the count (provision a new "
            f"generation with ONEWINDOW_PARTITIONS of {n} or more)")
    pairs = tuple(zip(source.inputs(codes), target.inputs(codes), strict=True))
    try:
        ends = {(s, p): consumer.get_watermark_offsets(TopicPartition(s, p),
                                                       timeout=REQUEST_SECONDS)[1]
                for s, _t in pairs for p in range(n)}
    except KafkaException as exc:
        raise broker_error(exc, settings, "reading the end offsets") from exc
    return CopyPlan(source.prefix, target.prefix, n, m, pairs, ends)


# --------------------------------------------------------------------------- one topic


class TopicCopier:
    """Copies one input topic (``source`` into ``target``) with the run's ``consumer`` (in
    the copy's group) and ``producer``. The steps, in order: `resume` (read the copy's
    progress, check the target), `finish_interrupted` (a batch a killed run left),
    `next_batch` and `write` until nothing is left, `commit`. ``report``: its counts.
    Without a ``producer`` it only reads and notes the progress (`resume`, `commit`:
    `skip_to_end`)."""

    def __init__(self, settings: Settings, plan: CopyPlan, source: str, target: str,
                 consumer: Consumer, producer: Producer | None,
                 stop: threading.Event | None = None) -> None:
        self.settings, self.plan = settings, plan
        #: ends a `next_batch` early (a shorter batch; the broker away, Ctrl-C)
        self.stop = stop or threading.Event()
        self.source, self.target = source, target
        self.consumer, self.producer = consumer, producer
        self.n, self.m = plan.source_partitions, plan.target_partitions
        self.report = TopicCopy(source, target)
        #: next source offset to copy, per source partition
        self.next: dict[int, int] = {}
        #: the end offset the copy has written up to, per target partition
        self.written: dict[int, int] = {}
        #: a batch a killed run noted: its end per source partition
        self.interrupted: dict[int, int] = {}
        #: source partitions not yet read to their noted end
        self.pending: dict[int, int] = {}
        #: per target partition, the records of the interrupted batch already written
        self._landed: dict[int, int] = {}
        #: per target partition, records the copy did not write found by `resume` while
        #: the source has more to copy (`refuse_foreign`)
        self.foreign_ahead: dict[int, int] = {}
        self._assigned = False
        #: murmur2 in Python, once per key (and source partition) while it recurs
        self._home = lru_cache(maxsize=8192)(lambda key: partition_for(key, self.n))
        self._place = lru_cache(maxsize=8192)(
            lambda key, p: copied_partition(key, p, self.n, self.m))

    # ------------------------------------------------------------------ progress

    def resume(self, *, refuse: bool = True) -> int:
        """Read the copy's progress from its group and the target's end offsets; check
        that nobody else wrote the target (`OneWindowError` otherwise, when there is
        something to copy; with ``refuse`` false only noted in ``foreign_ahead``, for
        `refuse_foreign` to name every topic's at once). Returns the records left to
        copy."""
        source_tps = [TopicPartition(self.source, p) for p in range(self.n)]
        target_tps = [TopicPartition(self.target, q) for q in range(self.m)]
        got = retrying(lambda: self.consumer.committed([*source_tps, *target_tps],
                                                       timeout=REQUEST_SECONDS),
                       self.settings, f"reading the offsets of {self.plan.group}")
        committed = {(tp.topic, tp.partition): (tp.offset, tp.metadata or "") for tp in got}
        lows = self._watermarks(self.source, self.n, low=True)
        ends = self._watermarks(self.target, self.m)
        noted_source = any(committed[(self.source, p)][0] >= 0 for p in range(self.n))
        noted_target = any(committed[(self.target, q)][0] >= 0 for q in range(self.m))
        if noted_source != noted_target:
            raise OneWindowError(
                f"{self.target} was copied from another generation than "
                f"{self.plan.source_prefix!r} (group {self.plan.group} notes only one "
                "side): copy into a newly provisioned generation")
        for p in range(self.n):
            offset, metadata = committed[(self.source, p)]
            self.next[p] = max(offset, lows[p])
            if metadata.startswith(_BATCH_END):
                if lows[p] > offset:
                    raise OneWindowError(f"{self.source}[{p}] no longer holds the batch an "
                                         f"interrupted copy was writing (from {offset})")
                self.interrupted[p] = int(metadata.removeprefix(_BATCH_END))
        for q in range(self.m):
            self.written[q] = max(committed[(self.target, q)][0], 0)
            if ends[q] < self.written[q]:
                raise OneWindowError(
                    f"{self.target}[{q}] ends at {ends[q]}, before the {self.written[q]} "
                    f"records the copy wrote (deleted and provisioned again?): delete the "
                    f"consumer group {self.plan.group} and copy again")
        extra = {q: ends[q] - self.written[q] for q in range(self.m)}
        self.pending = {p: end for p in range(self.n)
                        if (end := self.plan.ends[(self.source, p)]) > self.next[p]}
        left = sum(end - self.next[p] for p, end in self.pending.items())
        if self.interrupted:
            self._landed = extra  # the interrupted batch's records already written
        else:
            self.report.foreign = sum(extra.values())
            if self.report.foreign and self.pending:
                self.foreign_ahead = {q: n for q, n in sorted(extra.items()) if n}
        if refuse:
            refuse_foreign([self])
        return left

    def _watermarks(self, topic: str, partitions: int, *, low: bool = False
                    ) -> dict[int, int]:
        try:
            return {p: self.consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=REQUEST_SECONDS)[0 if low else 1]
                for p in range(partitions)}
        except KafkaException as exc:
            raise broker_error(exc, self.settings, f"reading the offsets of {topic}") from exc

    def commit(self, batch_ends: dict[int, int] | None = None) -> None:
        """Note the copy's progress: each source partition's next offset (with
        ``batch_ends``, the batch about to be written: its end as metadata) and each target
        partition's written end, in one commit."""
        batch_ends = batch_ends or {}
        offsets = [TopicPartition(self.source, p, self.next[p],
                                  f"{_BATCH_END}{batch_ends[p]}" if p in batch_ends else "")
                   for p in range(self.n)]
        offsets += [TopicPartition(self.target, q, self.written[q]) for q in range(self.m)]
        what = f"committing the progress to {self.plan.group}"
        done = retrying(lambda: self.consumer.commit(offsets=offsets, asynchronous=False),
                        self.settings, what)
        failed = [tp for tp in done or [] if tp.error is not None]
        if failed:
            raise DeliveryError(f"{what} on {self.settings.kafka_bootstrap}: "
                                f"{failed[0].topic}[{failed[0].partition}] {failed[0].error.str()}")

    # ------------------------------------------------------------------ reading

    def finish_interrupted(self, progress: _Progress | None = None) -> None:
        """Write what a killed run's noted batch lacks: the batch read again, each target
        partition's records of it that are already there checked against it and
        skipped."""
        if not self.interrupted:
            return
        spans = {p: (self.next[p], end) for p, end in self.interrupted.items()}
        batch = self._read(spans, limit=None)
        seqs = self.sequences(batch)
        landed = self._landed
        for q, n in landed.items():
            if n > len(seqs.get(q, [])):
                self.foreign_ahead = {q: n - len(seqs.get(q, []))}
                refuse_foreign([self])
            if n:
                self._check_landed(q, seqs[q][:n])
        self.send(seqs, landed)
        for p, end in self.interrupted.items():
            self.next[p] = end
            if self.pending.get(p, -1) <= end:
                self.pending.pop(p, None)
        self.report.already += sum(landed.values())
        if progress is not None:
            progress.add(len(batch))
        self.interrupted = {}
        self.commit()

    def _check_landed(self, q: int, expected: list[Message]) -> None:
        start = self.written[q]
        got = self._read_partition(self.target, q, start, start + len(expected))
        for want, have in zip(expected, got, strict=True):
            if _identity(want) != _identity(have):
                raise OneWindowError(
                    f"{self.target}[{q}] offset {have.offset()} is not the record the "
                    f"interrupted copy was writing there (another writer?): copy into a "
                    "newly provisioned generation")

    def next_batch(self, limit: int) -> list[Message]:
        """The next records to copy: at most ``limit`` (and about :data:`BATCH_BYTES`), in
        source order, none at or after the end offsets of the plan; empty at the end."""
        if not self.pending:
            return []
        if not self._assigned:
            self._assign([TopicPartition(self.source, p, self.next[p]) for p in self.pending])
            self._assigned = True
        return self._take(self.pending, limit)

    def _read(self, spans: dict[int, tuple[int, int]], limit: int | None) -> list[Message]:
        pending = {p: end for p, (start, end) in spans.items() if start < end}
        self._assign([TopicPartition(self.source, p, spans[p][0]) for p in pending])
        try:
            return self._take(pending, limit)
        finally:
            self.consumer.unassign()

    def _read_partition(self, topic: str, partition: int, start: int, end: int
                        ) -> list[Message]:
        self._assign([TopicPartition(topic, partition, start)])
        try:
            out: list[Message] = []
            deadline = time.monotonic() + 2 * REQUEST_SECONDS
            while len(out) < end - start:
                if time.monotonic() > deadline:
                    raise DeliveryError(f"reading {topic}[{partition}] from {start} on "
                                        f"{self.settings.kafka_bootstrap}: no records")
                for msg in self.consumer.consume(end - start - len(out), _POLL_SECONDS):
                    if msg.error() is not None:
                        self._read_error(msg.error(), topic)
                    elif msg.offset() < end:
                        out.append(msg)
            return out
        finally:
            self.consumer.unassign()

    def _assign(self, tps: list[TopicPartition]) -> None:
        """Read ``tps`` from their offsets: a partition paused at the end of an earlier
        read (`_take`) stays paused through a new assignment, so it is resumed."""
        self.consumer.assign(tps)
        self.consumer.resume([TopicPartition(tp.topic, tp.partition) for tp in tps])

    def _take(self, pending: dict[int, int], limit: int | None) -> list[Message]:
        """Consume the assigned partitions of ``pending`` (partition -> end offset, removed
        when reached) until ``limit`` records, about :data:`BATCH_BYTES`, all ends, or
        ``stop``; without a limit, until all ends (a noted batch is read whole)."""
        out: list[Message] = []
        size = 0
        while pending and (limit is None or (len(out) < limit and size < BATCH_BYTES
                                             and not self.stop.is_set())):
            want = 100 if limit is None else min(100, limit - len(out))
            for msg in self.consumer.consume(want, _POLL_SECONDS):
                if msg.error() is not None:
                    self._read_error(msg.error(), self.source)
                    continue
                end = pending.get(msg.partition())
                if end is None or msg.offset() >= end:
                    continue  # published after the run began: the next run's
                out.append(msg)
                size += len(msg.value() or b"") + len(msg.key() or b"")
            try:
                positions = self.consumer.position([TopicPartition(self.source, p)
                                                    for p in pending])
            except KafkaException as exc:
                raise broker_error(exc, self.settings, f"reading {self.source}") from exc
            for tp in positions:
                if tp.offset >= 0 and tp.offset >= pending[tp.partition]:
                    del pending[tp.partition]
                    self.consumer.pause([tp])
        return out

    def _read_error(self, err: KafkaError, topic: str) -> None:
        if err.fatal() or not err.retriable():
            raise DeliveryError(f"reading {topic} on {self.settings.kafka_bootstrap}: "
                                f"{err.str()}")

    # ------------------------------------------------------------------ writing

    def sequences(self, batch: list[Message]) -> dict[int, list[Message]]:
        """Each target partition's records of ``batch``, in the order they are written:
        by source partition, then offset (so a run that reads the batch again writes it
        again in the same order)."""
        seqs: dict[int, list[Message]] = {}
        for msg in sorted(batch, key=lambda m: (m.partition(), m.offset())):
            q = self._place(msg.key(), msg.partition())
            seqs.setdefault(q, []).append(msg)
        return seqs

    def note(self, batch: list[Message]) -> dict[int, int]:
        """Note ``batch`` before it is written: `commit` with its end per source partition
        (returned)."""
        ends: dict[int, int] = {}
        for msg in batch:
            ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)
        self.commit(ends)
        return ends

    def write(self, batch: list[Message]) -> None:
        """Note ``batch`` (`note`), write it (`send`); the next note records its end."""
        ends = self.note(batch)
        self.send(self.sequences(batch))
        self.next.update(ends)

    def send(self, seqs: dict[int, list[Message]], skip: dict[int, int] | None = None
             ) -> None:
        """Produce each target partition's records after its first ``skip[q]``, wait for
        every acknowledgement, check that each landed right after the one before (else
        another writer is at work: `OneWindowError`), and advance the written ends."""
        skip = skip or {}
        # record i of a partition's share lands at its noted end + i (the first skip[q]
        # are there already); a partition's acknowledgements come in the order sent
        expected = {q: self.written[q] + skip.get(q, 0) for q in seqs}
        errors: list[str] = []
        foreign: list[tuple[int, int, int]] = []

        def delivered(err: KafkaError | None, msg: Message) -> None:
            q = msg.partition()
            if err is not None:
                errors.append(f"{self.target}[{q}]: {err.str()}")
                return
            if msg.offset() != expected[q]:
                foreign.append((q, expected[q], msg.offset()))
            expected[q] = msg.offset() + 1

        for q, seq in sorted(seqs.items()):
            for i in range(skip.get(q, 0), len(seq)):
                self._produce(q, seq[i], delivered)
        left = self._producer.flush(_ACK_SECONDS + REQUEST_SECONDS)
        if errors or left:
            raise DeliveryError(f"writing to {self.plan.target_prefix!r} on "
                                f"{self.settings.kafka_bootstrap}: "
                                f"{errors[0] if errors else f'{left} not acknowledged'}")
        for q, seq in seqs.items():
            self.written[q] += len(seq)
        if foreign:
            q, want, got = foreign[0]
            raise OneWindowError(
                f"{self.target}[{q}]: a record was written at offset {got}, not {want}: "
                f"someone else writes to {self.plan.target_prefix!r} during the copy (a "
                "department switched too early, or a second copy): stop it; the records "
                "copied so far are noted")

    @property
    def _producer(self) -> Producer:
        if self.producer is None:
            raise RuntimeError(f"the copier of {self.source} has no producer: it only "
                               "notes progress")
        return self.producer

    def _produce(self, q: int, msg: Message,
                 on_delivery: Callable[[KafkaError | None, Message], None]) -> None:
        key = msg.key()
        if key is None:
            self.report.keyless += 1
        elif msg.partition() != self._home(key):
            self.report.misplaced += 1
        ts_type, ts = msg.timestamp()
        kwargs: dict[str, Any] = {"partition": q, "on_delivery": on_delivery}
        if ts_type != TIMESTAMP_NOT_AVAILABLE:
            kwargs["timestamp"] = ts
        headers = msg.headers()
        if headers:
            kwargs["headers"] = headers
        while True:
            try:
                self._producer.produce(self.target, msg.value(), key, **kwargs)
                break
            except BufferError:
                self._producer.poll(0.1)
            except KafkaException as exc:
                raise broker_error(exc, self.settings, f"writing to {self.target}") from exc
        self.report.copied += 1


@dataclass(frozen=True)
class ForeignRecords:
    """Records in ``target`` the copy did not write (``partitions``: target partition ->
    how many) while ``source`` has ``left`` records more to copy into it."""

    source: str
    target: str
    partitions: dict[int, int]
    left: int


def foreign_refusal(target_prefix: str, found: list[ForeignRecords]) -> str:
    """The one line `onewindow copy-inputs` refuses with (exit status 2) when target
    topics hold records it did not write ahead of records it has still to copy: every
    such partition of every topic in ``found``, so that the operator deals with them all
    before the next run (docs/operations.md, growing the partition count, step 5)."""
    total = sum(n for f in found for n in f.partitions.values())
    where = "; ".join(
        ", ".join(f"{f.target}[{q}]: {n}" for q, n in sorted(f.partitions.items()) if n)
        + f" ({f.source} has {f.left} more to copy)" for f in found)
    return (f"{total} record(s) the copy did not write are in the target ahead of records "
            f"still to copy, which cannot come after them: {where}. Their departments "
            f"publish to {target_prefix!r} already? Have them send those to "
            f"{target_prefix!r} again and skip them here (--skip-to-end "
            f"{' --skip-to-end '.join(f.source for f in found)}; docs/operations.md, "
            "growing the partition count, step 5)")


def refuse_foreign(copiers: list[TopicCopier]) -> None:
    """`OneWindowError` (`foreign_refusal`) naming every copier's ``foreign_ahead``, if
    any; nothing otherwise."""
    blocked = [c for c in copiers if c.foreign_ahead]
    if blocked:
        raise OneWindowError(foreign_refusal(blocked[0].plan.target_prefix, [
            ForeignRecords(c.source, c.target, c.foreign_ahead,
                           sum(end - c.next[p] for p, end in c.pending.items()))
            for c in blocked]))


# --------------------------------------------------------------------------- skipping


@dataclass(frozen=True)
class Skipped:
    """A source topic whose copy progress `skip_to_end` moved to its end: ``partitions``,
    source partition -> records skipped there (the end minus the copy's next offset);
    ``ends``, source partition -> the end, where the next copy of the topic starts."""

    source: str
    target: str
    partitions: dict[int, int]
    ends: dict[int, int]

    @property
    def records(self) -> int:
        return sum(self.partitions.values())


def skip_topics_problem(topics: Sequence[str], source_prefix: str, target_prefix: str,
                        codes: Iterable[str]) -> str | None:
    """The one line `onewindow copy-inputs --skip-to-end` refuses with (exit status 2)
    when a topic of ``topics`` is not an input topic of the source generation
    (``<source_prefix>dept.<code>.events`` for a department of ``codes``): each such
    topic named, a target's input topic with the source's to name instead; None when
    all are."""
    source, target = Topics(source_prefix), Topics(target_prefix)
    ordered = sorted(codes)
    known = set(source.inputs(ordered))
    wrong = []
    for topic in dict.fromkeys(topics):
        if topic in known:
            continue
        code = target.department_of(topic)
        wrong.append(f"{topic} (an input topic of the target generation {target_prefix!r}: "
                     f"name {source.input(code)})" if code in ordered else topic)
    if not wrong:
        return None
    return (f"--skip-to-end {', '.join(wrong)}: not an input topic of the source "
            f"generation {source_prefix!r} (--topic-prefix); the copy's progress is kept "
            f"per source topic, {source_prefix}dept.<code>.events for a department of the "
            f"registry ({', '.join(ordered)})")


def skip_to_end(settings: Settings, *, target_prefix: str, topics: Sequence[str],
                wait: float = 30.0, say: Callable[[str], None] | None = None,
                stop: threading.Event | None = None) -> list[Skipped] | None:
    """Instead of a copy: move the copy's progress (its group
    ``<target>onewindow-copy-inputs``) on each of ``topics``, input topics of the source
    generation (``settings.topic_prefix``), to the topic's end now, every partition, so
    that no copy into ``target_prefix`` copies the records there: the records a
    department sent to the source after it had moved to the target, and has sent again
    to the target (docs/operations.md, growing the partition count, step 5).

    The copy's own reading and noting of its progress (`plan_copy`, `TopicCopier.resume`
    and `commit`, the same sign-in as ``admin``): every named topic is read and checked
    before any is moved; the target partitions' written ends are kept, so the next copy
    reports the target's own records as published to it directly. A batch an
    interrupted copy noted on a topic is skipped with the rest (what it had written
    stays in the target). Run it while no copy runs: a copy notes its own progress after
    each batch.

    Returns one `Skipped` per topic, in the order named (each once); None when ``stop``
    came while waiting up to ``wait`` seconds for the broker (each failed attempt told
    through ``say``). Raises `OneWindowError` (exit status 2) before the broker is asked
    for a prefix the copy refuses or a topic that is not one of the source's input
    topics (`skip_topics_problem`), and after for what the copy refuses too (a
    generation not provisioned, a target copied from another generation);
    `DeliveryError` (1) when the broker does not answer or refuses a read or the
    commit."""
    stop = stop or threading.Event()
    _check_prefixes(settings, target_prefix)
    named = list(dict.fromkeys(topics))
    problem = skip_topics_problem(named, settings.topic_prefix, target_prefix,
                                  load_registry(settings.departments_file).codes)
    if problem is not None:
        raise OneWindowError(problem)
    if not wait_for_broker(producer_config(settings, ADMIN), timeout=wait, say=say,
                           stop=stop):
        return None
    consumer = _copy_consumer(settings, target_prefix)
    try:
        plan = plan_copy(settings, consumer, target_prefix)
        targets = dict(plan.pairs)
        copiers = [TopicCopier(settings, plan, topic, targets[topic], consumer, None)
                   for topic in named]
        for copier in copiers:
            copier.resume(refuse=False)
        done = []
        for copier in copiers:
            ends = {p: max(plan.ends[(copier.source, p)], copier.next[p])
                    for p in range(plan.source_partitions)}
            skipped = {p: end - copier.next[p] for p, end in ends.items()}
            copier.next.update(ends)
            copier.commit()
            done.append(Skipped(copier.source, copier.target, skipped, ends))
        return done
    finally:
        consumer.close()


def skipped_line(skipped: Skipped) -> str:
    """The line `onewindow copy-inputs --skip-to-end` prints for each topic."""
    per = ", ".join(f"{p}: {n:,}" for p, n in sorted(skipped.partitions.items()))
    return (f"skipped {skipped.records:,} record(s) of {skipped.source} (per partition "
            f"{per}), never to be copied into {skipped.target}: the next copy goes on "
            "from its end")


def _identity(msg: Message) -> tuple[Any, ...]:
    """What a copy keeps of a record: key, value, headers, timestamp."""
    return (msg.key(), msg.value(), list(msg.headers() or []), msg.timestamp()[1])


class _Progress:
    """The run's progress line every ``every`` seconds on ``out``."""

    def __init__(self, out: TextIO | None, every: float, total: int) -> None:
        self.out, self.every, self.total = out, every, total
        self.done = 0
        self.t0 = self.last = time.monotonic()

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            print_line(self.out, f"copy-inputs: {self.done / max(self.total, 1):4.0%} "
                                 f"({self.done:,} of {self.total:,} records, "
                                 f"{rate:,.0f} records/s)")


def summary(report: CopyReport) -> list[str]:
    """The lines `onewindow copy-inputs` ends with."""
    plan = report.plan
    if plan is None:
        return ["copy-inputs: stopped while waiting for the broker"]
    n, secs = report.copied, report.seconds
    lines = [f"{'stopped after copying' if report.stopped else 'copied'} {n:,} records of "
             f"{len(plan.pairs)} input topics from generation {plan.source_prefix!r} "
             f"({plan.source_partitions} partitions) into {plan.target_prefix!r} "
             f"({plan.target_partitions} partitions) in {secs:.1f}s "
             f"({n / max(secs, 1e-9):,.0f} records/s)"
             + ("; run it again to go on from there" if report.stopped else "")]
    for t in report.topics:
        notes = [f"{t.misplaced:,} kept off their key's partition"] if t.misplaced else []
        if t.keyless:
            notes.append(f"{t.keyless:,} without a key")
        if t.already:
            notes.append(f"{t.already:,} written by an interrupted run, found in place")
        if t.foreign:
            notes.append(f"{t.foreign:,} published to the target directly")
        lines.append(f"  {t.source} -> {t.target}: {t.copied:,} copied"
                     + (f" ({'; '.join(notes)})" if notes else ""))
    return lines
