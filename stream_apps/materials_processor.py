"""Duplicate-material detection (domain.md section 5), free of Faust.

Two steps, each a thin Faust agent in `stream_apps.materials_app`:

1. `MaterialRouter` reads `onewindow.case-activity` (only events the case-state app
   validated and applied reach it), keeps MaterialSubmitted / CertificateIssued, and
   emits one *index record* per candidate key of the material (`index_keys`) to the
   repartition topic `<prefix>onewindow.material-index`, keyed by that key. Every
   material sharing a key lands in one partition.
2. `MaterialIndexer` reads that topic. Its table maps an index key to a *bucket*: the
   materials that key holds (`Material.to_dict` of their `indexed` form, one JSON line
   each; at most ``MAX_PER_KEY`` and ``MAX_BUCKET_BYTES``, `bucket_admits`, a material
   past them compared, not held: docs/materials.md "Bounds"). A new material is
   compared with every one its bucket holds (`links_owned_at`: the pure `link()` on both
   whole materials); each link goes to `onewindow.material-links`, keyed
   `material_a|material_b`.

Every rule (which keys, which key owns a pair, the verdict, which material a link makes
avoidable) is in `onewindow.domain.material_index` and `onewindow.domain.materials`;
this module decodes, keeps the buckets and encodes.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from onewindow.codec import Codec
from onewindow.domain.clock import from_ms, to_ms
from onewindow.domain.limits import MAX_BUCKET_BYTES, MAX_MATERIALS_PER_KEY
from onewindow.domain.material_index import (
    bucket_admits,
    index_keys,
    indexed,
    key_kind,
    links_owned_at,
)
from onewindow.domain.materials import (
    MATERIAL_EVENTS,
    Link,
    Material,
    VerdictKind,
    avoidable_of,
    canonical,
    material_from_event,
)
from onewindow.errors import DecodeError
from onewindow.security.id_protection import IdProtector, is_protected
from onewindow.security.protected_form import activity_event
from stream_apps.records import InRecord, OutRecord

#: Most materials one index key holds (`onewindow.domain.limits.MAX_MATERIALS_PER_KEY`).
#: A bucket is one table value and one changelog record under Kafka's 1 MB: an entry is
#: ~440 bytes of JSON on scenario data (the holder, the number and declared values with
#: a digit are keyed hashes, docs/privacy.md; long values digests, `indexed`), so 1,500
#: entries take ~660 KB; ``MAX_BUCKET_BYTES`` bounds a bucket of larger entries.
#: docs/materials.md has the measured sizes.
MAX_PER_KEY = MAX_MATERIALS_PER_KEY

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


def index_value(m: Material, source_ms: int | None) -> bytes:
    """An index record: the source timestamp in ms (or nothing), a tab, then the
    material's bucket line, so the indexer stores the line as it came."""
    return b"%s\t%s" % (b"" if source_ms is None else b"%d" % source_ms, _line(m))


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

    def __init__(self, *, codec: Codec, index_topic: str, ids: IdProtector) -> None:
        self.codec = codec
        self.index_topic = index_topic
        self.ids = ids

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
        return result


# --------------------------------------------------------------------------- step 2


class Bucket:
    """The materials one index key holds (`indexed` form), their encoded lines (kept so
    that an append does not re-encode the others) and ``size``, the bytes of
    :meth:`encode`."""

    __slots__ = ("lines", "materials", "pos", "size")

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.materials: list[Material] = []
        self.pos: dict[str, int] = {}
        self.size = 0

    @classmethod
    def decode(cls, raw: bytes | None) -> Bucket:
        """A stored bucket; an entry stored before entries were `indexed` is held indexed
        from here on (so old and new entries compare alike)."""
        b = cls()
        if raw:
            for line in raw.split(b"\n"):
                m = Material.from_dict(json.loads(line))
                held = indexed(m)
                b.add(held, line if held is m else None)
        return b

    def encode(self) -> bytes:
        return b"\n".join(self.lines)

    def add(self, m: Material, line: bytes | None = None) -> None:
        line = line if line is not None else _line(m)
        self.size += len(line) + (1 if self.lines else 0)
        self.pos[m.material_id] = len(self.materials)
        self.materials.append(m)
        self.lines.append(line)

    def replace(self, i: int, m: Material, line: bytes | None = None) -> None:
        line = line if line is not None else _line(m)
        self.size += len(line) - len(self.lines[i])
        self.materials[i] = m
        self.lines[i] = line

    def __len__(self) -> int:
        return len(self.materials)


