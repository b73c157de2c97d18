"""The read model on the real broker, on SQLite and on a real PostgreSQL.

End to end: JSON events through `onewindow produce`, the case-state and materials
workers, `onewindow sink`, read back through the counter API equal to the pure fold and
the pure link rules, no plaintext ID number anywhere in the model; `onewindow rebuild`
gives the same model. And a sink killed with SIGKILL mid-batch and restarted leaves the
model exactly equal to the one the pure pipeline gives.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from counter.app import create_app
from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.kafka_local import free_port
from onewindow.read_model.engine import make_engine
from onewindow.read_model.tables import ConsumedOffset, DeadLetter, MaterialLink
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from sinks.migrations import upgrade
from tests.integration.streams import (
    ID_KEY,
    shuffled_with_duplicates,
    start_materials_worker,
    start_worker,
    stop,
    wait_stream_apps_caught_up,
    worker_env,
)
from tests.kafka_support import consumer_conf, producer_conf
from tests.read_model_support import (
    case_outputs,
    dump_model,
    expected_case,
    expected_links,
    expected_views,
    group_by_case,
    link_records,
    load_model,
    plaintext_ids,
    read_jsonl,
    scan_text_columns,
    write_jsonl,
)
from tests.staff_support import bearer_for

pytestmark = pytest.mark.integration

KEY = ID_KEY  # the workers' key (tests/integration/streams.py): the sink's must be the same


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'model.db'}"
    return request.getfixturevalue("postgres_url")


def _env(kafka: str, topics: Topics, tmp: Path, db_url: str) -> dict[str, str]:
    return dict(worker_env(kafka, topics, tmp), ONEWINDOW_DATABASE_URL=db_url,
                ONEWINDOW_ID_HASH_KEY=KEY)


def _cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "onewindow_cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _start_sink(env: dict[str, str], tmp: Path, port: int, *extra: str,
                name: str = "sink") -> subprocess.Popen[bytes]:
    log = open(tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "onewindow_cli", "sink", "--metrics-port",
                             str(port), *extra], env=env, stdout=log, stderr=subprocess.STDOUT)


def _settings(topics: Topics, db_url: str) -> Settings:
    return Settings(database_url=db_url, topic_prefix=topics.prefix,
                    id_hash_key=SecretStr(KEY))


def _ends(kafka: str, names: list[str]) -> dict[tuple[str, int], int]:
    c = Consumer({**consumer_conf(kafka), "group.id": "ends"})
    try:
        out = {}
        for name in names:
            for p in c.list_topics(name, timeout=10).topics[name].partitions:
                _lo, hi = c.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                if hi > 0:
                    out[(name, p)] = hi
        return out
    finally:
        c.close()


def _stored_offsets(engine: Engine) -> dict[tuple[str, int], int]:
    with engine.connect() as conn:
        return {(t, p): o for t, p, o in conn.execute(
            select(ConsumedOffset.topic, ConsumedOffset.partition, ConsumedOffset.next_offset))}


def _wait(cond: Callable[[], bool], what: str, timeout: float = 120,
          procs: tuple[subprocess.Popen[bytes], ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{what}: a process exited with {p.returncode}")
        try:
            if cond():
                return
        except Exception:  # noqa: BLE001, S110 - the model may not exist yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _wait_sink_caught_up(kafka: str, topics: Topics, engine: Engine,
                         procs: tuple[subprocess.Popen[bytes], ...] = ()) -> None:
    ends = _ends(kafka, list(topics.outputs()))

    def done() -> bool:
        stored = _stored_offsets(engine)
        return all(stored.get(k, 0) >= v for k, v in ends.items())

    _wait(done, "the sink to reach the end of the output topics", procs=procs)


def _invalid_events(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Two records the stream app must dead-letter, one with a bad resident ID."""
    bad_id = dict(template, case_id="GZBAD0001", event_id="bad-1",
                  applicant={"kind": "PERSON", "id_type": "RESIDENT_ID",
                             "id_number": "440106198503121230", "name": "测试"})
    future = {"type": "TaskUpdated", "event_id": "bad-2", "case_id": "GZBAD0002",
              "department": "scjgj", "occurred_at": datetime.now(UTC) + timedelta(days=2),
              "task_id": "T", "status": "RECEIVED", "officer": None, "note": None}
    return [bad_id, future]


# --------------------------------------------------------------------------- end to end


