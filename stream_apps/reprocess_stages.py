"""The three steps of `onewindow reprocess`, free of Kafka clients (`stream_apps.reprocess`
runs them over confluent-kafka batches).

Each is the step a live agent runs, on the same processor, writing the same outputs and
the same table (its changelog records as Faust writes them):

* :class:`FoldStage`: the case-state agent (`stream_apps.app`): `CaseProcessor` over a
  batch of input records, each changed case's fold state into the stage's
  :class:`StateStore` and the ``case-fold`` table's changelog, then the CaseState,
  CaseActivity and DeadLetter records;
* :class:`RouteStage`: the materials app's router (`MaterialRouter`): case-activity records
  into material-index records;
* :class:`IndexStage`: the materials app's indexer (`MaterialIndexer`): material-index
  records against the buckets of their keys (a :class:`StateStore` and the
  ``material-index`` table's changelog), the links out.

A changelog record is what Faust's table writes for ``table[key] = value`` (raw bytes key
and value, no headers) on the partition Faust would pick, the partition of the record
being processed: for the fold, the partition of the case in the *target* generation's
co-partitioned topics (`onewindow.topics.partition_for` of its ``case_id`` over their
count, the input record's own partition when source and target are one generation); for
the index, the material-index record's partition. A live worker of the target generation
restores its table from these records as after the loss of its local store.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import rocksdict

from onewindow.domain.materials import MATERIAL_EVENTS
from onewindow.provision import material_index_topic
from onewindow.topics import Topics, partition_for
from stream_apps.case_processor import DEAD_LETTERED, CaseProcessor
from stream_apps.materials_processor import MaterialIndexer, MaterialRouter
from stream_apps.records import InRecord, OutRecord
from stream_apps.table_store import BoundedRocksDBOptions, configure, table_memory

__all__ = ["BATCH", "CASE_FOLD_TABLE", "COMMIT_EVERY", "MATERIAL_INDEX_TABLE", "STAGES",
           "FoldStage", "IndexStage", "Plan", "RouteStage", "StateStore", "TargetTopics",
           "changelog_topic"]

#: The Faust table names of the live apps (`stream_apps.app`: ``app.Table("case-fold")``,
#: `stream_apps.materials_app`: ``app.Table("material-index")``).
CASE_FOLD_TABLE = "case-fold"
MATERIAL_INDEX_TABLE = "material-index"

#: records per batch (one `step`) by default: larger batches write each case's state
#: fewer times (once per batch it appears in)
BATCH = 10_000
#: seconds between two commits of a process (outputs flushed first)
COMMIT_EVERY = 2.0
#: the stages, in the order they run
STAGES = ("fold", "route", "index")

#: the material event types as they appear in an encoded CaseActivity (`RouteStage`)
_MATERIAL_NAMES = tuple(sorted(name.encode("utf-8") for name in MATERIAL_EVENTS))

#: Reserved table keys (``@calendar:<p>``: stream_apps.calendar_checks): not cases.
_RESERVED = b"@"


def changelog_topic(app_id: str, table: str) -> str:
    """The changelog topic Faust gives ``table`` of the app ``app_id``:
    ``<app id>-<table>-changelog`` (faust.tables.base.Collection._changelog_topic_name)."""
    return f"{app_id}-{table}-changelog"


@dataclass(frozen=True)
class TargetTopics(Topics):
    """The target generation's topics (``prefix``) whose input topics are the source
    generation's (``source_prefix``): what `CaseProcessor` reads the owner of a record's
    topic from, and writes its outputs to."""

    source_prefix: str = ""

    def input(self, department: str) -> str:
        return Topics(self.source_prefix).input(department)

    def department_of(self, topic: str) -> str | None:
        return Topics(self.source_prefix).department_of(topic)


@dataclass(frozen=True)
class Plan:
    """What a run reads and writes, noted once by the command and handed to each
    process."""

    source_prefix: str
    target_prefix: str
    #: partition count of the source's (co-partitioned) input topics
    source_partitions: int
    #: partition count of the target's topics (its case-fold changelog's)
    target_partitions: int
    inputs: tuple[str, ...]
    jobs: int
    batch_max: int
    state_dir: str
    commit_every: float = COMMIT_EVERY

    @property
    def target(self) -> TargetTopics:
        """The target's topic names, whose inputs are the source's."""
        return TargetTopics(self.target_prefix, source_prefix=self.source_prefix)

    @property
    def case_group(self) -> str:
        """The target's case-state app id: the group the fold commits to."""
        return self.target.case_state_app

    @property
    def materials_group(self) -> str:
        """The target's materials app id: the group route and index commit to."""
        return self.target.materials_app

    @property
    def fold_changelog(self) -> str:
        """The changelog of the target's ``case-fold`` table."""
        return changelog_topic(self.target.case_state_app, CASE_FOLD_TABLE)

    @property
    def index_changelog(self) -> str:
        """The changelog of the target's ``material-index`` table."""
        return changelog_topic(self.target.materials_app, MATERIAL_INDEX_TABLE)

    @property
    def material_index(self) -> str:
        """The target's material-index (repartition) topic."""
        return material_index_topic(self.target)

    def group_of(self, stage: str) -> str:
        """The consumer group a stage (`STAGES`) commits its offsets to."""
        return self.case_group if stage == "fold" else self.materials_group


