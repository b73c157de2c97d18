"""Duplicate-material detection (domain.md section 5), free of Faust.

Two steps, each a thin Faust agent in `stream_apps.materials_app`:

1. `MaterialRouter` reads `onewindow.case-activity` (only events the case-state app
   validated and applied reach it), keeps MaterialSubmitted / CertificateIssued, and
   emits one *index record* per candidate key of the material (`routed_keys`) to the
   repartition topic `<prefix>onewindow.material-index`, keyed by that key. Every
   material sharing a key lands in one partition.
2. `MaterialIndexer` reads that topic. Its table maps an index key to a *bucket*: the
   materials that key holds (`Material.to_dict`, one JSON line each). A new material is
   compared with every one its bucket holds by the pure `link()` on both whole materials;
   each link goes to `onewindow.material-links`, keyed `material_a|material_b`.

Order independence: a pair sharing a key meets in that key's bucket whichever arrives
second, and its verdict is a pure function of the two materials. A pair sharing two keys
meets twice; it is emitted only at its *owner key*, the first key the two share in the
order sha, doc, hold (a pure function of both materials too), so each pair is emitted
once and counted once. A replayed material (same id again: a duplicate input re-emitted
by the case-state app, or a restart) re-emits its links: the table may have saved it
before a crash while its links were not sent, and the links are identical (the read
model upserts by pair).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from onewindow.codec import Codec
from onewindow.domain.materials import (
    AVOIDING_VERDICTS,
    CERTIFICATE_ISSUED,
    MATERIAL_SUBMITTED,
    Link,
    Material,
    VerdictKind,
    canonical,
    index_keys,
    link,
    material_from_event,
    order_key,
)
from onewindow.errors import DecodeError
from stream_apps.case_processor import InRecord, OutRecord

MATERIAL_EVENTS = frozenset({MATERIAL_SUBMITTED, CERTIFICATE_ISSUED})

#: Most materials one index key holds. A bucket is one table value and one changelog
#: record; Kafka's default record limit is 1 MB and an entry is ~300 bytes of JSON, so
#: 2,000 entries (~600 KB) leave room. docs/materials.md has the measured sizes.
MAX_PER_KEY = 2000

# Outcomes of one index record (metrics label values).
NEW = "new"
REPLAY = "replay"
REPLACED = "replaced"
OVERFLOW = "overflow"

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def routed_keys(m: Material) -> list[str]:
    """The index keys a material is routed to: `index_keys(m)` (sha, doc, hold, in that
    order) without the `hold:` key when it has fewer than two declared fields. The
    `hold:` key exists only for SAME_CONTENT, which needs two declared keys in common;
    CONFLICT and SAME_DOCUMENT always share the `doc:` key, EXACT the `sha:` key."""
    keys = index_keys(m)
    if len(m.declared_fields) < 2:
        return [k for k in keys if not k.startswith("hold:")]
    return keys


def key_kind(key: str) -> str:
    """`sha`, `doc` or `hold`: which index a key belongs to."""
    return key.split(":", 1)[0]


def owner_key(a: Material, b: Material) -> str | None:
    """The one key at which the pair {a, b} is emitted: the first routed key they share
    (sha, then doc, then hold). Both lists keep that order and each holds at most one key
    of each kind, so the answer is the same from either side."""
    theirs = set(routed_keys(b))
    for k in routed_keys(a):
        if k in theirs:
            return k
    return None


def avoidable_of(a: Material, b: Material, lk: Link) -> Material | None:
    """The material of the pair that the link makes avoidable, or None: the newer one
    (by `order_key`) when the verdict is EXACT or SAME_DOCUMENT, both have the same
    holder identity and the newer one is a MaterialSubmitted (docs/materials.md)."""
    if lk.verdict not in AVOIDING_VERDICTS or a.holder.key != b.holder.key:
        return None
    newer = a if order_key(a) > order_key(b) else b
    return newer if newer.kind == MATERIAL_SUBMITTED else None


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
    head, sep, line = value.partition(b"\t")
    if not sep:
        raise ValueError("not an index record")
    return Material.from_dict(json.loads(line)), line, int(head) if head else None


class MaterialRouter:
    """case-activity records in, one index record per routed key out."""

    def __init__(self, *, codec: Codec, index_topic: str) -> None:
        self.codec = codec
        self.index_topic = index_topic

    def route(self, records: Iterable[InRecord]) -> RouteResult:
        result = RouteResult()
        for rec in records:
            try:
                if rec.value is None:
                    raise DecodeError("UNDECODABLE", "tombstone")
                activity = self.codec.decode_record(rec.value, "CaseActivity")
                if activity["event_type"] not in MATERIAL_EVENTS:
                    result.other += 1
                    continue
                event = self.codec.from_json(json.loads(activity["event_json"]))
                m = material_from_event(event)
            except (DecodeError, ValueError, KeyError, TypeError) as exc:
                result.unreadable.append(getattr(exc, "reason", type(exc).__name__))
                continue
            ts = activity.get("source_timestamp")
            value = index_value(m, _ms(ts))
            for key in routed_keys(m):
                result.outputs.append(OutRecord(self.index_topic, key.encode("utf-8"), value))
            result.materials.append((m.kind, m.material_type))
        return result


# --------------------------------------------------------------------------- step 2


class Bucket:
    """The materials one index key holds, and their encoded lines (kept so that an
    append does not re-encode the others)."""

    __slots__ = ("lines", "materials", "pos")

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.materials: list[Material] = []
        self.pos: dict[str, int] = {}

    @classmethod
    def decode(cls, raw: bytes | None) -> Bucket:
        b = cls()
        if raw:
            for line in raw.split(b"\n"):
                b.add(Material.from_dict(json.loads(line)), line)
        return b

    def encode(self) -> bytes:
        return b"\n".join(self.lines)

    def add(self, m: Material, line: bytes | None = None) -> None:
        self.pos[m.material_id] = len(self.materials)
        self.materials.append(m)
        self.lines.append(line if line is not None else _line(m))

    def replace(self, i: int, m: Material) -> None:
        self.materials[i] = m
        self.lines[i] = _line(m)

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
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.codec = codec
        self.links_topic = links_topic
        self.max_per_key = max_per_key
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
        if i is not None:
            held = bucket.materials[i]
            chosen = canonical(held, m)
            if chosen == held:
                outcome, m = REPLAY, held
            else:
                bucket.replace(i, chosen)
                changed[key] = rec
                outcome, m = REPLACED, chosen
        elif len(bucket) >= self.max_per_key:
            outcome = OVERFLOW  # compared, not held: docs/materials.md "Bounds"
        else:
            outcome = NEW
        result.outcomes.append((kind, outcome))
        new = outcome != REPLAY
        hold = kind == "hold"
        numbered = m.document_number is not None
        mine: list[str] | None = None
        arrived_avoidable = False
        for other in bucket.materials:
            if other.material_id == m.material_id:
                continue
            # At a hold: key two numbered materials can only be linked through their
            # doc: or sha: key, which owns the pair: skip them without comparing.
            if hold and numbered and other.document_number is not None:
                continue
            lk = link(m, other)
            if lk is None:
                continue
            if mine is None:
                mine = routed_keys(m)
            if _first_shared(mine, other) != key:
                continue
            result.outputs.append(self._link_record(lk, m, other, source_ms, now))
            avoid = avoidable_of(m, other, lk)
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

    def _link_record(self, lk: Link, m: Material, other: Material, source_ms: int | None,
                     now: datetime) -> OutRecord:
        a, b = (m, other) if m.material_id == lk.material_a else (other, m)
        avoid = avoidable_of(a, b, lk)
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
            "source_timestamp": None if source_ms is None
            else datetime.fromtimestamp(source_ms / 1000, UTC),
        })
        return OutRecord(self.links_topic, link_key(lk.material_a, lk.material_b), value)


def link_key(material_a: str, material_b: str) -> bytes:
    """The record key of a link: the same pair always lands in the same partition."""
    return f"{material_a}|{material_b}".encode()


def _first_shared(mine: list[str], other: Material) -> str | None:
    theirs = set(routed_keys(other))
    for k in mine:
        if k in theirs:
            return k
    return None


def _ms(ts: Any) -> int | None:
    if ts is None:
        return None
    if isinstance(ts, datetime):
        return int(ts.timestamp() * 1000)
    return int(ts)
