"""No plaintext ID number past the input topics, on the real broker (interfaces.md, Kafka:
"derived topics and state stores carry citizen and company ID numbers only as the keyed
hash and the masked form"; docs/privacy.md).

The case-state worker, the materials worker and the sink run as processes over scenario
traffic plus a case that puts ID numbers everywhere they can go (typed with spaces,
dashes, a passport that passes no check) and one record with a bad ID number. Then every
topic under the test's prefix but the input topics and the dead-letter topic (case-state,
case-activity, material-links, the material index, every Faust changelog and internal
topic) is read as raw bytes, and every file under the workers' stream directories (the
RocksDB stores) is read raw and, through rocksdict, key by key: none holds any input ID
number, as typed or normalised. The input topics and the dead-letter topic do (the scan
finds what is there), and the read model holds none either.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import rocksdict
from confluent_kafka import Consumer, TopicPartition

from onewindow.kafka_local import free_port
from onewindow.provision import material_index_topic
from onewindow.read_model.engine import make_engine
from onewindow.topics import Topics
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.integration.streams import (
    ID_KEY,
    publish,
    shuffled_with_duplicates,
    start_materials_worker,
    start_worker,
    stop,
    wait_stream_apps_caught_up,
    worker_env,
)
from tests.integration.test_read_model import _cli, _start_sink, _wait_sink_caught_up
from tests.kafka_support import consumer_conf
from tests.privacy_support import (
    TYPED,
    event_needles,
    needles,
    plaintext_in,
    privacy_events,
)
from tests.read_model_support import read_jsonl, scan_text_columns

pytestmark = pytest.mark.integration

DEPARTMENTS = ["bdcdj", "gaj", "gjj", "mzj", "rsj", "scjgj", "swj", "wjw", "ybj", "zjj", "zwfw"]
BAD_RID = "440106198503121230"  # fails the GB 11643 check: dead-lettered, kept as sent


def _topic_bytes(kafka: str, topic: str, *, expect_records: bool = False
                 ) -> tuple[bytes, int]:
    """Every record of a topic, key, value and headers, concatenated as they are
    (read_committed, as every consumer of the project reads), and how many records.
    ``expect_records``: retry for a while when the topic looks empty (metadata of a topic
    just written may lag)."""
    c = Consumer({**consumer_conf(kafka), "group.id": f"scan-{uuid.uuid4().hex}",
                  "enable.auto.commit": False})
    try:
        deadline = time.monotonic() + 60
        while True:
            parts = c.list_topics(topic, timeout=10).topics[topic].partitions
            ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10,
                                               cached=False)[1] for p in parts}
            if not expect_records or sum(max(e, 0) for e in ends.values()) > 0 \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        c.assign([TopicPartition(topic, p, 0) for p in parts if ends[p] > 0])
        chunks: list[bytes] = []
        n = 0
        pos = dict.fromkeys(ends, 0)
        while any(pos[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error() is not None:
                    continue
                pos[m.partition()] = m.offset() + 1
                chunks += [m.key() or b"", m.value() or b""]
                for _k, v in m.headers() or []:
                    chunks.append(v or b"")
                n += 1
        # (transaction markers take offsets without being records: reaching the end of
        # every partition, or the deadline, is done)
        return b"\x00".join(chunks), n
    finally:
        c.close()


def _prefixed_topics(kafka: str, prefix: str) -> list[str]:
    c = Consumer({**consumer_conf(kafka), "group.id": f"list-{uuid.uuid4().hex}"})
    try:
        return sorted(t for t in c.list_topics(timeout=10).topics if t.startswith(prefix))
    finally:
        c.close()


def _rocksdb_dirs(root: Path) -> list[Path]:
    """The RocksDB stores under a stream directory (a directory holding CURRENT)."""
    return sorted(p.parent for p in root.rglob("CURRENT"))


def _store_bytes(db: Path) -> tuple[bytes, int]:
    """Every key and value of a RocksDB store (decompressed: read through rocksdict, as
    Faust's store writes it, raw mode), and how many entries."""
    store = rocksdict.Rdict(str(db), options=rocksdict.Options(raw_mode=True),
                            access_type=rocksdict.AccessType.read_only())
    try:
        chunks = []
        n = 0
        for k, v in store.items():
            chunks += [k, v]
            n += 1
        return b"\x00".join(chunks), n
    finally:
        store.close()


def test_no_derived_topic_or_state_store_holds_a_plaintext_id_number(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    topics = provisioned
    cases = list(ScenarioGenerator(ScenarioConfig(seed=61)).cases(80))
    cases += [read_jsonl(Path(__file__).parents[1] / "examples" / "restaurant-case.jsonl"),
              privacy_events()]
    flat = [e for c in cases for e in c]
    bad = dict(privacy_events("GZPRIV0009")[0],
               applicant={"kind": "PERSON", "id_type": "RESIDENT_ID", "id_number": BAD_RID,
                          "name": "测试"})
    events = shuffled_with_duplicates(cases, seed=12) + [bad]
    numbers = needles() | event_needles(flat) | {BAD_RID}
    assert len(numbers) > 50
    publish(kafka, topics, events)

    db_url = f"sqlite:///{tmp_path / 'model.db'}"
    env = dict(worker_env(kafka, topics, tmp_path), ONEWINDOW_DATABASE_URL=db_url)
    assert env["ONEWINDOW_ID_HASH_KEY"] == ID_KEY
    worker = start_worker(kafka, topics, tmp_path, name="w1")
    materials = start_materials_worker(kafka, topics, tmp_path, name="m1")
    sink = _start_sink(env, tmp_path, free_port())
    engine = make_engine(db_url)
    procs = (worker, materials, sink)
    try:
        wait_stream_apps_caught_up(kafka, topics, procs, timeout=120)
        _wait_sink_caught_up(kafka, topics, engine, procs=procs)
    finally:
        for p in procs:
            stop(p)  # SIGTERM: the stores are closed, their logs flushed to files
    for p, name in ((worker, "w1"), (materials, "m1"), (sink, "sink")):
        assert p.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]

    # ---- topics: everything under the prefix but the inputs and the dead letters
    names = _prefixed_topics(kafka, topics.prefix)
    exempt = set(topics.inputs(DEPARTMENTS)) | {topics.dead_letters}
    derived = [t for t in names if t not in exempt]
    must_have = {topics.case_state, topics.case_activity, topics.material_links,
                 material_index_topic(topics)}
    assert must_have <= set(derived), derived
    changelogs = [t for t in derived if t.endswith("-changelog")]
    assert {f"{topics.case_state_app}-case-fold-changelog",
            f"{topics.materials_app}-material-index-changelog"} <= set(changelogs)
    scanned = {}
    for topic in derived:
        blob, n = _topic_bytes(kafka, topic, expect_records=topic in must_have
                               or topic in changelogs)
        scanned[topic] = n
        assert plaintext_in(blob, numbers) == [], topic
    for topic in must_have | set(changelogs):
        assert scanned[topic] > 0, (topic, scanned)
    # the scan finds plaintext where it is allowed to be: it is not blind
    inputs = b"".join(_topic_bytes(kafka, t)[0] for t in topics.inputs(DEPARTMENTS))
    typed = {form for forms in TYPED.values() for form in forms}
    assert set(plaintext_in(inputs, numbers)) >= typed | {BAD_RID}
    dead, n_dead = _topic_bytes(kafka, topics.dead_letters)
    assert n_dead == 1 and BAD_RID in plaintext_in(dead, numbers)

    # ---- state stores: every file raw, and every key and value through rocksdict
    stream_dir = tmp_path / "stream"
    files = [f for f in stream_dir.rglob("*") if f.is_file()]
    assert files
    for f in files:
        assert plaintext_in(f.read_bytes(), numbers) == [], f
    stores = _rocksdb_dirs(stream_dir)
    tables = {d.name.rsplit("-", 1)[0] for d in stores}
    assert {"case-fold", "material-index"} <= tables, stores
    entries = 0
    for db in stores:
        blob, n = _store_bytes(db)
        entries += n
        assert plaintext_in(blob, numbers) == [], db
    assert entries >= len(cases)

    # ---- and the read model (the sink's own scan: tests/integration/test_read_model.py)
    assert scan_text_columns(engine, numbers) == []
    engine.dispose()
    # rebuilding it from the topics reads the same protected records
    r = _cli(env, "rebuild")
    assert r.returncode == 0, r.stderr
