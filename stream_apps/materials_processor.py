"""Duplicate-material detection (domain.md section 5), free of Faust.

Two steps, each a thin Faust agent in `stream_apps.materials_app`:

1. `MaterialRouter` reads `onewindow.case-activity` (only events the case-state app
   validated and applied reach it), keeps MaterialSubmitted / CertificateIssued, and
   emits one *index entry* per candidate key of the material (`index_keys`) to the
   repartition topic `<prefix>onewindow.material-index`: a record per entry keyed by its
   key, or, given the topic's partition count (the worker does), the entries of a batch
   *packed* into one record per partition of their keys (`pack_entries`). Every
   material sharing a key lands in one partition either way.
2. `MaterialIndexer` reads that topic (packed records and one-entry records alike). Its
   table maps an index key to its *buckets*: the materials that key holds
   (`Material.to_dict` of their `indexed` form, one JSON line each), at most
   ``max_per_bucket`` and ``MAX_BUCKET_BYTES`` a bucket (`bucket_admits`); a full one is
   sealed (table key `sealed_key`) and the key opens another, whose header line names
   the sealed ones; a key holds at most ``max_per_key`` (`key_admits`; a material past
   that is compared, not held, counted and logged: docs/materials.md "Bounds"). A new
   material is compared only with the held ones that can still link with it
   (`KeyIndex.candidates`; the pure `link()` on both whole materials); each link goes to
   `onewindow.material-links`, keyed `material_a|material_b`.

Every rule (which keys, which key owns a pair, which held materials are candidates, the
verdict, which material a link makes avoidable, what a key and a bucket hold) is in
`onewindow.domain.material_index` and `onewindow.domain.materials`; this module decodes,
keeps the buckets and encodes.

Order independence: a pair sharing a key meets in that key's bucket whichever arrives
second, and its verdict is a pure function of the two materials. A pair sharing two keys
meets twice; it is emitted only at its *owner key* (`owner_key`: a pure function of both
materials too), so each pair is emitted once and counted once. A replayed material (same
id again: a duplicate input re-emitted by the case-state app, or a restart) re-emits its
links: the table may have saved it before a crash while its links were not sent, and the
links are identical (the read model upserts by pair).
"""

from __future__ import annotations

import json
import logging
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from onewindow.codec import Codec
from onewindow.domain.clock import to_ms
from onewindow.domain.limits import (
    MAX_BUCKET_BYTES,
    MAX_MATERIALS_PER_BUCKET,
    MAX_MATERIALS_PER_KEY,
)
from onewindow.domain.material_index import (
    INDEX_KINDS,
    KeyIndex,
    bucket_admits,
    index_keys,
    indexed,
    key_admits,
    key_kind,
    owner_key,
)
from onewindow.domain.materials import (
    MATERIAL_EVENTS,
    Link,
    Material,
    VerdictKind,
    avoidable_of,
    canonical,
    link,
    material_from_event,
)
from onewindow.errors import DecodeError
from onewindow.security.id_protection import IdProtector, is_protected
from onewindow.security.protected_form import activity_event
from onewindow.topics import partition_for
from stream_apps.records import InRecord, OutRecord

#: Most materials one index key holds, all its buckets together
#: (`onewindow.domain.limits.MAX_MATERIALS_PER_KEY`; the default of
#: ``ONEWINDOW_MATERIALS_MAX_PER_KEY``).
MAX_PER_KEY = MAX_MATERIALS_PER_KEY
#: Most materials one stored bucket holds (`onewindow.domain.limits`). A bucket is one
#: table value and one changelog record under Kafka's 1 MB: an entry is ~440 bytes of
#: JSON on scenario data (the holder, the number and declared values with a digit are
#: keyed hashes, docs/privacy.md; long values digests, `indexed`), so 1,500 entries take
#: ~660 KB; ``MAX_BUCKET_BYTES`` bounds a bucket of larger entries. docs/materials.md has
#: the measured sizes.
MAX_PER_BUCKET = MAX_MATERIALS_PER_BUCKET
#: A key holding at least this many materials is kept decoded between batches (a large
#: key is touched by most batches; decoding 1,500 entries takes about 20 ms) ...
CACHE_MIN_ENTRIES = 100
#: ... and the keys kept hold at most this many materials together: some 3 KB each
#: decoded with their stored bytes, so about 16 MB when full (docs/operations.md,
#: "Memory of the stream workers"). A larger key is decoded for each batch.
CACHE_MAX_ENTRIES = 5_000
#: Bucket lines kept decoded (`MaterialIndexer`, about 2.5 KB each): each material's line
#: comes in up to three index entries close together, and again whenever a bucket
#: holding it is read.
ENTRY_CACHE_ENTRIES = 2_048
#: Keys whose limit is logged (once each), at most.
_MAX_WARNED = 1_000
_log = logging.getLogger(__name__)

