"""Helpers for tests that run the real stream workers as processes against the broker."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupState, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.domain.case import fold, project
from onewindow.kafka_local import free_port
from onewindow.provision import material_index_topic
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics
from tests.kafka_support import consumer_conf, department_publishers, producer_conf

#: The ID hash key of the workers the integration tests start (and of their sinks).
ID_KEY = "integration-test-id-hash-key-0123456789"
IDS = IdProtector(ID_KEY)


def worker_env(kafka: str, topics: Topics, data_dir: Path) -> dict[str, str]:
    return dict(os.environ, ONEWINDOW_KAFKA_BOOTSTRAP=kafka, ONEWINDOW_TOPIC_PREFIX=topics.prefix,
                ONEWINDOW_DATA_DIR=str(data_dir), ONEWINDOW_PARTITIONS="3",
                ONEWINDOW_ID_HASH_KEY=ID_KEY)


def start_worker(kafka: str, topics: Topics, data_dir: Path, name: str = "w1",
                 command: str = "worker", *, web_port: int | None = None,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`onewindow <command>` as a process (log in data_dir/<name>.log), its /metrics on
    `web_port` (a free one when None), `env` added to its environment."""
    log = open(data_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "onewindow_cli", command, "--name", name,
         "--web-port", str(web_port or free_port())],
        env={**worker_env(kafka, topics, data_dir), **(env or {})}, stdout=log,
        stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def publish(kafka: str, topics: Topics, events: Iterable[dict[str, Any]]) -> int:
    with department_publishers(kafka, topics) as pub:
        n = 0
        for e in events:
            pub.send(e, validate_first=False)
            n += 1
    return n