def test_end_to_end_through_produce_workers_sink_and_api_then_rebuild(
        kafka: str, provisioned: Topics, tmp_path: Path, db_url: str,
        example_events_path: Path) -> None:
    topics = provisioned
    example = read_jsonl(example_events_path)
    cases = list(ScenarioGenerator(ScenarioConfig(seed=21)).cases(150)) + [example]
    events = shuffled_with_duplicates(cases, seed=8)
    good = write_jsonl(tmp_path / "events.jsonl", events)
    bad_events = _invalid_events(example[0])
    bad = write_jsonl(tmp_path / "bad.jsonl", bad_events)
    env = _env(kafka, topics, tmp_path, db_url)

    t0 = time.monotonic()
    r = _cli(env, "produce", str(good))
    assert r.returncode == 0, r.stderr
    assert f"sent {len(events)} events" in r.stdout
    r = _cli(env, "produce", "--no-validate", str(bad))
    assert r.returncode == 0, r.stderr

    port = free_port()
    worker = start_worker(kafka, topics, tmp_path)
    materials = start_materials_worker(kafka, topics, tmp_path)
    sink = _start_sink(env, tmp_path, port)
    engine = make_engine(db_url)
    procs = (worker, materials, sink)
    try:
        wait_stream_apps_caught_up(kafka, topics, procs, timeout=120)
        _wait_sink_caught_up(kafka, topics, engine, procs=procs)
        latency = time.monotonic() - t0
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        stop(worker)
        stop(materials)
        stop(sink)
    assert sink.returncode == 0, (tmp_path / "sink.log").read_text()[-3000:]
    assert "onewindow_read_model_latency_seconds_count" in metrics
    # the one lag metric of every consumer, the sink's group; build info, process metrics
    assert f'onewindow_consumer_lag{{group="{topics.prefix}onewindow-sink",' in metrics
    assert "onewindow_build_info{" in metrics and "process_resident_memory_bytes" in metrics
    assert "onewindow_sink_commit_seconds_bucket" in metrics
    print(f"\n[{db_url.split(':')[0]}] {len(events)} events produced -> model caught up in "
          f"{latency:.1f}s")

    # ---- through the API: equal to the pure fold and the pure link rules
    flat = [e for c in cases for e in c]
    now = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
    cal = load_calendar()
    app = create_app(_settings(topics, db_url), engine=engine, clock=lambda: now)
    staff = bearer_for(db_url, "clerk", "supervisor", "ops")
    with TestClient(app, headers=staff) as client:
        for case_id, view in expected_views(group_by_case(flat)).items():
            assert client.get(f"/api/cases/{case_id}").json() == expected_case(view, now, cal)
        for case in cases[::10]:
            order = sorted({e["event_id"]: e for e in case}.values(),
                           key=lambda e: (e["occurred_at"], e["event_id"]))
            body = client.get(f"/api/cases/{case[0]['case_id']}/timeline",
                              params={"limit": 500}).json()
            assert [i["event_id"] for i in body["items"]] == [e["event_id"] for e in order]
        want_links, want_avoidable = expected_links(flat)
        with engine.connect() as conn:
            got = {(a, b): v for a, b, v in conn.execute(select(
                MaterialLink.material_a, MaterialLink.material_b, MaterialLink.verdict))}
        assert got == want_links
        for a, b in list(want_links)[:40]:
            body = client.get(f"/api/materials/{a}").json()
            assert (b, want_links[(a, b)]) in {(lk["material_id"], lk["verdict"])
                                              for lk in body["links"]}
            assert body["avoidable"] == (a in want_avoidable)
        doc = client.get("/api/holders/materials", params={
            "id_type": "RESIDENT_ID", "id_number": "440106 19850312 1237"}).json()
        assert doc["documents"][0]["times_submitted"] == 2
        assert doc["documents"][0]["avoidable_submissions"] == 1
        dead = client.get("/api/dead-letters").json()["items"]
        assert {d["reason"] for d in dead} == {"INVALID_ID_NUMBER", "FUTURE_TIMESTAMP"}
        # a NUL in a filter or a case id: a 422, not the driver's error (PostgreSQL's text
        # cannot hold one: it was a 500 there)
        for path, params in (("/api/cases", {"service_code": "\x00"}),
                             (f"/api/cases/{cases[0][0]['case_id']}%00", {})):
            r = client.get(path, params=params)
            assert r.status_code == 422 and r.json()["error"] == "invalid_request", r.text

    # ---- privacy: no plaintext 18-character ID in any text column
    needles = plaintext_ids(flat + bad_events)
    assert "440106198503121230" in needles
    assert scan_text_columns(engine, needles) == []
    sink_log = (tmp_path / "sink.log").read_text()
    assert not [n for n in needles if n in sink_log]

    # ---- rebuild from the topics gives the same model (in chunks of 300 records, so the
    # bulk load's cross-chunk upserts count too, by two loading processes)
    live = dump_model(engine)
    r = _cli(env, "rebuild", "--batch-size", "300", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert "cases" in r.stdout and "timeline_entries" in r.stdout
    assert dump_model(engine) == live
    engine.dispose()


# --------------------------------------------------------------------------- SIGKILL


def _produce_outputs(kafka: str, records: list[tuple[str, bytes, bytes]]) -> None:
    p = Producer({**producer_conf(kafka), "enable.idempotence": True, "linger.ms": 5})
    for topic, key, value in records:
        p.produce(topic, value, key)
        p.poll(0)
    assert p.flush(30) == 0


def test_sigkill_mid_batch_and_restart_leaves_the_model_exactly_equal(
        kafka: str, provisioned: Topics, tmp_path: Path, db_url: str) -> None:
    topics = provisioned
    codec = get_codec()
    cases = list(ScenarioGenerator(ScenarioConfig(seed=31)).cases(200))
    flat = [e for c in cases for e in c]
    events = shuffled_with_duplicates(cases, seed=9)
    outs = case_outputs(events, topics, ids=IdProtector(KEY))
    links = [(topics.material_links, codec.encode_record("MaterialLink", r))
             for r in link_records(flat)]
    rng = random.Random(4)
    records = outs + links + rng.sample(links, len(links) // 3)  # links found twice
    keyed = []
    for t, v in records:
        rec = codec.decode_record(v)
        key = rec["case_id"] if "case_id" in rec else f"{rec['material_a']}|{rec['material_b']}"
        keyed.append((t, key.encode(), v))
    _produce_outputs(kafka, keyed)

    # the model the pure pipeline gives (another database, other batches)
    reference = make_engine(f"sqlite:///{tmp_path / 'reference.db'}", writer=True)
    upgrade(reference)
    load_model(reference, topics, records, _settings(topics, db_url), batch=997)

    env = _env(kafka, topics, tmp_path, db_url)
    engine = make_engine(db_url)
    sink = _start_sink(env, tmp_path, free_port(), "--batch-size", "300", "--commit-delay",
                       "0.25", name="sink1")
    try:
        # kill it while it is inside a transaction: some batches committed, most not
        _wait(lambda: sum(_stored_offsets(engine).values()) > 0, "a first commit",
              procs=(sink,))
        time.sleep(0.6)
        committed_before = sum(_stored_offsets(engine).values())
    finally:
        stop(sink, signal.SIGKILL)
    assert sink.returncode == -signal.SIGKILL
    total = sum(_ends(kafka, list(topics.outputs())).values())
    assert 0 < committed_before < total, (committed_before, total)
    left = dump_model(engine)
    assert sum(len(rows) for t, rows in left.items() if t != "consumed_offsets") > 0

    sink = _start_sink(env, tmp_path, free_port(), name="sink2")
    try:
        _wait_sink_caught_up(kafka, topics, engine, procs=(sink,))
    finally:
        stop(sink)
    assert sink.returncode == 0, (tmp_path / "sink2.log").read_text()[-3000:]

    got, want = dump_model(engine), dump_model(reference)
    for table in want:
        if table == "consumed_offsets":
            continue
        assert got[table] == want[table], table
    assert _stored_offsets(engine) == _ends(kafka, list(topics.outputs()))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DeadLetter)).scalar_one() == 0

    # ---- and so does a rebuild from the topics (one bulk chunk: states superseded in
    # memory, links found twice), the offsets included
    r = _cli(env, "rebuild")
    assert r.returncode == 0, r.stderr
    assert "superseded" in r.stdout
    got, want = dump_model(engine), dump_model(reference)
    assert {t: rows for t, rows in got.items() if t != "consumed_offsets"} == \
        {t: rows for t, rows in want.items() if t != "consumed_offsets"}
    assert _stored_offsets(engine) == _ends(kafka, list(topics.outputs()))
    cal = load_calendar()
    now = datetime(2025, 6, 1, tzinfo=UTC)
    staff = bearer_for(db_url, "clerk")
    with TestClient(create_app(_settings(topics, db_url), engine=engine,
                               clock=lambda: now), headers=staff) as client:
        for case_id, view in expected_views(cases).items():
            assert client.get(f"/api/cases/{case_id}").json() == expected_case(view, now, cal)
    engine.dispose()
    reference.dispose()