# Outcomes of one index record (metrics label values).
NEW = "new"
REPLAY = "replay"
REPLACED = "replaced"
OVERFLOW = "overflow"

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------- step 1


@dataclass
class RouteResult:
    outputs: list[OutRecord] = field(default_factory=list)
    #: (kind, material type) of each material routed
    materials: list[tuple[str, str]] = field(default_factory=list)
    #: activity records that were not materials
    other: int = 0
    #: reason of each record that could not be read (never expected: our own topic)
    unreadable: list[str] = field(default_factory=list)
    #: index entries routed (one per routed key of each material; as many as
    #: ``outputs`` unless they are packed)
    entries: int = 0


def index_value(m: Material, source_ms: int | None) -> bytes:
    """An index record: the source timestamp in ms (or nothing), a tab, then the
    material's bucket line, so the indexer stores the line as it came."""
    return b"%s\t%s" % (b"" if source_ms is None else b"%d" % source_ms, _line(m))


#: How a *packed* index record starts (`pack_entries`): never an index record's first
#: byte (a digit of its timestamp, or the tab).
_PACKED = b"\x00\x01"
#: Most entries of a packed index record: the indexer takes a few packed records a batch
#: (`stream_apps.materials_app`), so a batch stays about as long as before.
MAX_PACKED_ENTRIES = 250
#: Most bytes of a packed index record's value, under the output producer's 1 MB record.
MAX_PACKED_BYTES = 800_000
_LEN = struct.Struct(">I")


def pack_entries(entries: list[tuple[bytes, bytes]]) -> bytes:
    """One packed index record of ``(index key, index value)`` entries: `_PACKED`, then
    for each its key and its value, each a 4-byte big-endian length and the bytes."""
    parts = [_PACKED]
    for key, value in entries:
        parts += (_LEN.pack(len(key)), key, _LEN.pack(len(value)), value)
    return b"".join(parts)


def index_entries(key: bytes | None, value: bytes | None) -> list[tuple[bytes, bytes]]:
    """The ``(index key, index value)`` entries of a record of the index topic: those of
    a packed record (`pack_entries`), or the record itself (one per routed key, as
    written before records were packed, and by a router without ``partitions``).
    Raises ``ValueError`` for a packed record cut short."""
    value = value or b""
    if not value.startswith(_PACKED):
        return [(key or b"", value)]
    out = []
    at, end = len(_PACKED), len(value)
    while at < end:
        fields = []
        for _ in range(2):
            if at + 4 > end:
                raise ValueError("packed index record cut short")
            (n,) = _LEN.unpack_from(value, at)
            at += 4
            if at + n > end:
                raise ValueError("packed index record cut short")
            fields.append(value[at:at + n])
            at += n
        out.append((fields[0], fields[1]))
    return out


def held_entry(line: bytes) -> tuple[Material, bytes]:
    """The material of a bucket line (`Material.to_dict` as JSON) in the form an index
    holds it (`indexed`), and the line of that form: ``line`` itself unless it was
    written before materials were indexed. Raises like `Material.from_dict` and
    ``json.loads``."""
    m = Material.from_dict(json.loads(line))
    held = indexed(m)
    return (m, line) if held is m else (held, _line(held))


def parse_index_value(value: bytes) -> tuple[Material, bytes, int | None]:
    """``(material, its bucket line, source timestamp in ms or None)`` of an index record
    (:func:`index_value`). Raises ``ValueError`` (also ``json.JSONDecodeError``),
    ``KeyError`` or ``TypeError`` for a record that is not one."""
    head, sep, line = value.partition(b"\t")
    if not sep:
        raise ValueError("not an index record")
    return Material.from_dict(json.loads(line)), line, int(head) if head else None


