"""An index key in the materials worker's table spans buckets (issue 15, point 5): each
stored bucket is bounded, a full one is sealed and another opened, so a bucket's bound
drops no link; the key's own limit (`max_per_key`) loses exactly the pairs the pure rules
say (`links_via_index` with that limit); a key stored by the worker before reads alike;
a key kept decoded between batches is used again only while the store holds the bytes
it was written as."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.domain.material_index import index_keys, indexed, links_via_index
from onewindow.domain.materials import all_links, avoidable_set, material_from_event
from onewindow_cli.bench.materials import activity_value
from stream_apps.materials_processor import (
    NEW,
    OVERFLOW,
    REPLACED,
    Bucket,
    MaterialIndexer,
    _line,
    sealed_key,
)
from stream_apps.records import InRecord
from tests.unit.stream_apps.test_materials_processor import (
    CODEC,
    IDS,
    Pipeline,
    _scenario,
    protected,
    submitted,
)


def pipeline(**indexer: Any) -> Pipeline:
    p = Pipeline()
    p.indexer = MaterialIndexer(codec=CODEC, links_topic="links", **indexer)
    return p


def _buckets_of(store: dict[str, bytes], key: str) -> list[Bucket]:
    """The stored buckets of index key ``key``: its sealed ones, then its open one."""
    opened = Bucket.decode(store[key])
    return [Bucket.decode(store[sealed_key(key, j)]) for j in range(1, opened.sealed + 1)] + [
        opened]


def test_small_buckets_drop_no_link() -> None:
    events = _scenario(40, 7)
    rng = random.Random(7)
    stream = events + [e for e in events if rng.random() < 0.2]
    rng.shuffle(stream)
    p = pipeline(max_per_bucket=2)
    p.feed(stream, batch=5)
    materials = [material_from_event(e) for e in protected(events)]
    assert p.link_set() == all_links(materials)
    assert p.avoidable() == avoidable_set(materials)
    assert not [o for o in p.outcomes if o[1] == OVERFLOW]
    sealed = [k for k in p.store if k[0].isdigit()]
    assert sealed  # some keys spread over buckets
    for key in {k for k in p.store if not k[0].isdigit()}:
        buckets = _buckets_of(p.store, key)
        assert all(1 <= len(b) <= 2 for b in buckets)
        ids = [m.material_id for b in buckets for m in b.materials]
        assert len(ids) == len(set(ids))
    assert len(sealed) == sum(Bucket.decode(p.store[k]).sealed
                              for k in p.store if not k[0].isdigit())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), per_bucket=st.integers(1, 4),
       per_key=st.one_of(st.integers(1, 6), st.just(10_000)), batch=st.sampled_from([1, 3, 50]))
def test_links_are_the_pure_rules_with_the_key_limit(seed: int, per_bucket: int, per_key: int,
                                                     batch: int) -> None:
    """Whatever the bucket size, the worker's links are `links_via_index` with the key's
    limit: every link when no key reaches it, else all but the pairs the rule leaves."""
    events = _scenario(12, seed)
    rng = random.Random(seed)
    stream = events + [e for e in events if rng.random() < 0.2]
    rng.shuffle(stream)
    p = pipeline(max_per_bucket=per_bucket, max_per_key=per_key)
    p.feed(stream, batch=batch)
    materials = [indexed(material_from_event(e)) for e in protected(stream)]
    assert p.link_set() == links_via_index(materials, max_per_key=per_key)
    if per_key == 10_000:
        assert p.link_set() == all_links(materials)
    counts: dict[str, int] = {}
    for m in {m.material_id: m for m in materials}.values():
        for key in index_keys(m):
            counts[key] = counts.get(key, 0) + 1
    for key, n in counts.items():
        held = sum(len(b) for b in _buckets_of(p.store, key))
        assert held == min(n, per_key)
        assert all(len(b) <= per_bucket for b in _buckets_of(p.store, key))


def test_the_key_limit_is_counted_and_logged_once(caplog: Any) -> None:
    p = pipeline(max_per_key=2)
    p.feed([submitted(f"M{i}", i) for i in range(5)], batch=1)
    assert p.outcomes[("doc", NEW)] == 2 and p.outcomes[("doc", OVERFLOW)] == 3
    warned = [r.getMessage().split()[2] for r in caplog.records
              if "its limit" in r.getMessage()]
    # once per full key: the doc: and hold: keys the five share (each sha: key holds one)
    assert sorted(k.split(":")[0] for k in warned) == ["doc", "hold"]
    assert set(warned) <= set(p.store)


def test_a_replay_with_other_content_is_replaced_in_its_sealed_bucket() -> None:
    p = pipeline(max_per_bucket=1)
    late = dict(submitted("A", 9), event_id="other-ev")
    p.feed([late, submitted("B", 1), submitted("C", 2)], batch=1)
    doc = next(k for k in p.store if k.startswith("doc:"))
    assert Bucket.decode(p.store[doc]).sealed == 2
    early = submitted("A", 0)  # earlier, so it stands for the id (`canonical`)
    p.feed([early], batch=1)
    assert p.outcomes[("doc", REPLACED)] == 1
    first = Bucket.decode(p.store[sealed_key(doc, 1)])
    assert [m.occurred_at.minute for m in first.materials] == [0]


def test_a_key_stored_by_the_worker_before_reads_alike_and_grows() -> None:
    """A worker before issue 15 stored a key as one bucket of JSON lines without a
    header, and stopped holding at its limit: that bucket is read as the key's open
    bucket, sealed when full, and every new material is linked with it."""
    old = [submitted(f"M{i}", i) for i in range(3)]
    p = pipeline(max_per_bucket=3)
    for e in old:  # the buckets as the old worker wrote them: lines, no header
        m = indexed(material_from_event(protected([e])[0]))
        for key in index_keys(m):
            p.store[key] = b"\n".join(x for x in (p.store.get(key), _line(m)) if x)
    new = [submitted(f"N{i}", 10 + i) for i in range(4)]
    p.feed(new, batch=2)
    materials = [material_from_event(e) for e in protected(old + new)]
    want = {lk for lk in all_links(materials)
            if lk.material_a.startswith("N") or lk.material_b.startswith("N")}
    assert p.link_set() == want
    doc = next(k for k in p.store if k.startswith("doc:"))
    assert [[m.material_id for m in b.materials] for b in _buckets_of(p.store, doc)] == [
        ["M0", "M1", "M2"], ["N0", "N1", "N2"], ["N3"]]


def _feed_keeping(p: Pipeline, events: list[dict[str, Any]],
                  keep: Callable[[str], bool]) -> list[tuple[str, str]]:
    """Feed ``events`` as one batch, store only the buckets ``keep`` accepts; the pairs
    linked."""
    before = len(p.links)
    stored = dict(p.store)
    p.feed(events, batch=len(events))
    for key in list(p.store):
        if not keep(key):
            if key in stored:
                p.store[key] = stored[key]
            else:
                del p.store[key]
    return sorted((r["material_a"], r["material_b"]) for r in p.decoded()[before:])


def test_a_key_kept_decoded_is_used_only_while_the_store_holds_its_bytes() -> None:
    p = pipeline(cache_min=1)
    assert _feed_keeping(p, [submitted("A", 0)], lambda _k: True) == []
    # a batch whose buckets were not stored (a store that failed, records redelivered)
    assert _feed_keeping(p, [submitted("B", 1)], lambda _k: False) == [("A", "B")]
    # the next batch compares with what the store holds (A), not with the kept state (A, B)
    assert _feed_keeping(p, [submitted("C", 2)], lambda _k: True) == [("A", "C")]
    # the store changed behind the indexer's back (another worker, a restore): read it
    doc = next(k for k in p.store if k.startswith("doc:"))
    p.store[doc] = _line(indexed(material_from_event(protected([submitted("Z", 3)])[0])))
    assert _feed_keeping(p, [submitted("D", 4)], lambda _k: True) == [("D", "Z")]


def test_a_crash_between_two_bucket_writes_loses_nothing() -> None:
    """A batch that seals a bucket writes the sealed bucket before the open one that
    names it. Whichever write a crash stops at, the batch redelivered leaves every
    material held and every link found."""
    first = [submitted(f"M{i}", i) for i in range(2)]
    batch = [submitted(f"N{i}", 10 + i) for i in range(3)]
    want = all_links(material_from_event(e) for e in protected(first + batch))
    base = pipeline(max_per_bucket=2)
    base.feed(first, batch=2)
    acts = [InRecord("act", 0, i, e["case_id"].encode(), activity_value(CODEC, e, ids=IDS),
                     None) for i, e in enumerate(batch)]
    routed = [InRecord("idx", 0, j, o.key, o.value, None)
              for j, o in enumerate(base.router.route(acts).outputs)]
    writes = list(MaterialIndexer(codec=CODEC, links_topic="links", max_per_bucket=2)
                  .process(routed, lambda key, _r: base.store.get(key)).buckets.items())
    doc = next(k for k in base.store if k.startswith("doc:"))
    order = [k for k, _v in writes]
    assert order.index(sealed_key(doc, 1)) < order.index(doc)
    for crash_at in range(len(writes) + 1):
        p = pipeline(max_per_bucket=2)
        p.store = dict(base.store)
        p.store.update((k, v) for k, (v, _r) in writes[:crash_at])
        p.links = list(base.links)
        p.feed(batch, batch=3)  # redelivered: nothing was committed
        assert p.link_set() == want, crash_at
        held = sorted(m.material_id for b in _buckets_of(p.store, doc) for m in b.materials)
        assert held == ["M0", "M1", "N0", "N1", "N2"], crash_at