# --------------------------------------------------------------------------- no Kafka


def test_the_same_records_give_the_same_model_on_both_databases(
        tmp_path: Path, postgres_url: str, example_events_path: Path) -> None:
    """The unit of work on PostgreSQL equals SQLite, cell by cell (random batching)."""
    topics = Topics("x.")
    cases = list(ScenarioGenerator(ScenarioConfig(seed=41)).cases(80))
    cases.append(read_jsonl(example_events_path))
    flat = [e for c in cases for e in c]
    events = shuffled_with_duplicates(cases, seed=2)
    codec = get_codec()
    records = case_outputs(events, topics, ids=IdProtector(KEY)) + [
        (topics.material_links, codec.encode_record("MaterialLink", r))
        for r in link_records(flat)] * 2
    settings = _settings(topics, postgres_url)
    sqlite = make_engine(f"sqlite:///{tmp_path / 'a.db'}", writer=True)
    pg = make_engine(postgres_url, writer=True)
    for engine, seed in ((sqlite, 1), (pg, 2)):
        upgrade(engine)
        load_model(engine, topics, records, settings, seed=seed)
    assert dump_model(pg) == dump_model(sqlite)
    assert scan_text_columns(pg, plaintext_ids(flat)) == []
    sqlite.dispose()
    pg.dispose()