class MaterialRouter:
    """case-activity records in, one index record per routed key out.

    The case-state app writes each event's JSON form protected
    (`onewindow.domain.protection`): the holder as ``id_hash`` + ``id_masked``, numbers
    and declared values compared by keyed hashes. A record written before it did (plain
    ID numbers) is protected here with ``ids``, the same key, so the index keys, the
    index records, the buckets and their changelog never hold a plaintext ID number and
    old and new materials compare alike.
    """

    def __init__(self, *, codec: Codec, index_topic: str, ids: IdProtector,
                 partitions: int | None = None) -> None:
        """``partitions``: the index topic's partition count; given, the index entries of
        a batch are *packed*, one record per partition they belong to (`pack_entries`,
        a partition by its entries' keys: `onewindow.topics.partition_for`, murmur2 as
        Kafka's), so the indexer's consumer takes one record for hundreds of entries;
        ``None``: one record per entry, keyed by its index key."""
        self.codec = codec
        self.index_topic = index_topic
        self.ids = ids
        self.partitions = partitions

    def route(self, records: Iterable[InRecord]) -> RouteResult:
        """Index records for the materials among case-activity ``records``: one per
        `index_keys` key of each, keyed by the key (UTF-8), value `index_value` with the
        activity's source timestamp. Never raises for a bad record: it is counted in
        `RouteResult.unreadable`."""
        result = RouteResult()
        for rec in records:
            try:
                if rec.value is None:
                    raise DecodeError("UNDECODABLE", "tombstone")
                activity = self.codec.decode_record(rec.value, "CaseActivity")
                if activity["event_type"] not in MATERIAL_EVENTS:
                    result.other += 1
                    continue
                event = activity_event(self.codec, activity)  # v3 Avro, or v1/v2 JSON
                if not is_protected(event):
                    event = self.ids.protect_event(event)
                m = indexed(material_from_event(event))
            except (DecodeError, ValueError, KeyError, TypeError) as exc:
                result.unreadable.append(getattr(exc, "reason", type(exc).__name__))
                continue
            value = index_value(m, to_ms(activity.get("source_timestamp")))
            for key in index_keys(m):
                result.outputs.append(OutRecord(self.index_topic, key.encode("utf-8"), value))
            result.materials.append((m.kind, m.material_type))
        if self.partitions is not None:
            result.entries = len(result.outputs)
            result.outputs = self._packed(result.outputs, self.partitions)
        return result

    def _packed(self, outputs: list[OutRecord], partitions: int) -> list[OutRecord]:
        """The entries ``outputs`` as packed records: per partition, in their order, at
        most `MAX_PACKED_ENTRIES` entries and `MAX_PACKED_BYTES` each; keyed by their
        first entry's key (so a producer that places records by key puts it where
        ``partition`` says)."""
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for out in outputs:
            key = out.key or b""
            by_partition.setdefault(partition_for(key, partitions), []).append(
                (key, out.value))
        packed = []
        for partition, entries in by_partition.items():
            chunk: list[tuple[bytes, bytes]] = []
            size = len(_PACKED)
            for key, value in entries:
                n = 8 + len(key) + len(value)
                if chunk and (size + n > MAX_PACKED_BYTES
                              or len(chunk) >= MAX_PACKED_ENTRIES):
                    packed.append(OutRecord(self.index_topic, chunk[0][0],
                                            pack_entries(chunk), partition=partition))
                    chunk, size = [], len(_PACKED)
                chunk.append((key, value))
                size += n
            packed.append(OutRecord(self.index_topic, chunk[0][0], pack_entries(chunk),
                                    partition=partition))
        return packed


# --------------------------------------------------------------------------- step 2


