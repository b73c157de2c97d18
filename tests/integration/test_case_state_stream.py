"""The case-state worker on the real broker: equal to the pure fold, through shuffles,
duplicates, SIGKILL and a second worker in the group."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from onewindow.codec import get_codec
from onewindow.topics import Topics
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.integration.streams import (
    comparable,
    count_topic,
    expected_views,
    latest_states,
    publish,
    read_topic,
    shuffled_with_duplicates,
    start_worker,
    stop,
    wait_group_members,
)
from tests.kafka_support import department_publishers

pytestmark = pytest.mark.integration


def _cases(n: int, seed: int) -> list[list[dict]]:
    return list(ScenarioGenerator(ScenarioConfig(seed=seed)).cases(n))


def _assert_equal_to_fold(kafka: str, topics: Topics, cases: list[list[dict]]) -> None:
    expected = expected_views(cases)
    got = latest_states(kafka, topics, {c: v["version"] for c, v in expected.items()})
    assert set(got) == set(expected)
    for case_id, view in expected.items():
        assert comparable(got[case_id]) == view, case_id


def test_shuffled_stream_with_duplicates_equals_the_pure_fold(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    cases = _cases(300, seed=11)
    events = shuffled_with_duplicates(cases, seed=3)
    assert len(events) > 4000
    publish(kafka, provisioned, events)
    worker = start_worker(kafka, provisioned, tmp_path)
    try:
        _assert_equal_to_fold(kafka, provisioned, cases)
    finally:
        stop(worker)
    assert worker.returncode == 0, (tmp_path / "w1.log").read_text()[-3000:]
    assert count_topic(kafka, provisioned.dead_letters) == 0


def test_sigkill_mid_stream_and_restart_loses_nothing(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    cases = _cases(400, seed=12)
    events = shuffled_with_duplicates(cases, seed=4)
    half = len(events) // 2
    publish(kafka, provisioned, events[:half])
    worker = start_worker(kafka, provisioned, tmp_path)
    # Kill it while it is working: as soon as some states are out, mid-stream.
    deadline = time.monotonic() + 90
    while count_topic(kafka, provisioned.case_state) < 50 and time.monotonic() < deadline:
        time.sleep(0.2)
    publish(kafka, provisioned, events[half:])
    stop(worker, signal.SIGKILL)
    assert count_topic(kafka, provisioned.case_state) > 0
    worker = start_worker(kafka, provisioned, tmp_path)
    try:
        _assert_equal_to_fold(kafka, provisioned, cases)
    finally:
        stop(worker)


def test_two_workers_split_the_partitions(kafka: str, provisioned: Topics,
                                          tmp_path: Path) -> None:
    cases = _cases(300, seed=13)
    a = start_worker(kafka, provisioned, tmp_path, name="a")
    b = start_worker(kafka, provisioned, tmp_path, name="b")
    try:
        # Both in the group before any event: otherwise the first to start may finish
        # the whole stream alone and the test proves nothing about splitting.
        wait_group_members(kafka, provisioned.case_state_app, 2)
        publish(kafka, provisioned, shuffled_with_duplicates(cases, seed=5))
        _assert_equal_to_fold(kafka, provisioned, cases)
    finally:
        stop(a)
        stop(b)
    # Both took part: each has its own RocksDB partitions on disk.
    for name in ("a", "b"):
        stores = list((tmp_path / "stream" / name).rglob("*.db"))
        assert stores, f"worker {name} never owned a table partition"


def test_bad_records_are_dead_lettered_and_never_stop_the_worker(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:

    cases = _cases(20, seed=14)
    first, rest = cases[:10], cases[10:]
    spoof = dict(first[0][1], event_id="spoofed", department="gaj")
    with department_publishers(kafka, provisioned) as pub:
        for case in first:
            for e in case:
                pub.send(e, validate_first=False)
        scjgj = provisioned.input("scjgj")
        pub.send_raw(scjgj, b"GZ-garbage", b"\x00\x01 not avro")
        pub.send_raw(scjgj, b"GZ-garbage", b"\xc3\x01" + b"\x07" * 8 + b"body")
        pub.send(spoof, validate_first=False, topic=provisioned.input(first[0][1]["department"]))
        for case in rest:
            for e in case:
                pub.send(e, validate_first=False)
    worker = start_worker(kafka, provisioned, tmp_path)
    try:
        _assert_equal_to_fold(kafka, provisioned, cases)
        dead = [get_codec().decode_record(m.value())
                for m in read_topic(kafka, provisioned.dead_letters, expected=3)]
    finally:
        stop(worker)
    assert sorted(d["reason"] for d in dead) == ["DEPARTMENT_MISMATCH", "UNDECODABLE",
                                                 "UNKNOWN_SCHEMA"]
    originals = {d["reason"]: d for d in dead}
    assert originals["UNDECODABLE"]["original"] == b"\x00\x01 not avro"
    assert originals["UNDECODABLE"]["source_topic"] == provisioned.input("scjgj")
    assert originals["DEPARTMENT_MISMATCH"]["key"] == spoof["case_id"].encode()
