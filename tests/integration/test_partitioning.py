"""Partitioning on the real broker (interfaces.md, Kafka: partitioning): the SDK places
every keyed record by the Java client's rule (`onewindow.topics.partition_for`), and the
case-state worker dead-letters a record found on another partition (`WRONG_PARTITION`,
domain.md section 2) and goes on with the next record of that partition."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from onewindow.codec import get_codec
from onewindow.security.kafka_auth import department_principal
from onewindow.topics import Topics, partition_for
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.integration.streams import (
    comparable,
    expected_views,
    latest_states,
    publish,
    read_topic,
    start_worker,
    stop,
)
from tests.kafka_support import department_publishers, producer_conf

pytestmark = pytest.mark.integration

PARTITIONS = 3  # the `provisioned` fixture's count (and the worker's, streams.worker_env)


def test_the_sdk_places_every_key_by_the_java_rule(kafka: str, provisioned: Topics) -> None:
    rng = random.Random(11)
    topic = provisioned.input("scjgj")
    # Case ids of every length mod 4 (murmur2's tail), and arbitrary bytes through send_raw.
    case_ids = [f"GZ{rng.randrange(10**12):012d}"[: rng.randint(1, 14)] for _ in range(150)]
    raw_keys = [rng.randbytes(rng.randint(1, 40)) for _ in range(150)]
    at = datetime(2025, 10, 9, 1, 0, tzinfo=UTC)
    with department_publishers(kafka, provisioned) as pub:
        for i, case_id in enumerate(case_ids):
            pub.send({"type": "TaskUpdated", "event_id": f"e{i}", "case_id": case_id,
                      "department": "scjgj", "occurred_at": at, "task_id": "T1",
                      "status": "RECEIVED", "officer": None, "note": None},
                     validate_first=False)
        for key in raw_keys:
            pub.send_raw(topic, key, b"not an event: only its place counts")
    records = read_topic(kafka, topic, expected=len(case_ids) + len(raw_keys))
    assert len(records) == len(case_ids) + len(raw_keys)
    placed = {(m.key(), m.partition()) for m in records}
    assert all(p == partition_for(k, PARTITIONS) for k, p in placed), [
        (k, p, partition_for(k, PARTITIONS)) for k, p in placed
        if p != partition_for(k, PARTITIONS)][:5]
    assert {p for _k, p in placed} == set(range(PARTITIONS))
    assert {m.key() for m in records} >= {c.encode() for c in case_ids}


def _moved_to(case: list[dict[str, Any]], case_id: str) -> list[dict[str, Any]]:
    return [dict(e, case_id=case_id) for e in case]


def test_a_record_on_the_wrong_partition_is_dead_lettered_and_the_next_applied(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    codec = get_codec()
    case_a = next(iter(ScenarioGenerator(ScenarioConfig(seed=21)).cases(1)))
    a_id = case_a[0]["case_id"]
    task = next(e for e in case_a if e["type"] == "TaskUpdated")
    dept = task["department"]
    home = partition_for(a_id.encode(), PARTITIONS)
    wrong = (home + 1) % PARTITIONS
    # A second case whose events belong on that wrong partition, same department's topic.
    b_id = next(c for c in (f"GZB{n:06d}" for n in range(1000))
                if partition_for(c.encode(), PARTITIONS) == wrong)
    case_b = _moved_to(case_a, b_id)
    # Valid in every other respect: applied, it would reject A's task.
    moved = dict(task, event_id="moved-1", status="REJECTED")

    publish(kafka, provisioned, case_a)
    producer = Producer(producer_conf(kafka, department_principal(dept)))
    producer.produce(provisioned.input(dept), value=codec.encode(moved),
                     key=a_id.encode(), partition=wrong)
    assert producer.flush(30) == 0
    publish(kafka, provisioned, case_b)  # its events follow on partition `wrong`

    worker = start_worker(kafka, provisioned, tmp_path)
    try:
        expected = expected_views([case_a, case_b])
        got = latest_states(kafka, provisioned, {c: v["version"] for c, v in expected.items()})
        dead = [codec.decode_record(m.value())
                for m in read_topic(kafka, provisioned.dead_letters, expected=1)]
    finally:
        stop(worker)
    assert worker.returncode == 0, (tmp_path / "w1.log").read_text()[-3000:]
    for case_id, view in expected.items():
        assert comparable(got[case_id]) == view, case_id
    assert [(d["reason"], d["source_topic"], d["source_partition"], d["key"]) for d in dead] \
        == [("WRONG_PARTITION", provisioned.input(dept), wrong, a_id.encode())]
    assert codec.decode(dead[0]["original"])["event_id"] == "moved-1"
    # B's records came after the misplaced one on the same partition, and were applied.
    later = [m for m in read_topic(kafka, provisioned.input(dept), expected=1)
             if m.partition() == wrong and m.key() == b_id.encode()]
    assert later and min(m.offset() for m in later) > dead[0]["source_offset"]
