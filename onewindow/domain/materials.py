"""Materials submitted more than once: the pure verdict rules of domain.md section 5.

Everything here is standard library only and free of I/O and clocks.  The stream
app (RocksDB tables via :meth:`Material.to_dict`, the verdict and avoidable material of
each pair), the sinks and the counter screen all call these functions, so the rules
exist once.  How the stream app finds candidate pairs is in
:mod:`onewindow.domain.material_index`; how a holder's materials fold into documents in
:mod:`onewindow.domain.documents`.

Choices where the contract is silent (docs/materials.md explains them):

* **Holder identity** is ``(id_type, normalised id_number)``.  The holder's
  ``name`` is kept for display but never compared: two holders with the same
  identity are the same holder even if the name was typed differently.
* **Protected events** (:mod:`onewindow.domain.protection`: what the stream apps carry,
  no plaintext ID number) are compared by their keyed hashes instead: the holder by
  ``(id_type, id_hash)``, the document number by ``document_number_hash``, a declared
  value by its ``declared_fields_hash`` entry when it has one.  The hash is a
  deterministic function of the normalised text, so every rule gives the same verdict on
  the protected form as on the plain one, provided all the materials compared are in the
  same form (one key); nothing here hashes.  A name
  printed *on the document* belongs in ``declared_fields``, where a difference
  does count (CONFLICT).
* **Normalisation** (domain.md section 5) is :mod:`onewindow.domain.normalise`:
  :func:`~onewindow.domain.normalise.normalise_number` for document and holder id
  numbers (NFKC, upper case, white space, format characters and every dash, U+2212
  included, removed; bracket variants folded to ``()``),
  :func:`~onewindow.domain.normalise.normalise_value` for declared values.
* **Empty values**: a ``document_number`` that is absent, ``None`` or empty after
  normalisation is "no number"; an empty ``sha256`` never makes an EXACT pair.
* **Replays**: a material id seen twice is one material, never a self-link.  If
  the two copies differ (an upstream bug), :func:`canonical` picks one by an
  order-independent rule so the link set still does not depend on arrival order.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import combinations
from types import MappingProxyType
from typing import Any

from onewindow.domain.clock import EPOCH
from onewindow.domain.events import CERTIFICATE_ISSUED, MATERIAL_SUBMITTED
from onewindow.domain.normalise import normalise_number, normalise_value
from onewindow.domain.protection import DECLARED_HASH, ID_HASH, NUMBER_HASH

__all__ = [
    "AVOIDING_VERDICTS",
    "MATERIAL_EVENTS",
    "Holder",
    "Link",
    "Material",
    "Verdict",
    "VerdictKind",
    "all_links",
    "avoidable_of",
    "avoidable_set",
    "canonical",
    "dedupe",
    "is_avoidable",
    "link",
    "material_from_event",
    "order_key",
    "verdict",
]

_KINDS = (MATERIAL_SUBMITTED, CERTIFICATE_ISSUED)
#: The event types that are materials (domain.md section 5: MaterialSubmitted and
#: CertificateIssued alike); :func:`material_from_event` refuses any other.
MATERIAL_EVENTS = frozenset(_KINDS)

_MICRO = timedelta(microseconds=1)


# --------------------------------------------------------------------------- the material


@dataclass(frozen=True, slots=True)
class Holder:
    """Whom a document belongs to.  ``key`` (id_type, identity) is its identity;
    ``name`` is carried for display only and never compared by the rules.

    ``identity`` is whichever string stands for the ID number: the normalised number,
    or its keyed hash in a protected event (module docstring)."""

    id_type: str
    identity: str
    name: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.id_type, self.identity)


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
            "h": [self.holder.id_type, self.holder.identity, self.holder.name],
            "n": self.document_number,
            "s": self.sha256,
            "f": [list(kv) for kv in self.declared_fields],
            "t": (self.occurred_at - EPOCH) // _MICRO,
            "c": self.case_id,
            "d": self.department,
            "fo": self.form,
            "k": 0 if self.kind == MATERIAL_SUBMITTED else 1,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Material:
        """The material of a :meth:`to_dict` dict.  Raises ``ValueError`` for an unknown
        record version ``v`` and ``KeyError`` for a missing key."""
        if data.get("v") != 1:
            raise ValueError(f"unknown material record version {data.get('v')!r}")
        id_type, identity, name = data["h"]
        return cls(
            material_id=data["id"],
            material_type=data["ty"],
            holder=Holder(id_type, identity, name),
            document_number=data["n"],
            sha256=data["s"],
            declared_fields=tuple(map(tuple, data["f"])),
            occurred_at=EPOCH + timedelta(microseconds=data["t"]),
            case_id=data["c"],
            department=data["d"],
            form=data["fo"],
            kind=_KINDS[data["k"]],
        )


def material_from_event(event: Mapping[str, Any]) -> Material:
    """The material of a ``MaterialSubmitted`` or ``CertificateIssued`` event dict
    (the shape of docs/architecture.md).  A certificate becomes a material whose id is
    its ``certificate_id``, whose type is its ``certificate_type``, form ``ELECTRONIC``.

    A protected event (:mod:`onewindow.domain.protection`) gives the material compared
    by its hashes: ``holder.id_hash`` as the holder's identity, ``document_number_hash``
    as its number and the ``declared_fields_hash`` entries as those values.

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
    hashed = event.get(DECLARED_HASH) or {}
    number = event.get(NUMBER_HASH) or normalise_number(event.get("document_number")) or None
    return Material(
        material_id=material_id,
        material_type=material_type,
        holder=Holder(
            id_type=holder.get("id_type") or "",
            identity=holder.get(ID_HASH) or normalise_number(holder.get("id_number")),
            name=holder.get("name") or "",
        ),
        document_number=number,
        sha256=(event.get("sha256") or "").lower(),
        declared_fields=tuple(sorted((k, hashed[k] if k in hashed else normalise_value(v))
                                     for k, v in declared.items())),
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
        """The other end of the link from ``material_id``; ``ValueError`` when
        ``material_id`` is neither end."""
        if material_id == self.material_a:
            return self.material_b
        if material_id == self.material_b:
            return self.material_a
        raise ValueError(f"{material_id!r} is not an end of {self}")

    def as_triple(self) -> tuple[str, str, str]:
        """``(material_a, material_b, verdict)`` as in the examples' expected links."""
        return (self.material_a, self.material_b, str(self.verdict))

    def to_dict(self) -> dict[str, Any]:
        """``{material_a, material_b, verdict, differing_fields, holders_differ}``, JSON-safe
        (the fields of the MaterialLink record)."""
        return {
            "material_a": self.material_a,
            "material_b": self.material_b,
            "verdict": str(self.verdict),
            "differing_fields": list(self.differing_fields),
            "holders_differ": self.holders_differ,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Link:
        """The link of a :meth:`to_dict`-shaped mapping (other keys, such as a stored
        row's, are ignored).  Raises ``KeyError`` for a missing end or verdict and
        ``ValueError`` for an unknown verdict or ends out of order."""
        return cls(
            material_a=data["material_a"],
            material_b=data["material_b"],
            verdict=VerdictKind(data["verdict"]),
            differing_fields=tuple(data.get("differing_fields") or ()),
            holders_differ=bool(data.get("holders_differ", False)),
        )


def link(a: Material, b: Material) -> Link | None:
    """The link of ``{a, b}`` (domain.md section 5: ``material_a < material_b``), or
    ``None`` when the pair has no :func:`verdict`.  Symmetric in ``a`` and ``b``."""
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
    """``material_id -> material``, one per id (see :func:`canonical`), in order of
    first appearance."""
    out: dict[str, Material] = {}
    for m in materials:
        seen = out.get(m.material_id)
        out[m.material_id] = m if seen is None else canonical(seen, m)
    return out


# --------------------------------------------------------------------------- link sets


def all_links(materials: Iterable[Material]) -> set[Link]:
    """The reference link set of domain.md section 5: :func:`link` of every unordered
    pair of distinct material ids (replays deduplicated by :func:`dedupe`), O(n^2).
    :func:`onewindow.domain.material_index.links_via_index` finds the same set."""
    unique = sorted(dedupe(materials).values(), key=lambda m: m.material_id)
    links: set[Link] = set()
    for a, b in combinations(unique, 2):
        lk = link(a, b)
        if lk is not None:
            links.add(lk)
    return links


# --------------------------------------------------------------------------- avoidable


def order_key(m: Material) -> tuple[datetime, str]:
    """``(occurred_at, material_id)``: the sort key of "came before" in the avoidable
    rule of domain.md section 5 (and of a document's submissions)."""
    return (m.occurred_at, m.material_id)


def avoidable_of(a: Material, b: Material, lk: Link) -> Material | None:
    """The material of the pair ``{a, b}`` that their link ``lk`` makes avoidable, or
    ``None`` (domain.md section 5, "avoidable"; symmetric in ``a`` and ``b``).

    That is the later of the two by :func:`order_key` when the verdict is EXACT or
    SAME_DOCUMENT, both have the same holder identity and the later one is a
    MaterialSubmitted: a CertificateIssued is never avoidable itself (it was issued,
    not handed in) but does make later submissions so.  Returns ``a`` or ``b`` itself.

    Raises ``ValueError`` when ``lk`` is not the link of ``a`` and ``b``.
    """
    ends = (lk.material_a, lk.material_b)
    if ends != (a.material_id, b.material_id) and ends != (b.material_id, a.material_id):
        raise ValueError(f"{lk} is not the link of {a.material_id!r} and {b.material_id!r}")
    if lk.verdict not in AVOIDING_VERDICTS or a.holder.key != b.holder.key:
        return None
    later = a if order_key(a) > order_key(b) else b
    return later if later.kind == MATERIAL_SUBMITTED else None


def is_avoidable(m: Material, others_linked: Iterable[tuple[Material, Link]]) -> bool:
    """Whether the material ``m`` was already on file: some link of ``m`` makes ``m``
    avoidable (:func:`avoidable_of`, the rule itself).

    ``others_linked`` holds ``(other, link)`` with ``link`` the link between ``m`` and
    ``other``.  Raises ``ValueError`` for a link that is not between ``m`` and ``other``.
    """
    return any(avoidable_of(m, other, lk) is m for other, lk in others_linked)


def avoidable_set(materials: Iterable[Material]) -> set[str]:
    """The reference: ids of every avoidable material among ``materials`` (domain.md
    section 5; :func:`is_avoidable` over :func:`all_links`, O(n^2))."""
    by_id = dedupe(materials)
    partners: dict[str, list[tuple[Material, Link]]] = defaultdict(list)
    for lk in all_links(by_id.values()):
        a, b = by_id[lk.material_a], by_id[lk.material_b]
        partners[a.material_id].append((b, lk))
        partners[b.material_id].append((a, lk))
    return {mid for mid, m in by_id.items() if is_avoidable(m, partners.get(mid, ()))}
