"""Materials submitted more than once: the pure verdict rules of domain.md section 5.

Everything here is standard library only and free of I/O and clocks.  The stream
app (candidate finding by :func:`index_keys`, RocksDB tables via
:meth:`Material.to_dict`), the sinks and the counter screen all call these
functions, so the rules exist once.

Choices where the contract is silent (docs/materials.md explains them):

* **Holder identity** is ``(id_type, normalised id_number)``.  The holder's
  ``name`` is kept for display but never compared: two holders with the same
  identity are the same holder even if the name was typed differently.  A name
  printed *on the document* belongs in ``declared_fields``, where a difference
  does count (CONFLICT).
* **Dashes**: after NFKC only ``-`` (U+002D) is removed from numbers.  NFKC maps
  the full-width ``－`` (U+FF0D) and the small hyphen-minus (U+FE63) to it; the
  minus sign U+2212, the hyphen U+2010 and the dashes U+2013/U+2014 are *not*
  mapped and *not* removed, as the contract names ``-`` only.
* **Spaces**: every character for which ``str.isspace()`` holds after NFKC is
  removed from numbers (NFKC already turns U+3000 and U+00A0 into U+0020).
* **Empty values**: a ``document_number`` that is absent, ``None`` or empty after
  normalisation is "no number"; an empty ``sha256`` never makes an EXACT pair.
* **Replays**: a material id seen twice is one material, never a self-link.  If
  the two copies differ (an upstream bug), :func:`canonical` picks one by an
  order-independent rule so the link set still does not depend on arrival order.
"""

from __future__ import annotations

import json
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import combinations
from types import MappingProxyType
from typing import Any

__all__ = [
    "AVOIDING_VERDICTS",
    "Holder",
    "Link",
    "Material",
    "Verdict",
    "VerdictKind",
    "all_links",
    "avoidable_set",
    "canonical",
    "dedupe",
    "index_keys",
    "is_avoidable",
    "link",
    "links_via_index",
    "material_from_event",
    "normalise_number",
    "normalise_value",
    "order_key",
    "verdict",
]

MATERIAL_SUBMITTED = "MaterialSubmitted"
CERTIFICATE_ISSUED = "CertificateIssued"
_KINDS = (MATERIAL_SUBMITTED, CERTIFICATE_ISSUED)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


# --------------------------------------------------------------------------- normalisation


def normalise_number(value: str | None) -> str:
    """A document number or holder id number as compared: NFKC, upper case,
    every white-space character and every ``-`` removed.

    ``"４４０１　０６１９－９００１"`` (full-width) and ``"4401 0619-9001"`` both
    give ``"440106199001"``.  Returns ``""`` for ``None``.
    """
    if not value:
        return ""
    text = unicodedata.normalize("NFKC", value).upper()
    return "".join(ch for ch in text if ch != "-" and not ch.isspace())


def normalise_value(value: str | None) -> str:
    """A declared field value as compared: NFKC, stripped, inner runs of white
    space collapsed to one space.  ``None`` gives ``""``."""
    if value is None:
        return ""
    return " ".join(unicodedata.normalize("NFKC", str(value)).split())


# --------------------------------------------------------------------------- the material


@dataclass(frozen=True, slots=True)
class Holder:
    """Whom a document belongs to.  ``key`` (id_type, id_number) is its identity;
    ``name`` is carried for display only and never compared by the rules."""

    id_type: str
    id_number: str  # normalised
    name: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.id_type, self.id_number)


