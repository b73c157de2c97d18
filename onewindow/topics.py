"""Topic names, the key rule (key = case_id, UTF-8), the partition rule and the
replication rule (how many copies, how many acknowledge), in one place.

Input topics are `dept.<code>.events`, one per department; output topics are the
four of interfaces.md. A deployment (or a test) may put a prefix in front of every
name (`ONEWINDOW_TOPIC_PREFIX`) so that several stacks can share one cluster.

The partition of a keyed input record is the Java client's default rule (interfaces.md,
Kafka: `murmur2(key) & 0x7fffffff mod partitions`, librdkafka's `murmur2_random`), so a
department's Java, Go or Python client, the project's SDK and the stream worker's
`WRONG_PARTITION` check agree: :func:`partition_for`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_MURMUR2_SEED = 0x9747B28C
_MURMUR2_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF


def record_key(case_id: str) -> bytes:
    """Every input and case-keyed output record is keyed by case_id, UTF-8."""
    return case_id.encode("utf-8")


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: 32-bit MurmurHash2 of ``data``, seed ``0x9747b28c``.

    ``bytes -> int``, the signed 32-bit value Java returns (``-2**31 <= h < 2**31``), so
    it compares directly with Kafka's own test vectors (``"21" -> -973932308``). It is
    librdkafka's ``rd_murmur2`` too (the same bits, read unsigned there).
    """
    length = len(data)
    h = (_MURMUR2_SEED ^ length) & _MASK32
    full = length & ~3
    for i in range(0, full, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _MURMUR2_M) & _MASK32
        k ^= k >> 24
        k = (k * _MURMUR2_M) & _MASK32
        h = ((h * _MURMUR2_M) & _MASK32) ^ k
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= data[full + 2] << 16
        if tail >= 2:
            h ^= data[full + 1] << 8
        h ^= data[full]
        h = (h * _MURMUR2_M) & _MASK32
    h ^= h >> 13
    h = (h * _MURMUR2_M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a keyed record belongs to: ``(murmur2(key) & 0x7fffffff) % partitions``.

    ``(bytes, int > 0) -> int in [0, partitions)``. The Java producer's default
    partitioner for a keyed record (``Utils.toPositive(Utils.murmur2(key)) % n``) and
    librdkafka's ``murmur2_random`` (interfaces.md, Kafka: partitioning). A record without
    a key has no partition of its own (Java and librdkafka spread those), so it is not an
    argument here.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def copied_partition(key: bytes | None, partition: int, source_partitions: int,
                     target_partitions: int) -> int:
    """The partition an input record takes when its topic of ``source_partitions``
    partitions is copied into one of ``target_partitions`` (at least as many: `onewindow
    copy-inputs`, docs/operations.md, *Growing the partition count*), so that the copy
    derives what the source derived:

    - a keyed record on its key's partition: its key's partition of the target
      (:func:`partition_for`);
    - a keyed record on another partition (the case-state worker dead-letters it
      ``WRONG_PARTITION``): the partition after its key's in the target, so that it is
      dead-lettered there too, not applied;
    - a record without a key (dead-lettered wherever it lies): ``partition`` mod the
      target's count.

    ``(bytes | None, int in [0, source), int >= 1, int >= source) -> int in [0, target)``;
    ValueError when ``target_partitions < source_partitions``."""
    if target_partitions < source_partitions:
        raise ValueError(f"a copy keeps or grows the partition count: {source_partitions} "
                         f"-> {target_partitions}")
    if key is None:
        return partition % target_partitions
    home = partition_for(key, target_partitions)
    if partition == partition_for(key, source_partitions):
        return home
    return (home + 1) % target_partitions


#: the most copies of a partition the project asks for: three survive one broker lost
#: and a second one restarting (docs/operations.md, "A three-broker cluster")
MAX_REPLICATION = 3


def replication_for(brokers: int) -> int:
    """The replication factor of every topic on a cluster of ``brokers`` brokers:
    ``min(3, brokers)``. ``int >= 1 -> int in [1, 3]``; ValueError below 1."""
    if brokers < 1:
        raise ValueError(f"a cluster has at least 1 broker, got {brokers}")
    return min(MAX_REPLICATION, brokers)


def min_insync_for(replication: int) -> int:
    """``min.insync.replicas`` for a topic of ``replication`` copies: 2 from three copies
    on (an acknowledged ``acks=all`` write is on two brokers, so one broker may die without
    losing it, and writes go on while one is down), else 1 (with one or two copies a
    second acknowledgement would stop every write while a broker is down).
    ``int >= 1 -> 1 | 2``; ValueError below 1."""
    if replication < 1:
        raise ValueError(f"a replication factor is at least 1, got {replication}")
    return 2 if replication >= 3 else 1


def durability_config(replication: int) -> dict[str, str]:
    """The topic settings every topic is created with at ``replication`` copies:
    ``min.insync.replicas`` (:func:`min_insync_for`) and no unclean leader election (a
    replica that missed acknowledged writes never becomes leader: the partition waits
    for an in-sync one instead of losing them)."""
    return {"min.insync.replicas": str(min_insync_for(replication)),
            "unclean.leader.election.enable": "false"}


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    def input(self, department: str) -> str:
        """The topic a department publishes to (and owns)."""
        return f"{self.prefix}dept.{department}.events"

    def inputs(self, departments: Iterable[str]) -> list[str]:
        return [self.input(d) for d in sorted(departments)]

    def department_of(self, topic: str) -> str | None:
        """The owner of an input topic, or None for any other topic."""
        head, tail = f"{self.prefix}dept.", ".events"
        if topic.startswith(head) and topic.endswith(tail) and len(topic) > len(head + tail):
            return topic[len(head) : -len(tail)]
        return None

    @property
    def case_state(self) -> str:
        return f"{self.prefix}onewindow.case-state"

    @property
    def case_activity(self) -> str:
        return f"{self.prefix}onewindow.case-activity"

    @property
    def material_links(self) -> str:
        return f"{self.prefix}onewindow.material-links"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}onewindow.dead-letters"

    @property
    def calendar_checks(self) -> str:
        """The case-state app's control topic: a record on partition ``p`` asks the worker
        owning ``p`` to check its cases against its working-day calendar
        (`stream_apps.calendar_checks`). Co-partitioned with the inputs; written by the
        stream principal (a worker on start, `onewindow recompute-deadlines`)."""
        return f"{self.prefix}onewindow.calendar-checks"

    @property
    def case_state_app(self) -> str:
        """The case-state stream app's Faust app id: its consumer group, and the prefix
        (`<id>-`) of its internal topics (the table's changelog)."""
        return f"{self.prefix}onewindow-case-state"

    @property
    def materials_app(self) -> str:
        """The materials stream app's Faust app id (group, internal-topic prefix)."""
        return f"{self.prefix}onewindow-materials"

    @property
    def case_fold_changelog(self) -> str:
        """The changelog of the case-state app's table ``case-fold`` (the name Faust
        gives it: ``<app id>-<table>-changelog``), created by provisioning."""
        return f"{self.case_state_app}-case-fold-changelog"

    @property
    def material_index_changelog(self) -> str:
        """The changelog of the materials app's table ``material-index``."""
        return f"{self.materials_app}-material-index-changelog"

    @property
    def leader_topics(self) -> tuple[str, str]:
        """Each stream app's leader topic (Faust's ``<app id>-__assignor-__leader``, one
        partition), which every worker declares at its start: created by provisioning, so
        that a worker starting while a broker is down finds it (Faust would create it
        with the topics' replication, which two brokers of three cannot give: issue 17)."""
        return tuple(f"{app}-__assignor-__leader"  # type: ignore[return-value]
                     for app in (self.case_state_app, self.materials_app))

    def outputs(self) -> tuple[str, ...]:
        return (self.case_state, self.case_activity, self.material_links, self.dead_letters)

    def names(self, departments: Iterable[str] = ()) -> list[str]:
        """The topic names of this generation named here: the inputs of ``departments``,
        the outputs, the control topic and the two changelogs (the materials app's
        repartition topic, `onewindow.provision`, is shorter than its changelog)."""
        return [*self.inputs(departments), *self.outputs(), self.calendar_checks,
                self.case_fold_changelog, self.material_index_changelog]


