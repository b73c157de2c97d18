"""The unit of work on SQLite and PostgreSQL (``database_url``, tests/unit/conftest.py):
idempotent upserts, version guard, rows and offsets in one transaction, and the whole
pure pipeline (case step -> sink) equal to the fold."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.read_model import queries
from onewindow.read_model.engine import make_engine
from onewindow.read_model.tables import Case, ConsumedOffset, Material, Task, metadata
from onewindow.security.id_protection import IdProtector
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from sinks.ingest import Ingestor
from sinks.migrations import current_revision, downgrade, head_revision, upgrade
from sinks.rows import Batch, RowMaker
from sinks.unit_of_work import load_offsets, write_batch
from tests.examples import RESTAURANT_EVENTS
from tests.read_model_support import (
    case_outputs,
    dump_model,
    expected_links,
    expected_views,
    group_by_case,
    link_records,
    load_model,
    plaintext_ids,
    read_jsonl,
    scan_text_columns,
)
from tests.unit.sinks.helpers import T0
from tests.unit.sinks.helpers import case_state as _state


def _write(engine, topics, settings, records: list[tuple[str, str, dict]],
           partition: int = 0, start: int = 0) -> None:
    codec = get_codec()
    ing = Ingestor(topics, codec, RowMaker(codec, IdProtector.from_settings(settings)))
    b = Batch()
    for i, (topic, name, rec) in enumerate(records):
        ing.add(b, topic, partition, start + i, codec.encode_record(name, rec))
    with engine.begin() as conn:
        write_batch(conn, b)


def test_migrations_create_exactly_the_models_and_go_back(engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata) == []
    downgrade(engine)
    assert current_revision(engine) is None
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert current_revision(engine) == head_revision()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_runs_in_wal_mode(engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_an_older_version_never_overwrites_a_newer_one(engine, topics, settings) -> None:
    cs = topics.case_state
    _write(engine, topics, settings, [(cs, "CaseState", _state("C1", 3, [("T1", "APPROVED"),
                                                                           ("T2", "IN_REVIEW")]))])
    _write(engine, topics, settings, [(cs, "CaseState", _state("C1", 2, [("T1", "RECEIVED")],
                                                               status="ACCEPTED"))], start=1)
    with engine.connect() as conn:
        case = queries.get_case(conn, "C1")
    assert case["version"] == 3 and case["status"] == "IN_PROGRESS"
    assert [(t["task_id"], t["status"]) for t in case["tasks"]] == [("T1", "APPROVED"),
                                                                   ("T2", "IN_REVIEW")]
    # within one batch too, whatever the order
    _write(engine, topics, settings, [
        (cs, "CaseState", _state("C2", 5, [("T1", "APPROVED")], status="APPROVED")),
        (cs, "CaseState", _state("C2", 4, [("T1", "IN_REVIEW")]))], start=2)
    with engine.connect() as conn:
        assert queries.get_case(conn, "C2")["status"] == "APPROVED"


def test_a_newer_version_replaces_the_tasks_even_when_they_shrink(engine, topics,
                                                                   settings) -> None:
    cs = topics.case_state
    _write(engine, topics, settings, [(cs, "CaseState", _state("C1", 2, [("A", "PENDING"),
                                                                           ("B", "PENDING")]))])
    _write(engine, topics, settings, [(cs, "CaseState", _state("C1", 3, [("B", "RECEIVED")]))],
           start=1)
    with engine.connect() as conn:
        tasks = conn.execute(select(Task.task_id, Task.status, Task.position)).all()
    assert [tuple(t) for t in tasks] == [("B", "RECEIVED", 0)]


def test_same_version_again_refreshes_only_delivery_fields(engine, topics, settings) -> None:
    cs = topics.case_state
    later = T0 + timedelta(minutes=5)
    _write(engine, topics, settings, [(cs, "CaseState", _state("C1", 2, [("A", "PENDING")]))])
    _write(engine, topics, settings, [(cs, "CaseState", _state("C1", 2, [("A", "PENDING")],
                                                               source_timestamp=later))], start=1)
    with engine.connect() as conn:
        assert conn.execute(select(Case.source_timestamp)).scalar_one() == later
        assert conn.execute(select(Task.task_id)).scalars().all() == ["A"]


def test_activity_first_copy_wins_and_links_upsert_by_pair(engine, topics, settings,
                                                           example_events_path) -> None:
    events = read_jsonl(example_events_path)
    outs = case_outputs(events, topics)
    activity = [(t, v) for t, v in outs if t == topics.case_activity]
    links = [(topics.material_links, get_codec().encode_record("MaterialLink", r))
             for r in link_records(events)]
    # everything twice, links before the materials they name
    load_model(engine, topics, links + activity + activity + links, settings, batch=3)
    with engine.connect() as conn:
        tl = queries.timeline(conn, "GZ20251009000123")
        assert [e["event_id"] for e in tl] == [f"evt-000{i}" for i in range(1, 10)]
        m2 = queries.get_material(conn, "mat-0002")
        m1 = queries.get_material(conn, "mat-0001")
    assert m2["avoidable"] and not m1["avoidable"]
    assert [(lk["material_id"], lk["verdict"]) for lk in m2["links"]] == [
        ("mat-0001", "SAME_DOCUMENT")]
    assert m2["document_number"] is None and m2["document_number_masked"] == "44**************37"


def test_avoidable_is_set_whichever_arrives_first(engine, topics, settings,
                                                  example_events_path) -> None:
    events = read_jsonl(example_events_path)
    activity = [(t, v) for t, v in case_outputs(events, topics) if t == topics.case_activity]
    links = [(topics.material_links, get_codec().encode_record("MaterialLink", r))
             for r in link_records(events)]
    load_model(engine, topics, activity + links, settings, batch=100)  # one batch
    with engine.connect() as conn:
        assert conn.execute(select(Material.material_id).where(Material.avoidable)
                            ).scalars().all() == ["mat-0002"]


def test_offsets_are_stored_with_the_rows_and_never_go_back(engine, topics, settings) -> None:
    cs = topics.case_state
    _write(engine, topics, settings, [(cs, "CaseState", _state("C1", 1, []))], start=41)
    _write(engine, topics, settings, [(cs, "CaseState", _state("C1", 1, []))], start=7)
    with engine.connect() as conn:
        assert load_offsets(conn, [cs]) == {(cs, 0): 42}


def test_a_failed_transaction_leaves_neither_rows_nor_offsets(engine, topics, settings) -> None:
    codec = get_codec()
    ing = Ingestor(topics, codec, RowMaker(codec, IdProtector.from_settings(settings)))
    b = Batch()
    ing.add(b, topics.case_state, 0, 0, codec.encode_record("CaseState", _state("C1", 1, [])))
    with pytest.raises(RuntimeError), engine.begin() as conn:
        write_batch(conn, b)
        raise RuntimeError("crash before COMMIT")
    with engine.connect() as conn:
        assert conn.execute(select(Case)).all() == []
        assert conn.execute(select(ConsumedOffset)).all() == []


def test_unreadable_records_are_skipped_and_their_offsets_advance(engine, topics,
                                                                  settings) -> None:
    codec = get_codec()
    ing = Ingestor(topics, codec, RowMaker(codec, IdProtector.from_settings(settings)))
    b = Batch()
    assert ing.add(b, topics.case_state, 0, 0, b"\x00garbage") == "undecodable"
    assert ing.add(b, topics.case_state, 0, 1, None) == "tombstone"
    link = link_records(read_jsonl(_example()))[0]
    assert ing.add(b, topics.case_state, 0, 2,
                   codec.encode_record("MaterialLink", link)) == "wrong_type"
    with engine.begin() as conn:
        write_batch(conn, b)
    with engine.connect() as conn:
        assert load_offsets(conn, [topics.case_state]) == {(topics.case_state, 0): 3}


def _example():
    return RESTAURANT_EVENTS


@pytest.mark.parametrize("seed", [1, 2])
def test_pipeline_equals_the_pure_fold_and_link_rules_in_any_batching(
        engine, topics, settings, seed, tmp_path) -> None:
    cases = list(ScenarioGenerator(ScenarioConfig(seed=seed)).cases(60))
    cases.append(read_jsonl(_example()))
    flat = [e for c in cases for e in c]
    rng = random.Random(seed)
    shuffled = flat + rng.sample(flat, len(flat) // 10)  # duplicates
    rng.shuffle(shuffled)
    outs = case_outputs(shuffled, topics)
    codec = get_codec()
    links = [(topics.material_links, codec.encode_record("MaterialLink", r))
             for r in link_records(flat)]
    records = outs + links + links[: len(links) // 2]
    load_model(engine, topics, records, settings, seed=seed)

    cal = load_calendar()
    expected = expected_views(group_by_case(flat))
    with engine.connect() as conn:
        for case_id, view in expected.items():
            row = queries.get_case(conn, case_id)
            assert row["version"] == view["version"] and row["status"] == view["status"]
            assert row["due_at"] == view["due_at"] and row["closed_at"] == view["closed_at"]
            assert [(t["task_id"], t["status"]) for t in row["tasks"]] == [
                (t["task_id"], t["status"]) for t in view["tasks"]]
            assert len(queries.timeline(conn, case_id, limit=1000)) == view["version"]
        want_links, want_avoidable = expected_links(flat)
        got = {(lk["material_a"], lk["material_b"]): lk["verdict"]
               for lk in conn.execute(select(metadata.tables["material_links"])).mappings()}
        assert got == want_links
        assert set(conn.execute(select(Material.material_id).where(Material.avoidable))
                   .scalars()) == want_avoidable
    assert cal is not None
    assert scan_text_columns(engine, plaintext_ids(flat)) == []

    # the same records in other batches (in one, on SQLite) give the same model
    e2 = make_engine(f"sqlite:///{tmp_path / 'other.db'}", writer=True)
    upgrade(e2)
    load_model(e2, topics, records, settings, batch=len(records))
    assert dump_model(e2) == dump_model(engine)


def test_dead_letters_keep_no_plaintext_and_dedupe_by_source(engine, topics, settings) -> None:
    codec = get_codec()
    events = read_jsonl(_example())
    bad = dict(events[0], applicant=dict(events[0]["applicant"], id_number="440106198503121237"))
    dl = {"original": codec.encode(bad), "key": b"GZ20251009000123",
          "source_topic": "dept.zwfw.events", "source_partition": 1, "source_offset": 9,
          "reason": "INVALID_ID_NUMBER",
          "detail": "applicant.id_number: '440106198503121237' is not a valid USCC",
          "department": "zwfw", "dead_lettered_at": T0}
    rec = ("DeadLetter", dl)
    _write(engine, topics, settings, [(topics.dead_letters, *rec), (topics.dead_letters, *rec)])
    with engine.connect() as conn:
        rows = queries.list_dead_letters(conn)
    assert len(rows) == 1
    assert "44**************37" in rows[0]["detail"]
    assert rows[0]["original_json"]["applicant"]["id_masked"] == "44**************37"
    assert scan_text_columns(engine, {"440106198503121237"}) == []
    assert json.dumps(rows[0], default=str).find("440106198503121237") < 0
