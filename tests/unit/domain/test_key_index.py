"""The candidate index of one index key (issue 15, point 5): a new material is compared
only with the held materials that can still link with it there, and finds exactly the
links of the plain rules: `links_owned_at` (every held material compared) per key, and
`all_links` (every pair) for the whole set, limits included."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.domain.events import CERTIFICATE_ISSUED, MATERIAL_SUBMITTED
from onewindow.domain.material_index import (
    DOC,
    HOLD,
    SHA,
    KeyIndex,
    index_keys,
    key_admits,
    links_owned_at,
    links_via_index,
    owner_key,
)
from onewindow.domain.materials import (
    Holder,
    Link,
    Material,
    all_links,
    dedupe,
    link,
)

T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)

# Few values of each field, so that pairs tie often; ``:`` inside types, numbers and
# identities makes different tuples give one key string (more candidates, never fewer).
_TYPES = ["A", "B", "A:B"]
_NUMBERS = [None, None, "1", "2", "B:1"]
_SHAS = ["", "s1", "s2", "s3"]
_HOLDERS = [("R", "h1"), ("R", "h2"), ("R", "X:h1"), ("R:X", "h1")]
_FIELDS = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["1", "2"]),
                          max_size=4)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    return {"id": f"m{draw(st.integers(0, 14)):02d}",
            "type": draw(st.sampled_from(_TYPES)), "number": draw(st.sampled_from(_NUMBERS)),
            "sha": draw(st.sampled_from(_SHAS)), "holder": draw(st.sampled_from(_HOLDERS)),
            "fields": draw(_FIELDS), "minute": draw(st.integers(0, 5)),
            "cert": draw(st.booleans())}


def build(spec: dict[str, Any]) -> Material:
    id_type, identity = spec["holder"]
    return Material(material_id=spec["id"], material_type=spec["type"],
                    holder=Holder(id_type, identity, "x"), document_number=spec["number"],
                    sha256=spec["sha"], declared_fields=tuple(sorted(spec["fields"].items())),
                    occurred_at=T0 + timedelta(minutes=spec["minute"]), case_id="C",
                    department="d", form="COPY",
                    kind=CERTIFICATE_ISSUED if spec["cert"] else MATERIAL_SUBMITTED)


# replays of an id (same or other content) included: the ids are drawn from 15
materials_st = st.lists(specs(), max_size=40).map(lambda ss: [build(s) for s in ss])


def _as_set(found: list[tuple[Material, Link]] | Any) -> set[tuple[str, Link]]:
    return {(o.material_id, lk) for o, lk in found}


@settings(max_examples=150)
@given(materials_st)
def test_each_key_finds_what_comparing_every_held_material_finds(
        materials: list[Material]) -> None:
    """Per key and per arrival: the candidates' links are the links of every held
    material with the owner-key rule (the plain comparison the worker did before)."""
    held: dict[str, list[Material]] = {}
    indexes: dict[str, KeyIndex] = {}
    for m in materials:
        for key in index_keys(m):
            index = indexes.setdefault(key, KeyIndex(key))
            plain = held.setdefault(key, [])
            assert _as_set(index.links(m)) == _as_set(links_owned_at(key, m, plain))
            if index.get(m.material_id) is None:
                index.add(m)
                plain.append(m)
            else:  # another copy of a held id: held in its place, as the worker does
                index.replace(m)
                plain[[o.material_id for o in plain].index(m.material_id)] = m


@settings(max_examples=120)
@given(materials_st, st.randoms(use_true_random=False))
def test_the_index_finds_every_link_of_the_pure_rules(materials: list[Material],
                                                      rnd: random.Random) -> None:
    shuffled = list(materials)
    rnd.shuffle(shuffled)
    assert links_via_index(materials) == all_links(materials)
    assert links_via_index(shuffled) == all_links(materials)
    # a limit no key reaches changes nothing
    assert links_via_index(shuffled, max_per_key=len(materials) + 1) == all_links(materials)


def _ranks(materials: list[Material]) -> dict[str, dict[str, int]]:
    """key -> material id -> its place among the materials filed under the key."""
    ranks: dict[str, dict[str, int]] = {}
    for m in materials:
        for key in index_keys(m):
            filed = ranks.setdefault(key, {})
            filed[m.material_id] = len(filed)
    return ranks


@settings(max_examples=150)
@given(materials_st, st.integers(1, 6))
def test_at_the_key_limit_only_pairs_that_both_came_after_it_are_missing(
        materials: list[Material], limit: int) -> None:
    """A key holds its first ``limit`` materials; a later one is compared with them and
    not held. The links found are all links but those whose owner key had both ends
    after its first ``limit``: nothing else is lost, nothing is made up."""
    unique = list(dedupe(materials).values())
    ranks = _ranks(unique)
    want = set()
    for a, b in combinations(unique, 2):
        lk = link(a, b)
        if lk is None:
            continue
        key = owner_key(a, b)
        assert key is not None
        if min(ranks[key][a.material_id], ranks[key][b.material_id]) < limit:
            want.add(lk)
    assert links_via_index(materials, max_per_key=limit) == want


def test_key_admits_below_its_limit() -> None:
    assert key_admits(0, max_per_key=1)
    assert not key_admits(1, max_per_key=1)
    assert key_admits(9_999) and not key_admits(10_000)


def _material(mid: str, *, mtype: str = "CONTRACT", number: str | None = None,
              sha: str | None = None, fields: dict[str, str], holder: str = "h1") -> Material:
    return build({"id": mid, "type": mtype, "number": number, "sha": sha or f"sha-{mid}",
                  "holder": ("USCC", holder), "fields": fields, "minute": 0, "cert": False})


def test_a_pair_every_held_material_shares_costs_no_comparison() -> None:
    """A company's contracts under one hold: key, all with the company as a party: a new
    contract is compared only with those sharing a second fact with it."""
    contracts = [_material(f"c{i:04d}", fields={"party": "ACME", "amount": str(i),
                                                "signed": f"2025-{i % 12 + 1:02d}"})
                 for i in range(1_000)]
    key = index_keys(contracts[0])[-1]
    assert key.startswith(f"{HOLD}:")
    index = KeyIndex(key, contracts)
    fresh = _material("new", fields={"party": "ACME", "amount": "-1", "signed": "1999-01"})
    assert index.candidates(fresh) == []
    again = _material("again", fields={"party": "ACME", "amount": "7", "signed": "2025-08"})
    # the contracts sharing a second fact: amount 7, or the month (every 12th)
    sharing = [c.material_id for c in contracts if c.fields["signed"] == "2025-08"]
    assert len(sharing) == 83 and "c0007" in sharing
    assert [o.material_id for o in index.candidates(again)] == sharing
    assert [(o.material_id, str(lk.verdict)) for o, lk in index.links(again)] == [
        ("c0007", "SAME_CONTENT")]
    # a numbered contract is compared with the unnumbered ones only (two numbers are two
    # documents): not with the numbered one that shares all three facts
    numbered = _material("num", number="N1", fields={"party": "ACME", "amount": "7",
                                                     "signed": "1999-01"})
    index.add(_material("held-num", number="N2", fields={"party": "ACME", "amount": "7",
                                                        "signed": "1999-01"}))
    assert [o.material_id for o in index.candidates(numbered)] == ["c0007"]


def test_a_document_handed_in_as_one_scan_costs_no_comparison_at_its_number() -> None:
    """The same licence, one scan, 500 times: the sha: key owns those pairs, so at the
    doc: key a new copy of that scan has no candidate, and a new scan has them all."""
    copies = [_material(f"l{i:03d}", mtype="LICENSE", number="91440101MA5", sha="scan-1",
                        fields={"name": "ACME"}) for i in range(500)]
    key = next(k for k in index_keys(copies[0]) if k.startswith(f"{DOC}:"))
    index = KeyIndex(key, copies)
    same_scan = _material("l-new", mtype="LICENSE", number="91440101MA5", sha="scan-1",
                          fields={"name": "ACME"})
    assert index.candidates(same_scan) == []
    rescan = _material("l-rescan", mtype="LICENSE", number="91440101MA5", sha="scan-2",
                       fields={"name": "ACME"})
    assert len(index.links(rescan)) == 500
    sha_key = next(k for k in index_keys(copies[0]) if k.startswith(f"{SHA}:"))
    assert len(KeyIndex(sha_key, copies).links(same_scan)) == 500


def test_replace_moves_a_material_between_its_groups() -> None:
    a = _material("a", mtype="LICENSE", number="N", sha="s1", fields={"x": "1", "y": "2"})
    b = _material("b", mtype="LICENSE", number="N", sha="s2", fields={"x": "1", "y": "2"})
    doc = next(k for k in index_keys(a) if k.startswith(f"{DOC}:"))
    index = KeyIndex(doc, [a])
    assert [o.material_id for o in index.candidates(b)] == ["a"]
    index.replace(_material("a", mtype="LICENSE", number="N", sha="s2",
                            fields={"x": "1", "y": "2"}))
    assert index.candidates(b) == []  # now the sha: key owns the pair
    hold = index_keys(a)[-1]
    h = KeyIndex(hold, [_material("p", fields={"x": "1", "y": "2"})])
    q = _material("q", fields={"x": "1", "y": "2"})
    assert [o.material_id for o in h.candidates(q)] == ["p"]
    h.replace(_material("p", fields={"x": "1", "y": "3"}))
    assert h.candidates(q) == []
    with_number = _material("p", number="N9", fields={"x": "1", "y": "2"})
    h.replace(with_number)
    assert [o.material_id for o in h.candidates(q)] == ["p"]  # q has no number