@dataclass(frozen=True, slots=True)
class Material:
    """What the verdicts need of a MaterialSubmitted or CertificateIssued, normalised.

    ``declared_fields`` is a tuple of ``(key, normalised value)`` pairs sorted by key
    (so the material is hashable); :attr:`fields` gives it as a read-only mapping.
    Equality and hashing ignore nothing but the internal lookup dict.
    """

    material_id: str
    material_type: str
    holder: Holder
    document_number: str | None
    sha256: str
    declared_fields: tuple[tuple[str, str], ...]
    occurred_at: datetime
    case_id: str
    department: str
    form: str
    kind: str
    _fields: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError(f"material {self.material_id!r}: occurred_at must be tz-aware")
        if self.kind not in _KINDS:
            raise ValueError(f"material {self.material_id!r}: unknown kind {self.kind!r}")
        object.__setattr__(self, "_fields", dict(self.declared_fields))

    @property
    def fields(self) -> Mapping[str, str]:
        return MappingProxyType(self._fields)

    # -- JSON-safe compact form for state stores -------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-safe dict; ``from_dict(m.to_dict()) == m``.  ``occurred_at`` is
        stored as integer epoch microseconds (exact, restored as UTC: same instant)."""
        return {
            "v": 1,
            "id": self.material_id,
            "ty": self.material_type,
            "h": [self.holder.id_type, self.holder.id_number, self.holder.name],
            "n": self.document_number,
            "s": self.sha256,
            "f": [list(kv) for kv in self.declared_fields],
            "t": (self.occurred_at - _EPOCH) // _MICRO,
            "c": self.case_id,
            "d": self.department,
            "fo": self.form,
            "k": 0 if self.kind == MATERIAL_SUBMITTED else 1,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Material:
        if data.get("v") != 1:
            raise ValueError(f"unknown material record version {data.get('v')!r}")
        id_type, id_number, name = data["h"]
        return cls(
            material_id=data["id"],
            material_type=data["ty"],
            holder=Holder(id_type, id_number, name),
            document_number=data["n"],
            sha256=data["s"],
            declared_fields=tuple((k, v) for k, v in data["f"]),
            occurred_at=_EPOCH + timedelta(microseconds=data["t"]),
            case_id=data["c"],
            department=data["d"],
            form=data["fo"],
            kind=_KINDS[data["k"]],
        )


def material_from_event(event: Mapping[str, Any]) -> Material:
    """The material of a ``MaterialSubmitted`` or ``CertificateIssued`` event dict
    (the shape of docs/architecture.md).  A certificate becomes a material whose id is
    its ``certificate_id``, whose type is its ``certificate_type``, form ``ELECTRONIC``.

    Raises ``ValueError`` for any other event type, a missing holder or a naive
    ``occurred_at``.
    """
    kind = event.get("type")
    if kind == MATERIAL_SUBMITTED:
        material_id = event["material_id"]
        material_type = event["material_type"]
        form = event.get("form") or ""
    elif kind == CERTIFICATE_ISSUED:
        material_id = event["certificate_id"]
        material_type = event["certificate_type"]
        form = "ELECTRONIC"
    else:
        raise ValueError(f"not a material event: type {kind!r}")
    holder = event.get("holder")
    if not holder:
        raise ValueError(f"material {material_id!r} has no holder")
    declared = event.get("declared_fields") or {}
    return Material(
        material_id=material_id,
        material_type=material_type,
        holder=Holder(
            id_type=holder.get("id_type") or "",
            id_number=normalise_number(holder.get("id_number")),
            name=holder.get("name") or "",
        ),
        document_number=normalise_number(event.get("document_number")) or None,
        sha256=(event.get("sha256") or "").lower(),
        declared_fields=tuple(sorted((k, normalise_value(v)) for k, v in declared.items())),
        occurred_at=event["occurred_at"],
        case_id=event.get("case_id") or "",
        department=event.get("department") or "",
        form=form,
        kind=kind,
    )


# --------------------------------------------------------------------------- verdicts


class VerdictKind(StrEnum):
    """The verdicts of domain.md section 5, in the order they are tried."""

    CONFLICT = "CONFLICT"
    EXACT = "EXACT"
    SAME_DOCUMENT = "SAME_DOCUMENT"
    SAME_CONTENT = "SAME_CONTENT"


AVOIDING_VERDICTS = frozenset({VerdictKind.EXACT, VerdictKind.SAME_DOCUMENT})


@dataclass(frozen=True, slots=True)
class Verdict:
    """A pair's verdict.  For CONFLICT, ``differing_fields`` are the keys present in
    both ``declared_fields`` with different values (sorted) and ``holders_differ``
    says whether the holder identities differ; both are empty/False otherwise."""

    kind: VerdictKind
    differing_fields: tuple[str, ...] = ()
    holders_differ: bool = False


_EXACT = Verdict(VerdictKind.EXACT)
_SAME_DOCUMENT = Verdict(VerdictKind.SAME_DOCUMENT)
_SAME_CONTENT = Verdict(VerdictKind.SAME_CONTENT)


def verdict(a: Material, b: Material) -> Verdict | None:
    """The first rule of domain.md section 5 that holds for ``{a, b}``, or ``None``.

    Symmetric: ``verdict(a, b) == verdict(b, a)``.  The same material id on both sides
    is one material (a replay), never a pair: ``None``.
    """
    if a.material_id == b.material_id:
        return None
    same_type = a.material_type == b.material_type
    number = a.document_number
    if same_type and number is not None and number == b.document_number:
        # Rules 1 and 3 share their precondition; rule 2 sits between them.
        holders_differ = a.holder.key != b.holder.key
        fa, fb = a._fields, b._fields
        differing = tuple(sorted(k for k in fa.keys() & fb.keys() if fa[k] != fb[k]))
        if holders_differ or differing:
            return Verdict(VerdictKind.CONFLICT, differing, holders_differ)
        if a.sha256 and a.sha256 == b.sha256:
            return _EXACT
        return _SAME_DOCUMENT
    if a.sha256 and a.sha256 == b.sha256:
        return _EXACT
    if (
        same_type
        # Not both numbered: two numbers reaching here are different, so two documents.
        and (number is None or b.document_number is None)
        and a.holder.key == b.holder.key
    ):
        fa, fb = a._fields, b._fields
        common = fa.keys() & fb.keys()
        if len(common) >= 2 and all(fa[k] == fb[k] for k in common):
            return _SAME_CONTENT
    return None


@dataclass(frozen=True, slots=True, order=True)
class Link:
    """A pair with a verdict; ``material_a < material_b`` (string order)."""

    material_a: str
    material_b: str
    verdict: VerdictKind
    differing_fields: tuple[str, ...] = ()
    holders_differ: bool = False

    def __post_init__(self) -> None:
        if not self.material_a < self.material_b:
            raise ValueError(
                f"link needs material_a < material_b: {self.material_a!r}, {self.material_b!r}"
            )

    def other(self, material_id: str) -> str:
        """The other end of the link from ``material_id``."""
        if material_id == self.material_a:
            return self.material_b
        if material_id == self.material_b:
            return self.material_a
        raise ValueError(f"{material_id!r} is not an end of {self}")

    def as_triple(self) -> tuple[str, str, str]:
        """``(material_a, material_b, verdict)`` as in the examples' expected links."""
        return (self.material_a, self.material_b, str(self.verdict))

    def to_dict(self) -> dict[str, Any]:
        return {
            "material_a": self.material_a,
            "material_b": self.material_b,
            "verdict": str(self.verdict),
            "differing_fields": list(self.differing_fields),
            "holders_differ": self.holders_differ,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Link:
        return cls(
            material_a=data["material_a"],
            material_b=data["material_b"],
            verdict=VerdictKind(data["verdict"]),
            differing_fields=tuple(data.get("differing_fields") or ()),
            holders_differ=bool(data.get("holders_differ", False)),
        )


def link(a: Material, b: Material) -> Link | None:
    """The link of ``{a, b}``, or ``None`` when the pair has no verdict."""
    v = verdict(a, b)
    if v is None:
        return None
    lo, hi = sorted((a.material_id, b.material_id))
    return Link(lo, hi, v.kind, v.differing_fields, v.holders_differ)


# --------------------------------------------------------------------------- replays


def _content_key(m: Material) -> str:
    return json.dumps(m.to_dict(), sort_keys=True, ensure_ascii=False)


def canonical(a: Material, b: Material) -> Material:
    """Which of two records with the same material id stands for it.

    A replay carries the same content, so either will do; if the content differs
    (an upstream bug) the one with the earliest ``occurred_at`` wins, ties broken by
    the canonical JSON of :meth:`Material.to_dict`, so the choice does not depend on
    which arrived first.
    """
    if a == b:
        return a
    ka = (a.occurred_at, _content_key(a))
    kb = (b.occurred_at, _content_key(b))
    return a if ka <= kb else b


def dedupe(materials: Iterable[Material]) -> dict[str, Material]:
    """One material per material id (see :func:`canonical`)."""
    out: dict[str, Material] = {}
    for m in materials:
        seen = out.get(m.material_id)
        out[m.material_id] = m if seen is None else canonical(seen, m)
    return out


# --------------------------------------------------------------------------- link sets


def all_links(materials: Iterable[Material]) -> set[Link]:
    """The reference: every unordered pair of distinct material ids, O(n^2)."""
    unique = sorted(dedupe(materials).values(), key=lambda m: m.material_id)
    links: set[Link] = set()
    for a, b in combinations(unique, 2):
        lk = link(a, b)
        if lk is not None:
            links.add(lk)
    return links


def index_keys(m: Material) -> list[str]:
    """The candidate keys the stream app partitions materials by.

    * ``sha:<sha256>`` (when the hash is not empty),
    * ``doc:<material_type>:<document_number>`` (when the number is present),
    * ``hold:<id_type>:<id_number>:<material_type>``.

    Any pair with a verdict shares at least one key:

    * CONFLICT and SAME_DOCUMENT need the same type and the same non-empty number,
      so both materials have the same ``doc:`` key;
    * EXACT needs the same non-empty sha256: the same ``sha:`` key;
    * SAME_CONTENT needs the same holder identity (id_type, id_number) and the same
      type: the same ``hold:`` key.

    Each key is a pure function of fields compared with ``==``, so equal fields give
    equal keys.  ``:`` inside a type or number can make two different tuples give one
    key; that only adds candidates (compared and found unlinked), never loses one.
    """
    keys = []
    if m.sha256:
        keys.append(f"sha:{m.sha256}")
    if m.document_number is not None:
        keys.append(f"doc:{m.material_type}:{m.document_number}")
    keys.append(f"hold:{m.holder.id_type}:{m.holder.id_number}:{m.material_type}")
    return keys


def links_via_index(materials: Iterable[Material]) -> set[Link]:
    """The same set as :func:`all_links`, comparing only materials that share an
    :func:`index_keys` key (how the stream app finds candidates)."""
    buckets: dict[str, list[Material]] = defaultdict(list)
    for m in dedupe(materials).values():
        for key in index_keys(m):
            buckets[key].append(m)
    links: set[Link] = set()
    compared: set[tuple[str, str]] = set()
    for bucket in buckets.values():
        for a, b in combinations(bucket, 2):
            pair = (
                (a.material_id, b.material_id)
                if a.material_id < b.material_id
                else (b.material_id, a.material_id)
            )
            if pair in compared:
                continue
            compared.add(pair)
            lk = link(a, b)
            if lk is not None:
                links.add(lk)
    return links


# --------------------------------------------------------------------------- avoidable


def order_key(m: Material) -> tuple[datetime, str]:
    """The sort key of "came before" in the avoidable rule: ``occurred_at``, then id."""
    return (m.occurred_at, m.material_id)


def is_avoidable(m: Material, others_linked: Iterable[tuple[Material, Link]]) -> bool:
    """Whether the MaterialSubmitted ``m`` was already on file.

    ``others_linked`` holds ``(other, link)`` with ``link`` the link between ``m``
    and ``other`` (passing an unrelated link raises ``ValueError``).  ``m`` is
    avoidable when some ``other`` of the same holder identity came before it and
    the link's verdict is EXACT or SAME_DOCUMENT.  A CertificateIssued is never
    avoidable itself (it was issued, not handed in) but does make later ones so.
    """
    if m.kind != MATERIAL_SUBMITTED:
        return False
    mine = order_key(m)
    for other, lk in others_linked:
        if {lk.material_a, lk.material_b} != {m.material_id, other.material_id}:
            raise ValueError(f"{lk} is not the link of {m.material_id!r} and {other.material_id!r}")
        if (
            lk.verdict in AVOIDING_VERDICTS
            and other.holder.key == m.holder.key
            and order_key(other) < mine
        ):
            return True
    return False


def avoidable_set(materials: Iterable[Material]) -> set[str]:
    """The reference: ids of every avoidable material among ``materials``."""
    by_id = dedupe(materials)
    partners: dict[str, list[tuple[Material, Link]]] = defaultdict(list)
    for lk in all_links(by_id.values()):
        a, b = by_id[lk.material_a], by_id[lk.material_b]
        partners[a.material_id].append((b, lk))
        partners[b.material_id].append((a, lk))
    return {mid for mid, m in by_id.items() if is_avoidable(m, partners.get(mid, ()))}