class Bucket:
    """One stored bucket of an index key (one table value): the materials it holds
    (`indexed` form), their encoded lines (kept so that an append does not re-encode the
    others), ``sealed``, the number of sealed buckets its header line names (only the
    open bucket of a key that has some carries one: ``#<n>``; 0: no header), and
    ``size``, the bytes of :meth:`encode`."""

    __slots__ = ("lines", "materials", "sealed", "size")

    def __init__(self, sealed: int = 0) -> None:
        self.lines: list[bytes] = []
        self.materials: list[Material] = []
        self.sealed = sealed
        self.size = len(self._header())

    def _header(self) -> bytes:
        return b"%s%d" % (_HEADER, self.sealed) if self.sealed else b""

    @classmethod
    def decode(cls, raw: bytes | None,
               entry: Callable[[bytes], tuple[Material, bytes]] | None = None) -> Bucket:
        """A stored bucket; an entry stored before entries were `indexed` is held indexed
        from here on (so old and new entries compare alike). ``entry``: how a line is
        read (`held_entry`, or a memo of it). Raises ``ValueError`` (also
        ``json.JSONDecodeError``) or ``KeyError`` for a value that is not a bucket."""
        b = cls()
        if raw:
            read = entry or held_entry
            lines = raw.split(b"\n")
            if lines[0].startswith(_HEADER):
                b.sealed = _sealed_count(lines[0])
                b.size = len(lines[0])
                lines = lines[1:]
            for line in lines:
                b.add(*read(line))
        return b

    def encode(self) -> bytes:
        header = self._header()
        return b"\n".join([header, *self.lines] if header else self.lines)

    def admits(self, entry_bytes: int, max_materials: int, max_bytes: int) -> bool:
        """Whether one more entry of ``entry_bytes`` fits (`bucket_admits`)."""
        return bucket_admits(len(self.lines), self.size, entry_bytes,
                             max_materials=max_materials, max_bytes=max_bytes)

    def add(self, m: Material, line: bytes | None = None) -> None:
        line = line if line is not None else _line(m)
        self.size += len(line) + (1 if self.size else 0)
        self.materials.append(m)
        self.lines.append(line)

    def replace(self, i: int, m: Material, line: bytes | None = None) -> None:
        line = line if line is not None else _line(m)
        self.size += len(line) - len(self.lines[i])
        self.materials[i] = m
        self.lines[i] = line

    def unseal(self) -> None:
        """Drop the header: the bucket becomes a sealed one."""
        if self.sealed:
            self.size -= len(self._header()) + (1 if self.lines else 0)
            self.sealed = 0

    def __len__(self) -> int:
        return len(self.materials)


#: The first line of a key's open bucket when the key has sealed buckets: ``#<n>``. An
#: entry line is a JSON object, so it starts with ``{``.
_HEADER = b"#"


def _sealed_count(header: bytes) -> int:
    return int(header[len(_HEADER):])


def sealed_key(key: str, number: int) -> str:
    """The table key of sealed bucket ``number`` (1, 2, ...) of index key ``key``:
    ``<number>#<key>``. An index key starts with its kind (``sha``, ``doc``, ``hold``),
    never with a digit, so no index key is one."""
    return f"{number}#{key}"


def _line(m: Material) -> bytes:
    return _JSON.encode(m.to_dict()).encode("utf-8")