class StateStore:
    """A stage's table while it runs: a scratch RocksDB under ``path`` (deleted by
    :meth:`destroy`), opened with the live tables' options and the process's one memory
    budget (`stream_apps.table_store`, ``ONEWINDOW_TABLE_MEMORY_MIB``), so a process holds
    a million cases in bounded memory. Writes skip RocksDB's write-ahead log: the store is
    rebuilt from the changelog after a crash, never reopened. Keys are ``str`` (UTF-8),
    values bytes. ``budget_bytes``: the budget when the process has none yet."""

    def __init__(self, path: Path, budget_bytes: int) -> None:
        if table_memory() is None:  # else the process's tables already share one
            configure(budget_bytes)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = rocksdict.Rdict(str(path), BoundedRocksDBOptions(use_rocksdict=True)
                                   .as_options())
        write = rocksdict.WriteOptions()
        write.disable_wal = True
        self._db.set_write_options(write)

    def get(self, key: str) -> bytes | None:
        value = self._db.get(key.encode("utf-8"))
        return None if value is None else bytes(value)

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        """Write ``(key, value)`` pairs in one RocksDB write batch."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in items:
            batch.put(key.encode("utf-8"), value)
        self._db.write(batch)

    def apply(self, key: bytes, value: bytes | None) -> None:
        """One changelog record as Faust's recovery applies it: a value is stored, a
        tombstone deletes."""
        if value is None:
            self._db.delete(key)
        else:
            self._db[key] = value

    def destroy(self) -> None:
        """Close and delete the scratch database."""
        self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)


class FoldStage:
    """Step 1 (``fold``): input records through ``processor`` (the live agent's
    `CaseProcessor`). ``changelog``: the target's ``case-fold`` changelog topic, with
    ``target_partitions`` partitions; ``owns(key)``: whether a case (its UTF-8 key) is
    this process's (its partition group), for :meth:`restore`. ``counts``: what happened
    to the records, ``applied``, ``duplicate``, ``dead_lettered`` and
    ``dead_lettered:<REASON>``."""

    name = "fold"

    def __init__(self, processor: CaseProcessor, store: StateStore, *, changelog: str,
                 target_partitions: int, owns: Callable[[bytes], bool]) -> None:
        self.processor = processor
        self.store = store
        self.changelog = changelog
        self.target_partitions = target_partitions
        self.owns = owns
        self.counts: Counter[str] = Counter()
        #: a case's changelog partition (murmur2 in Python: once per case, not per batch)
        self._partition = lru_cache(maxsize=8192)(
            lambda key: partition_for(key, target_partitions))

    def restore(self, key: bytes | None, value: bytes | None) -> bool:
        """One record of the changelog; True when it is this process's and was applied."""
        if key is None or key.startswith(_RESERVED) or not self.owns(key):
            return False
        self.store.apply(key, value)
        return True

    def step(self, records: list[InRecord]) -> list[OutRecord]:
        """The outputs of one batch: the changelog records of the cases it changed (their
        states already in the store), then the processor's outputs in its order."""
        result = self.processor.process(records, lambda case_id, _rec: self.store.get(case_id))
        self.store.put_many((case_id, data) for case_id, (data, _rec) in result.states.items())
        out = [OutRecord(self.changelog, key, data, partition=self._partition(key))
               for key, data in ((case_id.encode("utf-8"), data)
                                 for case_id, (data, _rec) in result.states.items())]
        out.extend(result.outputs)
        for key, n in result.counts.items():  # OutcomeKey: (dept, type, outcome, reason, ...)
            self.counts[key[2]] += n
            if key[2] == DEAD_LETTERED:
                self.counts[f"{DEAD_LETTERED}:{key[3]}"] += n
        return out

    def output_failed(self, rec: InRecord, why: str) -> OutRecord:
        """The ``OUTPUT_FAILED`` dead letter of ``rec`` whose output was refused for good
        (`stream_apps.output.OutputProducer`'s ``on_failed``), counted as such (the record
        was counted applied already: its state advanced, as in the worker)."""
        dead, tally = self.processor.output_failed(rec, why)
        self.counts[f"{tally.result}:{tally.reason}"] += 1
        return dead


