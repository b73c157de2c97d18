"""The bulk load of ``onewindow rebuild`` (sinks/bulk.py) equals the live sink's
row-at-a-time path (``Ingestor.add`` + ``write_batch``): the same batch from the same
records (pure), and the same model on SQLite and PostgreSQL (``database_url``,
tests/unit/conftest.py) from a topic with superseding case states, duplicates, dead
letters and records that cannot be read; the indexes are back and Alembic sees the
schema at head; a load stopped half-way can be rebuilt again."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.read_model.engine import make_engine
from onewindow.read_model.tables import metadata
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from sinks.bulk import SUPERSEDED, BulkLoader, CaseStateKeys, ChunkReducer
from sinks.ingest import Ingestor
from sinks.migrations import current_revision, downgrade, head_revision, upgrade
from sinks.rebuild import _groups, _restore_indexes
from sinks.rows import Batch, RowMaker
from tests.read_model_support import (
    DELIVERY_COLUMNS,
    case_outputs,
    dump_model,
    link_records,
    load_model,
)
from tests.unit.sinks.helpers import T0
from tests.unit.sinks.helpers import case_state as _state

Record = tuple[str, bytes | None]


def _records(topics: Topics, seed: int) -> list[Record]:
    """Output records as the stream apps give them, and worse: every event's case states
    (many per case), events sent twice, events dated in the future (dead letters, one of
    them published twice), links found twice, activity records re-emitted, and on the
    case-state topic a lower version after a higher one, the same version twice with
    other delivery fields, a tombstone, bytes that are no record, a record of another
    type, and a newest version that decodes only half-way (so the one below it wins)."""
    codec = get_codec()
    rng = random.Random(seed)
    cases = list(ScenarioGenerator(ScenarioConfig(seed=seed)).cases(40))
    flat = [e for c in cases for e in c]
    events = flat + rng.sample(flat, len(flat) // 10)
    rng.shuffle(events)
    future = datetime.now(UTC) + timedelta(days=3)
    events += [dict(e, event_id=f"{e['event_id']}-f", occurred_at=future)
               for e in rng.sample(flat, 5)]
    records: list[Record] = list(case_outputs(events, topics))
    dead = [r for r in records if r[0] == topics.dead_letters]
    assert len(dead) == 5
    records.append(dead[0])  # a dead letter published twice
    activity = [r for r in records if r[0] == topics.case_activity]
    for r in rng.sample(activity, len(activity) // 20):  # re-emitted later
        records.insert(rng.randint(records.index(r) + 1, len(records)), r)
    links = [(topics.material_links, codec.encode_record("MaterialLink", r))
             for r in link_records(flat)]
    records += links + rng.sample(links, len(links) // 3)
    cs = topics.case_state
    state = codec.encode_record
    records += [
        (cs, state("CaseState", _state("X1", 5, [("T1", "APPROVED")]))),
        (cs, state("CaseState", _state("X1", 3, [("T1", "RECEIVED"), ("T2", "RECEIVED")]))),
        (cs, state("CaseState", _state("X2", 2, [("T1", "RECEIVED")]))),
        (cs, state("CaseState", _state("X2", 2, [("T1", "RECEIVED")],
                                       source_timestamp=T0 + timedelta(hours=1)))),
        (cs, None),
        (cs, b"\xc3\x01 not a record"),
        (cs, links[0][1]),
        (cs, state("CaseState", _state("X3", 1, [("T1", "RECEIVED")]))),
        (cs, state("CaseState", _state("X3", 4, [("T9", "APPROVED")])) + b"\x00"),
        (cs, state("CaseState", _state("X4", 7, [("T1", "APPROVED")]))),
    ]
    return records


def _ingestor(topics: Topics, settings: Settings) -> Ingestor:
    codec = get_codec()
    return Ingestor(topics, codec, RowMaker(codec, IdProtector.from_settings(settings)))


def _with_offsets(records: list[Record]) -> list[tuple[str, int, int, bytes | None]]:
    """(topic, partition 0, offset) as ``load_model`` numbers them."""
    nxt: dict[str, int] = {}
    out = []
    for topic, value in records:
        out.append((topic, 0, nxt.get(topic, 0), value))
        nxt[topic] = nxt.get(topic, 0) + 1
    return out


def _bulk_load(engine: Engine, topics: Topics, settings: Settings,
               records: list[Record], rng: random.Random) -> dict[str, int]:
    """The records through ChunkReducer and BulkLoader in chunks of random size."""
    ingestor, keys = _ingestor(topics, settings), CaseStateKeys(get_codec())
    numbered = _with_offsets(records)
    offsets: dict[tuple[str, int], int] = {}
    results: dict[str, int] = {}
    with engine.connect() as conn:
        loader = BulkLoader(conn)
        with conn.begin():
            loader.prepare()
        i = 0
        while i < len(numbered):
            n = rng.randint(1, 400)
            reducer = ChunkReducer(ingestor, keys)
            for rec in numbered[i:i + n]:
                reducer.add(*rec)
            batch = reducer.finish()
            with conn.begin():
                loader.write(batch, datetime.now(UTC))
            for k, v in batch.offsets.items():
                offsets[k] = max(offsets.get(k, 0), v)
            for k, v in reducer.results.items():
                results[k] = results.get(k, 0) + v
            i += n
        with conn.begin():
            loader.finish(offsets, datetime.now(UTC))
    return results


def _stored(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's cells as the database holds them (no type processing: SQLite's text
    of instants and dates), without the commit times."""
    out = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            cols = ", ".join(f'"{c.name}"' for c in table.columns
                             if c.name not in DELIVERY_COLUMNS)
            out[table.name] = sorted(map(tuple, conn.exec_driver_sql(
                f'SELECT {cols} FROM "{table.name}"')), key=repr)  # noqa: S608 - our names
    return out