#: Kafka's longest topic name (``Topic.MAX_NAME_LENGTH``)
MAX_TOPIC_NAME = 249
#: the characters Kafka allows in a topic name (``Topic.LEGAL_CHARS``)
_TOPIC_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]*")


def prefix_problem(prefix: str, departments: Iterable[str] = ()) -> str | None:
    """Why ``prefix`` cannot stand in front of this project's topic names, or None when it
    can. ``str -> str | None``. Kafka takes a topic name of at most 249 characters
    ``[A-Za-z0-9._-]``; the longest name a generation has (`Topics.names`, the inputs
    of ``departments`` included) must fit. The empty prefix is the default generation."""
    if not _TOPIC_NAME_CHARS.fullmatch(prefix):
        bad = next(c for c in prefix if not _TOPIC_NAME_CHARS.fullmatch(c))
        return (f"a Kafka topic name holds only letters, digits, '.', '_' and '-', "
                f"not {bad!r}")
    longest = max(Topics(prefix).names(departments), key=len)
    if len(longest) > MAX_TOPIC_NAME:
        return (f"its {len(prefix)} characters make the topic {longest[:40]}... "
                f"{len(longest)} characters long, over Kafka's {MAX_TOPIC_NAME}")
    return None



def partition_counts(metadata: Any) -> dict[str, int]:
    """Topic name -> partition count of a metadata answer (confluent-kafka's
    ``ClusterMetadata``: ``.topics`` of ``TopicMetadata``), the topics it lists with an
    error (not authorised, being created) left out."""
    return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}