class KeyState:
    """Everything one index key holds, as a batch reads and changes it: its buckets in
    order (sealed ones 1..n under `sealed_key`, then the open one under the key itself,
    whose header names n), the raw values they were read from or last written as
    (``raws``, same order), and the `KeyIndex` of all their materials in that order."""

    __slots__ = ("buckets", "index", "key", "raws", "starts")

    def __init__(self, key: str, raws: list[bytes | None],
                 entry: Callable[[bytes], tuple[Material, bytes]] | None = None) -> None:
        """``raws``: the stored values of the sealed buckets 1..n, then the open one;
        ``entry``: how a line is read (`Bucket.decode`)."""
        self.key = key
        self.raws = raws
        self.index = index = KeyIndex(key)
        if len(raws) == 1:  # most keys: one bucket, often none stored yet
            self.buckets = [Bucket.decode(raws[0], entry)]
            self.starts = [0]
            for m in self.buckets[0].materials:
                index.add(m)
            return
        self.buckets = [Bucket.decode(raw, entry) for raw in raws]
        self.starts = []
        for b in self.buckets[:-1]:
            b.unseal()  # a sealed bucket has no header (defensive: none is stored)
        for b in self.buckets:
            self.starts.append(len(index))
            for m in b.materials:
                index.add(m)

    def table_key(self, j: int) -> str:
        """The table key of bucket ``j`` (0-based, the open one last)."""
        return self.key if j == len(self.buckets) - 1 else sealed_key(self.key, j + 1)

    def locate(self, i: int) -> tuple[int, int]:
        """``(bucket, place in it)`` of the material at place ``i`` of the key."""
        j = bisect_right(self.starts, i) - 1
        return j, i - self.starts[j]

    def seal(self) -> int:
        """Make the open bucket sealed bucket n+1 and open an empty one; its number."""
        number = len(self.buckets)
        self.buckets[-1].unseal()
        self.starts.append(len(self.index))
        self.buckets.append(Bucket(number))
        self.raws.append(None)
        return number

    def encode_changed(self, changed: set[int]) -> list[tuple[str, bytes]]:
        """``(table key, value)`` of the buckets ``changed`` (0-based), sealed ones first
        and the open one last, so that a crash between two writes never leaves an open
        bucket naming a sealed one that was not written; ``raws`` follows them."""
        out = []
        for j in sorted(changed):
            value = self.buckets[j].encode()
            self.raws[j] = value
            out.append((self.table_key(j), value))
        return out


@dataclass(frozen=True, slots=True)
class FoundLink:
    """One link emitted, for metrics."""

    verdict: VerdictKind
    material_type: str
    #: False when re-emitted for a replayed material (already counted once)
    new: bool
    holders_differ: bool = False
    has_differing_fields: bool = False
    #: (department, material type) of the submission it makes avoidable
    avoidable: tuple[str, str] | None = None


@dataclass
class IndexResult:
    #: table key -> its new encoded bucket, and the record that last changed it, in the
    #: order they must be written (a key's sealed buckets before its open one)
    buckets: dict[str, tuple[bytes, InRecord]] = field(default_factory=dict)
    outputs: list[OutRecord] = field(default_factory=list)
    links: list[FoundLink] = field(default_factory=list)
    #: (index kind, outcome) of each index record
    outcomes: list[tuple[str, str]] = field(default_factory=list)
    #: materials held by the index key (all its buckets) each record was compared with
    bucket_sizes: list[int] = field(default_factory=list)
    #: held materials compared with a new one (`KeyIndex.candidates`), all records
    comparisons: int = 0
    unreadable: int = 0
    #: (department, material type) of each new material found avoidable on arrival,
    #: once per material and bucket
    avoidable_on_arrival: list[tuple[str, str]] = field(default_factory=list)