def _line(m: Material) -> bytes:
    return _JSON.encode(m.to_dict()).encode("utf-8")


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
    #: index key -> its new encoded bucket, and the record that last changed it
    buckets: dict[str, tuple[bytes, InRecord]] = field(default_factory=dict)
    outputs: list[OutRecord] = field(default_factory=list)
    links: list[FoundLink] = field(default_factory=list)
    #: (index kind, outcome) of each index record
    outcomes: list[tuple[str, str]] = field(default_factory=list)
    #: entries held by the bucket each record was compared with
    bucket_sizes: list[int] = field(default_factory=list)
    unreadable: int = 0
    #: (department, material type) of each new material found avoidable on arrival,
    #: once per material and bucket
    avoidable_on_arrival: list[tuple[str, str]] = field(default_factory=list)


class MaterialIndexer:
    """Index records in; bucket writes and link records out."""

    def __init__(self, *, codec: Codec, links_topic: str, max_per_key: int = MAX_PER_KEY,
                 max_bucket_bytes: int = MAX_BUCKET_BYTES,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.codec = codec
        self.links_topic = links_topic
        self.max_per_key = max_per_key
        self.max_bucket_bytes = max_bucket_bytes
        self.clock = clock

    def process(self, records: Iterable[InRecord],
                load: Callable[[str, InRecord], bytes | None]) -> IndexResult:
        """`load(key, record)` reads the stored bucket of an index key; the record is the
        one being processed, so a partitioned store knows where to look."""
        result = IndexResult()
        live: dict[str, Bucket] = {}
        changed: dict[str, InRecord] = {}
        now = self.clock()
        for rec in records:
            try:
                key = (rec.key or b"").decode("utf-8")
                m, line, source_ms = parse_index_value(rec.value or b"")
            except (ValueError, KeyError, TypeError):
                result.unreadable += 1
                continue
            held = indexed(m)  # a record routed before materials were indexed
            if held is not m:
                m, line = held, _line(held)
            bucket = live.get(key)
            if bucket is None:
                bucket = live[key] = Bucket.decode(load(key, rec))
            result.bucket_sizes.append(len(bucket))
            self._one(key, m, line, source_ms, bucket, rec, now, changed, result)
        for key, rec in changed.items():
            result.buckets[key] = (live[key].encode(), rec)
        return result

    def _one(self, key: str, m: Material, line: bytes, source_ms: int | None, bucket: Bucket,
             rec: InRecord, now: datetime, changed: dict[str, InRecord],
             result: IndexResult) -> None:
        kind = key_kind(key)
        i = bucket.pos.get(m.material_id)
        new = True
        if i is not None:
            held = bucket.materials[i]
            chosen = canonical(held, m)
            chosen_line = line if chosen is m else bucket.lines[i]
            if chosen == held:
                outcome, m, new = REPLAY, held, False
            elif bucket.size + len(chosen_line) - len(bucket.lines[i]) \
                    <= self.max_bucket_bytes:
                bucket.replace(i, chosen, chosen_line)
                changed[key] = rec
                outcome, m = REPLACED, chosen
            else:  # the other copy does not fit: the held one stays (docs/materials.md)
                outcome, m, new = OVERFLOW, held, False
        elif not bucket_admits(len(bucket), bucket.size, len(line),
                               max_materials=self.max_per_key,
                               max_bytes=self.max_bucket_bytes):
            outcome = OVERFLOW  # compared, not held: docs/materials.md "Bounds"
        else:
            outcome = NEW
        result.outcomes.append((kind, outcome))
        arrived_avoidable = False
        for other, lk in links_owned_at(key, m, bucket.materials):
            avoid = avoidable_of(m, other, lk)
            result.outputs.append(self._link_record(lk, m, other, avoid, source_ms, now))
            arrived_avoidable = arrived_avoidable or (avoid is m and new)
            result.links.append(FoundLink(
                lk.verdict, m.material_type, new, lk.holders_differ,
                bool(lk.differing_fields),
                None if avoid is None else (avoid.department, avoid.material_type)))
        if arrived_avoidable:
            result.avoidable_on_arrival.append((m.department, m.material_type))
        if outcome == NEW:
            bucket.add(m, line)
            changed[key] = rec

    def _link_record(self, lk: Link, m: Material, other: Material, avoid: Material | None,
                     source_ms: int | None, now: datetime) -> OutRecord:
        a, b = (m, other) if m.material_id == lk.material_a else (other, m)
        value = self.codec.encode_record("MaterialLink", {
            "material_a": lk.material_a,
            "material_b": lk.material_b,
            "verdict": str(lk.verdict),
            "differing_fields": list(lk.differing_fields),
            "holders_differ": lk.holders_differ,
            "avoidable_material": None if avoid is None else avoid.material_id,
            "case_a": a.case_id or None,
            "case_b": b.case_id or None,
            "found_at": now,
            "source_timestamp": from_ms(source_ms),
        })
        return OutRecord(self.links_topic, link_key(lk.material_a, lk.material_b), value)


def link_key(material_a: str, material_b: str) -> bytes:
    """The record key of a link, ``b"<material_a>|<material_b>"`` (UTF-8): the same pair
    always lands in the same partition."""
    return f"{material_a}|{material_b}".encode()
