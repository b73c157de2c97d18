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

A key's materials are held in a :class:`KeyIndex`, which gives a new material its
*candidates*: only the held materials whose pair with it this key owns and that a
verdict can still link (issue 15, point 5), so the comparisons a material costs follow
the links it can have, not the size of the key (the property tests hold it to
:func:`links_owned_at`, the plain comparison with every held material, and
:func:`links_via_index` to the O(n^2) reference).

What a key holds is bounded (issues 13 and 15, the project's choice, docs/materials.md
"Bounds"): a material is held in :func:`indexed` form (a long declared value as its
digest: the verdicts are unchanged); a key holds at most ``MAX_MATERIALS_PER_KEY``
materials (:func:`key_admits`; the stream app takes it from
``ONEWINDOW_MATERIALS_MAX_PER_KEY``), a material past that is compared with those held,
not held itself, and counted; the stream app stores a key's materials in buckets of at
most ``MAX_MATERIALS_PER_BUCKET`` materials and ``MAX_BUCKET_BYTES`` each
(:func:`bucket_admits`), as many as the key needs, so a bucket's bound never drops a link.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Sequence

from onewindow.domain.limits import (
    MAX_BUCKET_BYTES,
    MAX_INDEXED_VALUE_CHARS,
    MAX_MATERIALS_PER_BUCKET,
    MAX_MATERIALS_PER_KEY,
)
from onewindow.domain.materials import Link, Material, dedupe, link

__all__ = [
    "DOC",
    "HOLD",
    "INDEX_KINDS",
    "SHA",
    "VALUE_DIGEST",
    "KeyIndex",
    "bucket_admits",
    "index_keys",
    "indexed",
    "key_admits",
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
                  max_materials: int = MAX_MATERIALS_PER_BUCKET,
                  max_bytes: int = MAX_BUCKET_BYTES) -> bool:
    """Whether a stored bucket (one table value) holding ``held`` materials in
    ``held_bytes`` (its encoded value) may hold one more, of ``entry_bytes`` (plus a
    separator when the value is not empty): at most ``max_materials`` materials and
    ``max_bytes`` bytes. A key whose bucket is full opens another one (docs/materials.md
    "Bounds"); a material too large for an empty bucket is compared, not held."""
    return (held < max_materials
            and held_bytes + (1 if held_bytes else 0) + entry_bytes <= max_bytes)


def key_admits(held: int, *, max_per_key: int = MAX_MATERIALS_PER_KEY) -> bool:
    """Whether an index key holding ``held`` materials (all its buckets) may hold one more:
    fewer than ``max_per_key``. Past it a material is compared with every held one (those
    links are found) but not held, so a pair of two materials that both came after the
    key was full is not linked there: the one place the link set is incomplete, which the
    stream app counts (``outcome="overflow"``) and logs (docs/materials.md "Bounds")."""
    return held < max_per_key


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