class MaterialIndexer:
    """Index records in; bucket writes and link records out.

    ``max_per_key``: most materials an index key holds (`key_admits`; past it a material
    is compared, not held, counted as ``overflow`` and logged once per key);
    ``max_per_bucket`` and ``max_bucket_bytes``: most materials and bytes of one stored
    bucket (`bucket_admits`; a key whose open bucket is full seals it and opens another).
    A key holding at least ``cache_min`` materials is kept decoded between batches (at most
    ``cache_entries`` materials in all) and used again while its stored values are the
    bytes it was written as.
    """

    def __init__(self, *, codec: Codec, links_topic: str, max_per_key: int = MAX_PER_KEY,
                 max_per_bucket: int = MAX_PER_BUCKET,
                 max_bucket_bytes: int = MAX_BUCKET_BYTES,
                 cache_min: int = CACHE_MIN_ENTRIES, cache_entries: int = CACHE_MAX_ENTRIES,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.codec = codec
        self.links_topic = links_topic
        self.max_per_key = max_per_key
        self.max_per_bucket = max_per_bucket
        self.max_bucket_bytes = max_bucket_bytes
        self.clock = clock
        self.cache_min = cache_min
        # index key -> (its stored values, its decoded state), least recently used first,
        # and the materials they hold in all (plain dicts: cheaper than cachetools here)
        self._kept: dict[str, tuple[tuple[bytes | None, ...], KeyState]] = {}
        self._kept_entries = 0
        self.cache_entries = cache_entries
        self._write_link = codec.writer("MaterialLink")
        self._warned: set[str] = set()
        # bucket line -> (material, held line): a material's line comes in an index
        # record for each of its keys, and again whenever a bucket holding it is read.
        # Two generations of at most ENTRY_CACHE_ENTRIES / 2 lines each: a line read from
        # the older one moves to the newer; when the newer is full, it becomes the older.
        self._entries: dict[bytes, tuple[Material, bytes]] = {}
        self._entries_old: dict[bytes, tuple[Material, bytes]] = {}

    def _entry(self, line: bytes) -> tuple[Material, bytes]:
        """`held_entry` of ``line``, remembered (materials are immutable)."""
        got = self._entries.get(line)
        if got is None:
            got = self._entries_old.get(line)
            if got is None:
                got = held_entry(line)
            if len(self._entries) >= ENTRY_CACHE_ENTRIES // 2:
                self._entries_old, self._entries = self._entries, {}
            self._entries[line] = got
        return got

    def _keep(self, key: str, raws: tuple[bytes | None, ...], state: KeyState) -> None:
        """Keep ``state`` decoded, the most recently used, within ``cache_entries``."""
        size = len(state.index)
        if size > self.cache_entries:
            return
        self._kept[key] = (raws, state)
        self._kept_entries += size
        while self._kept_entries > self.cache_entries:
            _raws, old = self._kept.pop(next(iter(self._kept)))
            self._kept_entries -= len(old.index)

    def process(self, records: Iterable[InRecord],
                load: Callable[[str, InRecord], bytes | None]) -> IndexResult:
        """`load(table_key, record)` reads a stored bucket (an index key's open bucket, or
        one of its sealed ones: `sealed_key`); the record is the one being processed, so
        a partitioned store knows where to look."""
        result = IndexResult()
        live: dict[str, KeyState] = {}
        changed: dict[str, tuple[set[int], InRecord]] = {}
        now_ms = to_ms(self.clock())
        for rec in records:
            try:
                entries = index_entries(rec.key, rec.value)
            except ValueError:
                result.unreadable += 1
                continue
            for raw_key, value in entries:
                try:
                    key = raw_key.decode("utf-8")
                    head, sep, line = value.partition(b"\t")  # `index_value`
                    if not sep:
                        raise ValueError("not an index record")
                    source_ms = int(head) if head else None
                    # indexed: a record routed before materials were indexed
                    m, line = self._entry(line)
                    state = live.get(key)
                    if state is None:
                        state = live[key] = self._load(key, rec, load)
                except (ValueError, KeyError, TypeError):
                    result.unreadable += 1
                    continue
                result.bucket_sizes.append(len(state.index))
                self._one(key, m, line, source_ms, state, rec, now_ms, changed, result)
        for key, (buckets, rec) in changed.items():
            state = live[key]
            for table_key, value in state.encode_changed(buckets):
                result.buckets[table_key] = (value, rec)
        for key, state in live.items():
            if len(state.index) >= self.cache_min:
                self._keep(key, tuple(state.raws), state)
        return result

    def _load(self, key: str, rec: InRecord,
              load: Callable[[str, InRecord], bytes | None]) -> KeyState:
        """The key's buckets as stored: its open bucket, and the sealed ones its header
        names; the decoded state kept from an earlier batch when they are the bytes it
        was written as."""
        open_raw = load(key, rec)
        sealed = 0
        if open_raw and open_raw.startswith(_HEADER):
            sealed = _sealed_count(open_raw.partition(b"\n")[0])
        raws = [load(sealed_key(key, j), rec) for j in range(1, sealed + 1)]
        raws.append(open_raw)
        kept = self._kept.pop(key, None)
        if kept is not None:
            self._kept_entries -= len(kept[1].index)
            if kept[0] == tuple(raws):
                return kept[1]
        return KeyState(key, raws, self._entry)

    def _one(self, key: str, m: Material, line: bytes, source_ms: int | None,
             state: KeyState, rec: InRecord, now_ms: int,
             changed: dict[str, tuple[set[int], InRecord]], result: IndexResult) -> None:
        kind = key_kind(key)
        index = state.index
        i = index.pos.get(m.material_id)
        new = True
        seal = False
        if i is not None:
            held = index.materials[i]
            if canonical(held, m) == held:
                outcome, m, new = REPLAY, held, False
            else:  # the newcomer is the copy that stands for the id
                j, at = state.locate(i)
                bucket = state.buckets[j]
                if bucket.size + len(line) - len(bucket.lines[at]) <= self.max_bucket_bytes:
                    bucket.replace(at, m, line)
                    index.replace(m)
                    self._changed(changed, key, rec, j)
                    outcome = REPLACED
                else:  # the other copy does not fit: the held one stays (docs/materials.md)
                    outcome, m, new = OVERFLOW, held, False
        elif not key_admits(len(index), max_per_key=self.max_per_key):
            outcome = OVERFLOW  # compared, not held: docs/materials.md "Bounds"
            self._warn_full(key, len(index))
        elif state.buckets[-1].admits(len(line), self.max_per_bucket, self.max_bucket_bytes):
            outcome = NEW
        elif state.buckets[-1].lines and Bucket(len(state.buckets)).admits(
                len(line), self.max_per_bucket, self.max_bucket_bytes):
            outcome, seal = NEW, True  # the open bucket is full: another one
        else:
            outcome = OVERFLOW  # larger than an empty bucket (never valid input)
        result.outcomes.append((kind, outcome))
        arrived_avoidable = False
        candidates = index.candidates(m)
        result.comparisons += len(candidates)
        for other in candidates:
            lk = link(m, other)
            if lk is None or (kind not in INDEX_KINDS
                              and owner_key(m, other) != key):
                continue
            avoid = avoidable_of(m, other, lk)
            result.outputs.append(self._link_record(lk, m, other, avoid, source_ms, now_ms))
            arrived_avoidable = arrived_avoidable or (avoid is m and new)
            result.links.append(FoundLink(
                lk.verdict, m.material_type, new, lk.holders_differ,
                bool(lk.differing_fields),
                None if avoid is None else (avoid.department, avoid.material_type)))
        if arrived_avoidable:
            result.avoidable_on_arrival.append((m.department, m.material_type))
        if outcome == NEW:
            if seal:
                self._changed(changed, key, rec, state.seal() - 1)
            state.buckets[-1].add(m, line)
            index.add(m)
            self._changed(changed, key, rec, len(state.buckets) - 1)

    @staticmethod
    def _changed(changed: dict[str, tuple[set[int], InRecord]], key: str, rec: InRecord,
                 bucket: int) -> None:
        seen = changed.get(key)
        if seen is None:
            changed[key] = ({bucket}, rec)
        else:
            seen[0].add(bucket)
            changed[key] = (seen[0], rec)

    def _warn_full(self, key: str, held: int) -> None:
        if key in self._warned or len(self._warned) >= _MAX_WARNED:
            return
        self._warned.add(key)
        _log.warning("index key %s holds %d materials, its limit (max_per_key): a further "
                     "material there is compared with them but not held, so two that both "
                     "come later are not linked (counted as outcome=overflow; "
                     "docs/materials.md \"Bounds\")", key, held)

    def _link_record(self, lk: Link, m: Material, other: Material, avoid: Material | None,
                     source_ms: int | None, now_ms: int) -> OutRecord:
        a, b = (m, other) if m.material_id == lk.material_a else (other, m)
        value = self._write_link({
            "material_a": lk.material_a,
            "material_b": lk.material_b,
            "verdict": str(lk.verdict),
            "differing_fields": list(lk.differing_fields),
            "holders_differ": lk.holders_differ,
            "avoidable_material": None if avoid is None else avoid.material_id,
            "case_a": a.case_id or None,
            "case_b": b.case_id or None,
            "found_at": now_ms,  # ms: the writer takes them as they are
            "source_timestamp": source_ms,
        })
        return OutRecord(self.links_topic, link_key(lk.material_a, lk.material_b), value)


def link_key(material_a: str, material_b: str) -> bytes:
    """The record key of a link, ``b"<material_a>|<material_b>"`` (UTF-8): the same pair
    always lands in the same partition."""
    return f"{material_a}|{material_b}".encode()
