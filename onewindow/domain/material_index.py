"""Candidate keys: finding every linked pair of domain.md section 5 without comparing all.

The verdicts of :mod:`onewindow.domain.materials` are defined over every pair of
materials.  The materials stream app cannot compare every pair, so it files each
material under a few *index keys* (:func:`index_keys`) and compares a material only
with those filed under the same key.  The rules here make that exact:

* every pair with a verdict shares at least one index key (so none is missed);
* a pair sharing several keys is emitted at one of them only, its *owner key*
  (:func:`owner_key`), a pure function of the two materials (so each pair is emitted,
  and counted, once whatever the arrival order);
* :func:`links_owned_at` is the comparison of one material with the materials a key
  holds, as the stream app and :func:`links_via_index` both run it.

Keys are plain strings ``<kind>:<fields>``; how they are encoded on the wire (Kafka
record keys, table keys) is the adapter's business.  Standard library only.

What a key holds is bounded (issue 13, the project's choice, docs/materials.md
"Bounds"): a material is held in :func:`indexed` form (a long declared value as its
digest: the verdicts are unchanged), and a key holds at most ``MAX_MATERIALS_PER_KEY``
materials and ``MAX_BUCKET_BYTES`` (:func:`bucket_admits`); a material past that is
compared with those held, not held itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from onewindow.domain.limits import (
    MAX_BUCKET_BYTES,
    MAX_INDEXED_VALUE_CHARS,
    MAX_MATERIALS_PER_KEY,
)
from onewindow.domain.materials import Link, Material, dedupe, link

__all__ = [
    "DOC",
    "HOLD",
    "INDEX_KINDS",
    "SHA",
    "VALUE_DIGEST",
    "bucket_admits",
    "index_keys",
    "indexed",
    "key_kind",
    "links_owned_at",
    "links_via_index",
    "owner_key",
]

#: The kinds of index key, in the order :func:`index_keys` lists them (the owner-key order).
SHA = "sha"
DOC = "doc"
HOLD = "hold"
INDEX_KINDS = (SHA, DOC, HOLD)
#: How a declared value held as its digest starts (:func:`indexed`): U+2060 WORD JOINER, a
#: format character, which no normalised value holds (domain.md section 5 drops them).
VALUE_DIGEST = "\u2060b2:"


def _held_value(value: str) -> str:
    if len(value) <= MAX_INDEXED_VALUE_CHARS:
        return value
    return VALUE_DIGEST + hashlib.blake2b(value.encode("utf-8", "surrogatepass"),
                                          digest_size=16).hexdigest()


def indexed(m: Material) -> Material:
    """The form in which an index holds and compares ``m``: each normalised declared value
    longer than ``MAX_INDEXED_VALUE_CHARS`` characters replaced by :data:`VALUE_DIGEST`
    and its BLAKE2b-128 digest (36 characters); ``m`` itself when none is. Idempotent.

    The rules of domain.md section 5 compare declared values only for equality and report
    the keys that differ, never the values, so every verdict of two indexed materials is
    the verdict of the two materials: two digests are equal only for equal values (bar a
    BLAKE2b-128 collision), and a digest never equals a value held as it is (a normalised
    value, or a keyed hash, has no format character). It bounds one entry: NFKC can make
    a 2,000-character value 36,000 characters.
    """
    fields = m.declared_fields
    if all(len(v) <= MAX_INDEXED_VALUE_CHARS for _k, v in fields):
        return m
    return dataclasses.replace(m, declared_fields=tuple((k, _held_value(v))
                                                        for k, v in fields))


def bucket_admits(held: int, held_bytes: int, entry_bytes: int, *,
                  max_materials: int = MAX_MATERIALS_PER_KEY,
                  max_bytes: int = MAX_BUCKET_BYTES) -> bool:
    """Whether a bucket holding ``held`` materials in ``held_bytes`` (its encoded value)
    may hold one more, of ``entry_bytes`` (plus a separator when it is not the first):
    at most ``max_materials`` materials and ``max_bytes`` bytes. A material it does not
    admit is still compared with those held (docs/materials.md "Bounds"); which materials
    a full key holds follows their arrival order (the first ones)."""
    return (held < max_materials
            and held_bytes + (1 if held else 0) + entry_bytes <= max_bytes)


def index_keys(m: Material) -> list[str]:
    """The index keys a material is filed (and routed) under, in the order sha, doc, hold,
    at most one of each kind:

    * ``sha:<sha256>`` when the hash is not empty;
    * ``doc:<material_type>:<document_number>`` when the number is present;
    * ``hold:<id_type>:<identity>:<material_type>`` when the material has at least two
      ``declared_fields``.

    The number and the identity are whatever strings the material compares by: in the
    stream apps, where materials come from protected events, the keyed hashes
    (:mod:`onewindow.domain.protection`), so no key carries a plaintext ID number.

    Any pair with a verdict (domain.md section 5) shares at least one key:

    * CONFLICT and SAME_DOCUMENT need the same type and the same non-empty number, so
      both materials have the same ``doc:`` key;
    * EXACT needs the same non-empty sha256: the same ``sha:`` key;
    * SAME_CONTENT needs the same holder identity (id_type, identity), the same type
      and two declared keys present in both: the same ``hold:`` key, which is left out
      only where SAME_CONTENT is impossible (fewer than two declared fields).

    Each key is a pure function of fields compared with ``==``, so equal fields give
    equal keys.  ``:`` inside a type or number can make two different tuples give one
    key; that only adds candidates (compared and found unlinked), never loses one.
    """
    keys = []
    if m.sha256:
        keys.append(f"{SHA}:{m.sha256}")
    if m.document_number is not None:
        keys.append(f"{DOC}:{m.material_type}:{m.document_number}")
    if len(m.declared_fields) >= 2:
        keys.append(f"{HOLD}:{m.holder.id_type}:{m.holder.identity}:{m.material_type}")
    return keys


def key_kind(key: str) -> str:
    """Which index an index key belongs to: :data:`SHA`, :data:`DOC` or :data:`HOLD`
    (the text before the first ``:``; a string without ``:`` is returned whole)."""
    return key.partition(":")[0]


def owner_key(a: Material, b: Material, a_keys: Sequence[str] | None = None) -> str | None:
    """The one index key at which the pair ``{a, b}`` is emitted: the first key of
    :func:`index_keys` they share (sha, then doc, then hold), or ``None`` when they
    share none.

    Symmetric: both lists keep that order and hold at most one key of each kind, so
    ``owner_key(a, b) == owner_key(b, a)``.  ``a_keys`` may pass ``index_keys(a)``
    already computed (one material is compared with a whole bucket).
    """
    theirs = index_keys(b)
    for k in index_keys(a) if a_keys is None else a_keys:
        if k in theirs:
            return k
    return None


def links_owned_at(key: str, m: Material,
                   held: Iterable[Material]) -> Iterator[tuple[Material, Link]]:
    """``(other, link)`` for each material ``other`` held under index key ``key`` that
    ``m`` has a link with and whose pair ``key`` owns (:func:`owner_key`), in the order
    of ``held``.

    ``other`` with ``m``'s own id (a replay) is skipped.  At a ``hold:`` key, when both
    have a document number, ``other`` is skipped without comparing: rules 1 to 3 of
    domain.md section 5 then need the same number or the same sha256 (the ``doc:`` or
    ``sha:`` key, which comes first, owns the pair) and rule 4 needs one of them without
    a number.  Lazy: ``held`` must not change while the result is iterated.
    """
    mid = m.material_id
    skip_numbered = m.document_number is not None and key_kind(key) == HOLD
    mine: list[str] | None = None
    for other in held:
        if other.material_id == mid:
            continue
        if skip_numbered and other.document_number is not None:
            continue
        lk = link(m, other)
        if lk is None:
            continue
        if mine is None:
            mine = index_keys(m)
        if owner_key(m, other, mine) == key:
            yield other, lk


def links_via_index(materials: Iterable[Material]) -> set[Link]:
    """The same set as :func:`onewindow.domain.materials.all_links`, found as the stream
    app finds it: each material (one per id, :func:`~onewindow.domain.materials.dedupe`)
    is compared by :func:`links_owned_at` with those filed before it under each of its
    :func:`index_keys`, then filed there itself."""
    buckets: dict[str, list[Material]] = defaultdict(list)
    links: set[Link] = set()
    for m in dedupe(materials).values():
        for key in index_keys(m):
            bucket = buckets[key]
            links.update(lk for _other, lk in links_owned_at(key, m, bucket))
            bucket.append(m)
    return links