class RouteStage:
    """Step 2 (``route``): case-activity records through ``router`` (the live
    `MaterialRouter`). ``counts``: ``materials`` routed, ``other`` activity records,
    ``unreadable``, ``index_records`` written. No state.

    Only the records whose bytes hold the name of a material event type go to the router
    (the others are counted ``other``): a CaseActivity of a MaterialSubmitted holds
    ``MaterialSubmitted`` as its ``event_type`` (an Avro string is its UTF-8 bytes), so
    no material is left out, and the router decodes about a fifth of the records (a
    record that names a type without being one is decoded and left out by the router
    itself). A record too broken to decode is counted ``other`` here unless it names one,
    where the live router counts it ``unreadable``."""

    name = "route"

    def __init__(self, router: MaterialRouter) -> None:
        self.router = router
        self.counts: Counter[str] = Counter()

    def restore(self, key: bytes | None, value: bytes | None) -> bool:
        return False

    def step(self, records: list[InRecord]) -> list[OutRecord]:
        named = [r for r in records
                 if r.value is None or any(name in r.value for name in _MATERIAL_NAMES)]
        self.counts["other"] += len(records) - len(named)
        result = self.router.route(named)
        self.counts["materials"] += len(result.materials)
        self.counts["other"] += result.other
        self.counts["unreadable"] += len(result.unreadable)
        self.counts["index_records"] += len(result.outputs)
        return result.outputs

    def output_failed(self, rec: InRecord, why: str) -> OutRecord:  # pragma: no cover
        raise AssertionError("route outputs name no source record")


class IndexStage:
    """Step 3 (``index``): material-index records through ``indexer`` (the live
    `MaterialIndexer`), each changed bucket into the store and the target's
    ``material-index`` changelog (``changelog``) on the record's own partition.
    ``counts``: outcomes (``new``, ``replay``, ``replaced``, ``overflow``), ``links``
    (emitted, replays' included) and ``unreadable``."""

    name = "index"

    def __init__(self, indexer: MaterialIndexer, store: StateStore, *, changelog: str) -> None:
        self.indexer = indexer
        self.store = store
        self.changelog = changelog
        self.counts: Counter[str] = Counter()

    def restore(self, key: bytes | None, value: bytes | None) -> bool:
        if key is None or key.startswith(_RESERVED):
            return False
        self.store.apply(key, value)
        return True

    def step(self, records: list[InRecord]) -> list[OutRecord]:
        result = self.indexer.process(records, lambda key, _rec: self.store.get(key))
        self.store.put_many((key, data) for key, (data, _rec) in result.buckets.items())
        out = [OutRecord(self.changelog, key.encode("utf-8"), data, partition=rec.partition)
               for key, (data, rec) in result.buckets.items()]
        out.extend(result.outputs)
        for _kind, outcome in result.outcomes:
            self.counts[outcome] += 1
        self.counts["links"] += len(result.links)
        self.counts["unreadable"] += result.unreadable
        return out

    def output_failed(self, rec: InRecord, why: str) -> OutRecord:  # pragma: no cover
        raise AssertionError("index outputs name no source record")


def merge_counts(into: dict[str, int], counts: Mapping[str, int]) -> None:
    """Add ``counts`` to ``into`` (the reports of several processes)."""
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n