def _rows(b: Batch) -> tuple[Any, ...]:
    return b.cases, b.timeline, b.materials, b.links, b.dead_letters, b.offsets, b.records


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_reduced_chunk_is_the_batch_record_by_record_gives(topics, settings) -> None:
    """Pure: no database. Every case maps once; the rows equal Ingestor.add's."""
    records = _with_offsets(_records(topics, seed=3))
    one_by_one = Batch()
    ingestor = _ingestor(topics, settings)
    for rec in records:
        ingestor.add(one_by_one, *rec)
    reducer = ChunkReducer(ingestor, CaseStateKeys(get_codec()))
    for rec in records:
        reducer.add(*rec)
    reduced = reducer.finish()
    assert _rows(reduced) == _rows(one_by_one)
    assert reduced.cases["X1"][0]["version"] == 5
    assert reduced.cases["X2"][0]["source_timestamp"] == T0 + timedelta(hours=1)
    assert reduced.cases["X3"][0]["version"] == 1  # version 4 does not decode
    states = sum(1 for t, _p, _o, v in records if t == topics.case_state and v is not None)
    # mapped: one per case, plus the one that failed; the rest were never mapped
    projected = states - 2  # not the bytes that are no record, nor the link
    assert reducer.results[SUPERSEDED] == projected - len(reduced.cases) - 1
    assert reducer.results["undecodable"] == 2 and reducer.results["tombstone"] == 1
    assert reducer.results["wrong_type"] == 1


def test_the_bulk_load_equals_the_row_at_a_time_model(engine, topics, settings,
                                                      tmp_path) -> None:
    records = _records(topics, seed=5)
    reference = make_engine(f"sqlite:///{tmp_path / 'reference.db'}", writer=True)
    upgrade(reference)
    load_model(reference, topics, records, settings, seed=7)  # the live sink's path
    results = _bulk_load(engine, topics, settings, records, random.Random(11))
    got, want = dump_model(engine), dump_model(reference)
    assert got == want  # every table, consumed_offsets included
    if engine.dialect.name == "sqlite":  # stored alike, not only read back alike
        assert _stored(engine) == _stored(reference)
    assert len(want["dead_letters"]) == 5 and len(want["material_links"]) > 10
    avoidable = [c.name for c in metadata.tables["materials"].columns
                 if c.name not in DELIVERY_COLUMNS].index("avoidable")
    assert any(r[avoidable] for r in want["materials"])
    assert results[SUPERSEDED] > len(want["cases"])
    # the indexes are back, Alembic sees the schema at head
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata) == []
    reference.dispose()


def test_a_load_into_a_model_that_holds_rows_is_refused(engine, topics, settings) -> None:
    load_model(engine, topics, _records(topics, seed=2)[:50], settings)
    with engine.connect() as conn, conn.begin(), pytest.raises(RuntimeError, match="holds rows"):
        BulkLoader(conn).prepare()


def test_a_load_stopped_half_way_can_be_rebuilt(engine, topics, settings) -> None:
    """Stopped before its last transaction: rows, no offsets, no secondary indexes. The
    rebuild restores the indexes before the migrations drop them by name."""
    records = _with_offsets(_records(topics, seed=8))[:300]
    ingestor, keys = _ingestor(topics, settings), CaseStateKeys(get_codec())
    with engine.connect() as conn:
        loader = BulkLoader(conn)
        with conn.begin():
            loader.prepare()
        reducer = ChunkReducer(ingestor, keys)
        for rec in records:
            reducer.add(*rec)
        with conn.begin():
            loader.write(reducer.finish(), datetime.now(UTC))
    model = dump_model(engine)
    assert model["cases"] and not model["consumed_offsets"]
    _restore_indexes(engine)
    downgrade(engine)
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata) == []
    assert not any(dump_model(engine).values())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_loading_processes_get_whole_partition_numbers(topics) -> None:
    """`rebuild --jobs N`: partition p of every topic in one group, so a case's state,
    activity and tasks are written by one process; every partition in exactly one."""
    ends = {(t, p): 10 + p for t in topics.outputs() for p in range(6)}
    groups = _groups(ends, 4)
    assert sorted(k for g in groups for k in g) == sorted(ends)
    for g in groups:
        assert len({p % 4 for _t, p in g}) == 1
        assert {t for t, _p in g} == set(topics.outputs())
    assert _groups(ends, 1) == [ends] and len(_groups({(topics.case_state, 0): 5}, 3)) == 1