class KeyIndex:
    """The materials one index key holds, in the order they were filed, and what finds a
    new material's *candidates* among them without comparing it with all of them.

    ``materials`` is that order, ``pos`` maps a material id to its place in it. The
    candidates of ``m`` (:meth:`candidates`) are the held materials, ``m``'s own id
    excepted, whose pair with ``m`` this key owns (:func:`owner_key`) and that a verdict
    of domain.md section 5 can link there; :meth:`links` compares ``m`` with those only:

    * ``sha:``: every held material (same sha256: EXACT, or CONFLICT).
    * ``doc:``: the held materials whose sha256 is not ``m``'s (the ``sha:`` key owns a
      pair with the same one), found by sha256 group; the verdict decides (a ``:`` in a
      type or number can put two documents under one key).
    * ``hold:``: only SAME_CONTENT is owned here (the rules before it need the ``sha:`` or
      ``doc:`` key, which come first), and it needs two declared keys present in both with
      equal values, so the candidates are the held materials sharing at least two
      ``(key, value)`` pairs of ``m``'s ``declared_fields``, not numbered when ``m`` is,
      sha256 not ``m``'s. They are found from an inverted index of the pairs: every list
      of ``m``'s pairs but the longest is walked, and a material seen once there is a
      candidate when it also has the pair of the longest list, so a pair every held
      material shares (the holder's name) costs nothing.
    * any other key (not made by :func:`index_keys`): every held material, each pair
      checked with :func:`owner_key`.

    So the comparisons a new material costs follow the links it can have, not the size of
    the key: one a link at ``sha:`` and ``doc:`` keys, at a ``hold:`` key one for each
    held material sharing two facts with it (checked against :func:`links_owned_at` on
    generated buckets, ties and replacements included). Mutable and pure: :meth:`add`
    files a material, :meth:`replace` swaps a held one for another copy of the same id.
    """

    __slots__ = ("_by_sha", "_numbered", "_plain", "key", "kind", "materials", "pos")

    def __init__(self, key: str, materials: Iterable[Material] = ()) -> None:
        self.key = key
        self.kind = key_kind(key)
        self.materials: list[Material] = []
        self.pos: dict[str, int] = {}
        self._by_sha: dict[str, list[int]] = {}
        self._plain: dict[tuple[str, str], list[int]] = {}
        self._numbered: dict[tuple[str, str], list[int]] = {}
        for m in materials:
            self.add(m)

    def __len__(self) -> int:
        return len(self.materials)

    def get(self, material_id: str) -> Material | None:
        """The held material of that id, or ``None``."""
        i = self.pos.get(material_id)
        return None if i is None else self.materials[i]

    def add(self, m: Material) -> None:
        """File ``m`` after the others (its id must not be held: :meth:`replace`)."""
        i = len(self.materials)
        self.materials.append(m)
        self.pos[m.material_id] = i
        self._file(i, m)

    def replace(self, m: Material) -> None:
        """Hold ``m`` in place of the held material of its id (``KeyError`` when none)."""
        i = self.pos[m.material_id]
        self._unfile(i, self.materials[i])
        self.materials[i] = m
        self._file(i, m)

    def _postings(self, m: Material) -> dict[tuple[str, str], list[int]]:
        return self._plain if m.document_number is None else self._numbered

    def _file(self, i: int, m: Material) -> None:
        if self.kind == DOC:
            self._by_sha.setdefault(m.sha256, []).append(i)
        elif self.kind == HOLD:
            postings = self._postings(m)
            for kv in m.declared_fields:
                postings.setdefault(kv, []).append(i)

    def _unfile(self, i: int, m: Material) -> None:
        if self.kind == DOC:
            group = self._by_sha[m.sha256]
            group.remove(i)
            if not group:
                del self._by_sha[m.sha256]
        elif self.kind == HOLD:
            postings = self._postings(m)
            for kv in m.declared_fields:
                posting = postings[kv]
                posting.remove(i)
                if not posting:
                    del postings[kv]

    def candidates(self, m: Material) -> list[Material]:
        """The held materials ``m`` is compared with (class docstring), in the order they
        were filed for ``sha:`` and ``hold:`` keys, by sha256 group for ``doc:`` keys."""
        held = self.materials
        if not held:
            return []
        mid = m.material_id
        if self.kind == DOC:
            skip = m.sha256 or None  # without a sha256, m shares no sha: key
            return [o for sha, group in self._by_sha.items() if sha != skip
                    for i in group if (o := held[i]).material_id != mid]
        if self.kind == HOLD:
            found = self._sharing_two(self._plain, m)
            if m.document_number is None:
                found.extend(self._sharing_two(self._numbered, m))
                found.sort()
            sha = m.sha256
            return [o for i in found
                    if (o := held[i]).material_id != mid and not (sha and o.sha256 == sha)]
        return [o for o in held if o.material_id != mid]

    def _sharing_two(self, postings: dict[tuple[str, str], list[int]],
                     m: Material) -> list[int]:
        """Places (ascending) of the materials in ``postings`` that share at least two
        ``(key, value)`` pairs with ``m``."""
        lists = [(kv, p) for kv in m.declared_fields if (p := postings.get(kv))]
        if len(lists) < 2:
            return []
        lists.sort(key=lambda x: len(x[1]))
        (key, value), _longest = lists.pop()
        seen: dict[int, int] = {}
        for _kv, posting in lists:
            for i in posting:
                seen[i] = seen.get(i, 0) + 1
        held = self.materials
        return sorted(i for i, n in seen.items()
                      if n >= 2 or held[i]._fields.get(key) == value)

    def links(self, m: Material) -> list[tuple[Material, Link]]:
        """``(other, link)`` for each held material ``other`` that ``m`` has a link with
        and whose pair this key owns: what :func:`links_owned_at` gives for every held
        material, found by comparing ``m`` with its :meth:`candidates` only."""
        out = []
        generic = self.kind not in INDEX_KINDS
        mine = index_keys(m) if generic else None
        for other in self.candidates(m):
            lk = link(m, other)
            if lk is not None and (not generic or owner_key(m, other, mine) == self.key):
                out.append((other, lk))
        return out


def links_via_index(materials: Iterable[Material], *,
                    max_per_key: int | None = None) -> set[Link]:
    """The links found as the stream app finds them: each material (one per id,
    :func:`~onewindow.domain.materials.dedupe`, in order of first appearance) is compared
    by :meth:`KeyIndex.links` with those filed before it under each of its
    :func:`index_keys`, then filed there itself while the key admits it
    (:func:`key_admits`; ``max_per_key`` ``None``: no limit).

    Without a limit, or while no key reaches it, this is the set of
    :func:`onewindow.domain.materials.all_links` (a property test); past a key's limit it
    lacks exactly the pairs owned by that key whose two materials both came after the key
    was full."""
    indexes: dict[str, KeyIndex] = {}
    links: set[Link] = set()
    for m in dedupe(materials).values():
        for key in index_keys(m):
            index = indexes.get(key)
            if index is None:
                index = indexes[key] = KeyIndex(key)
            links.update(lk for _other, lk in index.links(m))
            if max_per_key is None or key_admits(len(index), max_per_key=max_per_key):
                index.add(m)
    return links