def shuffled_with_duplicates(cases: list[list[dict[str, Any]]], seed: int,
                             dup_rate: float = 0.1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    flat = [e for case in cases for e in case]
    flat += [e for e in flat if rng.random() < dup_rate]
    rng.shuffle(flat)
    return flat


def expected_views(cases: list[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The pure fold of each case's events as the worker folds them: protected with
    :data:`ID_KEY` (no plaintext ID number; docs/privacy.md)."""
    cal = load_calendar()
    return {case[0]["case_id"]: project(fold([IDS.protect_event(e) for e in case]), cal)
            for case in cases}


def latest_states(kafka: str, topics: Topics, want: dict[str, int],
                  timeout: float = 120.0) -> dict[str, dict[str, Any]]:
    """Read onewindow.case-state until every case reached at least its wanted version."""
    codec = get_codec()
    consumer = Consumer({**consumer_conf(kafka), "group.id": f"check-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    md = consumer.list_topics(topics.case_state, timeout=10)
    consumer.assign([TopicPartition(topics.case_state, p, 0)
                     for p in md.topics[topics.case_state].partitions])
    best: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is not None:
                    continue
                state = codec.decode_record(msg.value())
                cid = state["case_id"]
                if cid not in best or state["version"] >= best[cid]["version"]:
                    best[cid] = state
            if all(cid in best and best[cid]["version"] >= v for cid, v in want.items()):
                return best
    finally:
        consumer.close()
    missing = [c for c, v in want.items() if c not in best or best[c]["version"] < v]
    raise AssertionError(f"{len(missing)} cases never reached their version, e.g. {missing[:3]}")


def count_topic(kafka: str, topic: str) -> int:
    consumer = Consumer({**consumer_conf(kafka), "group.id": f"c-{uuid.uuid4().hex}"})
    md = consumer.list_topics(topic, timeout=10)
    total = 0
    for p in md.topics[topic].partitions:
        lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        total += hi - lo
    consumer.close()
    return total


def comparable(view: dict[str, Any]) -> dict[str, Any]:
    """A case-state record without the fields that describe delivery, not the case."""
    out = {k: v for k, v in view.items()
           if k not in ("type", "source_timestamp", "last_event_id")}
    return out


# --------------------------------------------------------------------------- materials


def start_materials_worker(kafka: str, topics: Topics, data_dir: Path, name: str = "m1",
                           web_port: int | None = None) -> subprocess.Popen[bytes]:
    """`onewindow materials-worker` as a process (log in data_dir/<name>.log), its
    /metrics on `web_port` (a free one when None)."""
    log = open(data_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "onewindow_cli", "materials-worker", "--name", name,
         "--web-port", str(web_port or free_port())],
        env=worker_env(kafka, topics, data_dir), stdout=log, stderr=subprocess.STDOUT)


def group_caught_up(kafka: str, group: str, topics: Iterable[str]) -> bool:
    """Whether `group` has committed every partition of `topics` up to its end."""
    consumer = Consumer({**consumer_conf(kafka), "group.id": group,
                         "enable.auto.commit": False})
    try:
        parts = []
        for topic in topics:
            md = consumer.list_topics(topic, timeout=10)
            parts += [TopicPartition(topic, p) for p in md.topics[topic].partitions]
        try:
            committed = consumer.committed(parts, timeout=10)
        except KafkaException:
            return False  # the group coordinator is still loading: not yet
        for tp in committed:
            _lo, hi = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition),
                                                     timeout=10)
            if hi > 0 and tp.offset < hi:
                return False
        return True
    finally:
        consumer.close()


def _positions(kafka: str, group: str, topics: Iterable[str]) -> list[str]:
    """committed/high per partition that is behind (the failure's evidence)."""
    consumer = Consumer({**consumer_conf(kafka), "group.id": group, "enable.auto.commit": False})
    try:
        parts = [TopicPartition(t, p) for t in topics
                 for p in consumer.list_topics(t, timeout=10).topics[t].partitions]
        out = []
        for tp in consumer.committed(parts, timeout=10):
            _lo, hi = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition),
                                                     timeout=10)
            if tp.offset < hi:
                out.append(f"{tp.topic}[{tp.partition}] committed {tp.offset} of {hi}")
        return out
    finally:
        consumer.close()


def wait_caught_up(kafka: str, group: str, topics: Iterable[str], timeout: float = 90.0,
                   procs: Iterable[subprocess.Popen[bytes]] = ()) -> None:
    topics = list(topics)
    procs = list(procs)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"a worker exited with {p.returncode}")
        if group_caught_up(kafka, group, topics):
            return
        time.sleep(0.5)
    raise AssertionError(f"group {group} did not catch up on {topics} within {timeout}s: "
                         f"{_positions(kafka, group, topics)}")


def wait_stream_apps_caught_up(kafka: str, topics: Topics,
                               procs: Iterable[subprocess.Popen[bytes]] = (),
                               timeout: float = 90.0) -> None:
    """Both stream apps' groups committed to the end: the case-state app on every input
    topic, the materials app on the activity and index topics."""
    procs = list(procs)
    wait_caught_up(kafka, topics.case_state_app, topics.inputs(load_registry().codes),
                   procs=procs, timeout=timeout)
    wait_caught_up(kafka, topics.materials_app,
                   [topics.case_activity, material_index_topic(topics)], procs=procs,
                   timeout=timeout)


def read_topic(kafka: str, topic: str, expected: int, timeout: float = 60.0) -> list[Any]:
    """Every record of a topic from the beginning, waiting for at least `expected`."""
    consumer = Consumer({**consumer_conf(kafka), "group.id": f"read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    md = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out.extend(m for m in consumer.consume(1000, 0.5) if m.error() is None)
        if len(out) >= expected:
            # drain what else is already there, then stop
            out.extend(m for m in consumer.consume(1000, 1.0) if m.error() is None)
            break
    consumer.close()
    return out


def wait_group_members(kafka: str, group: str, members: int, timeout: float = 90.0) -> None:
    """Wait until the consumer group is stable with `members` members, each assigned
    at least one partition (so a test can be sure every worker takes part)."""

    admin = AdminClient(producer_conf(kafka))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
        except Exception:  # noqa: BLE001 - the group does not exist yet
            time.sleep(0.5)
            continue
        assigned = [m for m in desc.members
                    if m.assignment and m.assignment.topic_partitions]
        if desc.state == ConsumerGroupState.STABLE and len(assigned) == members:
            return
        time.sleep(0.5)
    raise AssertionError(f"group {group} never had {members} members with partitions")
