"""Packed index records (issue 15, point 5): the worker's router sends a batch's index
entries as one record per partition of their keys; the indexer reads packed records and
the one-entry records of a worker before packing alike, and the links do not change."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onewindow.domain.materials import all_links, avoidable_set, material_from_event
from onewindow.topics import partition_for
from onewindow_cli.bench.materials import activity_value
from stream_apps.materials_processor import (
    MAX_PACKED_BYTES,
    MAX_PACKED_ENTRIES,
    MaterialRouter,
    index_entries,
    pack_entries,
)
from stream_apps.records import InRecord, OutRecord
from tests.unit.stream_apps.test_materials_processor import (
    CODEC,
    IDS,
    Pipeline,
    _scenario,
    protected,
)

PARTITIONS = 6


def _acts(events: list[dict[str, Any]]) -> list[InRecord]:
    return [InRecord("act", 0, i, e["case_id"].encode(), activity_value(CODEC, e, ids=IDS),
                     None) for i, e in enumerate(events)]


@given(st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=200)), min_size=1,
                max_size=20))
def test_packed_entries_read_back(entries: list[tuple[bytes, bytes]]) -> None:
    assert index_entries(b"any", pack_entries(entries)) == entries


def test_a_record_of_one_entry_reads_as_itself_and_a_cut_one_is_refused() -> None:
    assert index_entries(b"sha:x", b"123\t{}") == [(b"sha:x", b"123\t{}")]
    assert index_entries(None, None) == [(b"", b"")]
    packed = pack_entries([(b"k", b"v" * 10)])
    with pytest.raises(ValueError):
        index_entries(b"k", packed[:-1])


def test_the_router_packs_a_batch_by_the_partition_of_each_key() -> None:
    events = _scenario(30, 3)
    plain = MaterialRouter(codec=CODEC, index_topic="idx", ids=IDS).route(_acts(events))
    packed = MaterialRouter(codec=CODEC, index_topic="idx", ids=IDS,
                            partitions=PARTITIONS).route(_acts(events))
    assert packed.entries == len(plain.outputs) and packed.materials == plain.materials
    assert len(packed.outputs) < len(plain.outputs) / 10
    unpacked = []
    for out in packed.outputs:
        entries = index_entries(out.key, out.value)
        assert 1 <= len(entries) <= MAX_PACKED_ENTRIES
        assert len(out.value) <= MAX_PACKED_BYTES
        assert out.partition is not None and out.key == entries[0][0]
        # where the record's key would put it too
        assert {partition_for(k, PARTITIONS) for k, _v in entries} == {out.partition} == {
            partition_for(out.key or b"", PARTITIONS)}
        unpacked.extend(entries)
    # every entry once, in the router's order within each partition
    assert sorted(unpacked) == sorted((o.key, o.value) for o in plain.outputs)
    for p in range(PARTITIONS):
        assert [e for e in unpacked if partition_for(e[0], PARTITIONS) == p] == [
            (o.key, o.value) for o in plain.outputs
            if partition_for(o.key or b"", PARTITIONS) == p]


def test_packed_and_one_entry_records_give_the_same_links() -> None:
    """A worker started on a topic that still holds one-entry records (written before
    packing) reads them and the packed ones after them alike."""
    events = _scenario(40, 11)
    rng = random.Random(11)
    stream = events + [e for e in events if rng.random() < 0.2]
    rng.shuffle(stream)
    materials = [material_from_event(e) for e in protected(events)]
    packed_router = MaterialRouter(codec=CODEC, index_topic="idx", ids=IDS, partitions=1)
    for split in (0, len(stream) // 2, len(stream)):
        p = Pipeline()
        p.feed(stream[:split], batch=9)  # one-entry records, as before
        p.router = packed_router
        p.feed(stream[split:], batch=9)
        assert p.link_set() == all_links(materials)
        assert p.avoidable() == avoidable_set(materials)


def test_an_unreadable_packed_record_is_counted_not_raised() -> None:
    p = Pipeline()
    cut = pack_entries([(b"sha:a", b"1\t{}")])[:-2]
    res = p.indexer.process([InRecord("idx", 0, 0, b"sha:a", cut, None)], lambda *_: None)
    assert res.unreadable == 1 and res.outputs == []
    res = p.indexer.process([InRecord("idx", 0, 1, b"sha:a", pack_entries(
        [(b"sha:a", b"garbage"), (b"\xff", b"1\t{}")]), None)], lambda *_: None)
    assert res.unreadable == 2


def test_large_entries_split_a_pack_by_its_bytes() -> None:
    big = b"x" * (MAX_PACKED_BYTES // 3)
    outs = [OutRecord("idx", b"sha:%d" % i, big) for i in range(7)]
    router = MaterialRouter(codec=CODEC, index_topic="idx", ids=IDS, partitions=1)
    packed = router._packed(outs, 1)
    assert [len(index_entries(o.key, o.value)) for o in packed] == [2, 2, 2, 1]
    assert all(len(o.value) <= MAX_PACKED_BYTES for o in packed)