def missing_topics_problem(have: Mapping[str, int], topics: Topics,
                           principal: str) -> str | None:
    """Why a stream worker must not start on a generation whose output topics the
    cluster does not list to ``principal`` (``have``: topic name -> partition count, as
    it lists them), or None when it lists every one. They are missing, or ``principal``
    may not see them: in both cases the generation was not provisioned, or not for this
    prefix (the worker then ended in Faust's traceback when it declared its changelog)."""
    missing = [n for n in topics.outputs() if n not in have]
    if not missing:
        return None
    what = "none of the output topics" if len(missing) == len(topics.outputs()) \
        else f"{len(missing)} of the output topics ({missing[0]})"
    return (f"{what} of prefix {topics.prefix!r} are visible to {principal}: run "
            f"`onewindow provision` with ONEWINDOW_TOPIC_PREFIX={topics.prefix} first, or "
            "check the prefix (docs/operations.md, \"The Kafka trust boundary\")")


def partition_count_problem(have: Mapping[str, int], topics: Topics,
                            departments: Iterable[str], partitions: int) -> str | None:
    """Why a stream worker configured for ``partitions`` must not run on a generation
    whose topics have ``have`` partitions (topic name -> count, as the cluster lists
    them; topics it does not list are left out), or None when every one of the
    generation's co-partitioned topics (the inputs of ``departments`` and the outputs)
    has that count.

    A worker places cases by murmur2 over its configured count (`partition_for`): with
    another count than the topics', it dead-letters most records as WRONG_PARTITION and
    commits past them (a newcomer ran a worker without ONEWINDOW_PARTITIONS=12 on a
    12-partition generation: 222 of 428 records dead-lettered, nothing said)."""
    names = [*topics.inputs(departments), *topics.outputs()]
    other = sorted({have[n] for n in names if n in have and have[n] != partitions})
    if not other:
        return None
    example = next(n for n in names if n in have and have[n] != partitions)
    return (f"the topics of prefix {topics.prefix!r} have {other[0]} partitions "
            f"({example}), but this worker is set for {partitions} (ONEWINDOW_PARTITIONS): "
            f"set ONEWINDOW_PARTITIONS={other[0]} (docs/operations.md, "
            "\"The partition count\")")
