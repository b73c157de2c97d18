"""`onewindow reprocess` on the real secured broker: the generation it derives equals what
the live workers derive from the same input records and the pure rules, and the live
workers continue a generation it derived (docs/operations.md, *Re-deriving*).

One scenario, two generations over the same input topics (S's):

* S, in place: `onewindow reprocess` over the first part of the stream; the live
  case-state and materials workers of S over the second part, continuing from the offsets
  and the changelogs it wrote; `onewindow reprocess` again over the third part, continuing
  from the workers' offsets and changelogs (as a run stopped part-way continues);
* T, another prefix with another partition count: `onewindow reprocess --jobs 2` of the
  first two parts, beside S's workers.

Both must hold the pure fold of every case and the links of the pure rules, and the same
records: each input record's activity and dead letter exactly once, equal but for what
depends on the order in which a case's events from several topics came (``version``,
``out_of_role``) and Faust's rounding of the record timestamp (``source_timestamp``).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import stream_apps.commands
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.domain.materials import all_links, material_from_event
from onewindow.provision import material_index_topic, provision
from onewindow.security.kafka_auth import department_principal
from onewindow.topics import Topics, partition_for
from onewindow_cli.bench.materials import as_links, read_links
from onewindow_cli.cli import main
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from stream_apps.reprocess import reprocess
from stream_apps.reprocess_stages import STAGES
from tests.integration.streams import (
    ID_KEY,
    comparable,
    expected_views,
    publish,
    shuffled_with_duplicates,
    start_materials_worker,
    start_worker,
    stop,
    wait_stream_apps_caught_up,
    worker_env,
)
from tests.kafka_support import consumer_conf, department_publishers, producer_conf

pytestmark = pytest.mark.integration

MATERIALS = ("MaterialSubmitted", "CertificateIssued")
#: fields of a CaseActivity that depend on the order in which a case's events arrive from
#: its several topics (as of the state when applied), or on Faust's float seconds
ORDER_DEPENDENT = ("version", "out_of_role", "source_timestamp")
#: fields of a DeadLetter that say when it was written (the detail of FUTURE_TIMESTAMP
#: names the time of the check)
WHEN = ("dead_lettered_at", "detail")


def _reprocess_process(kafka: str, source: Topics, data_dir: Path, *args: str
                       ) -> subprocess.Popen[str]:
    """`onewindow reprocess ARGS` of the generation ``source`` as a process."""
    return subprocess.Popen(
        [sys.executable, "-m", "onewindow_cli", "reprocess", "--progress", "5", *args],
        env=worker_env(kafka, source, data_dir), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def _reprocess_here(kafka: str, source: Topics, data_dir: Path) -> int:
    """`reprocess` of ``source`` in place, in this process (as `onewindow reprocess`
    without options); the input records it read."""
    settings = Settings(kafka_bootstrap=kafka, topic_prefix=source.prefix, partitions=3,
                        data_dir=data_dir, id_hash_key=ID_KEY)
    report = reprocess(settings, wait=30.0)
    assert not report.stopped and [s.name for s in report.stages] == list(STAGES)
    return report.input_records


def _reprocess(kafka: str, source: Topics, data_dir: Path, *args: str
               ) -> subprocess.CompletedProcess[str]:
    proc = _reprocess_process(kafka, source, data_dir, *args)
    out, err = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _bad_records(kafka: str, topics: Topics, case: list[dict[str, Any]], tag: str) -> int:
    """Records the fold dead-letters: unreadable bytes, an event from the wrong department,
    one dated in the future, one on a partition its key does not belong to. Returns how
    many."""
    accepted = case[0]
    with department_publishers(kafka, topics) as pub:
        scjgj = topics.input("scjgj")
        pub.send_raw(scjgj, f"garbage-{tag}".encode(), b"\x00\x01 not avro " + tag.encode())
        spoof = dict(case[1], event_id=f"spoofed-{tag}", department="gaj")
        pub.send(spoof, validate_first=False, topic=topics.input(case[1]["department"]))
        future = dict(case[1], event_id=f"future-{tag}",
                      occurred_at=datetime.now(UTC) + timedelta(days=3))
        pub.send(future, validate_first=False)
    owner = accepted["department"]
    key = accepted["case_id"].encode()
    wrong = (partition_for(key, 3) + 1) % 3
    producer = Producer(producer_conf(kafka, department_principal(owner)))
    producer.produce(topics.input(owner), get_codec().encode(
        dict(accepted, event_id=f"misplaced-{tag}")), key, partition=wrong)
    assert producer.flush(30) == 0
    return 4


def _records(kafka: str, topic: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` up to its end now, decoded."""
    codec = get_codec()
    consumer = Consumer({**consumer_conf(kafka), "group.id": f"read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end])
        pending = {p for p, end in ends.items() if end}
        out = []
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(5000, 0.5):
                if msg.error() is None and msg.offset() < ends[msg.partition()]:
                    out.append(codec.decode_record(msg.value()))
            for tp in consumer.position([TopicPartition(topic, p) for p in pending]):
                if tp.offset >= ends[tp.partition]:
                    pending.discard(tp.partition)
        assert not pending, f"{topic}: partitions {pending} not read to their end"
        return out
    finally:
        consumer.close()


def _latest_states(kafka: str, topic: str) -> dict[str, dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for state in _records(kafka, topic):
        old = best.get(state["case_id"])
        if old is None or state["version"] >= old["version"]:
            best[state["case_id"]] = state
    return best


def _by_source(kafka: str, topic: str, drop: tuple[str, ...] = ()
               ) -> dict[tuple[str, int, int], list[dict[str, Any]]]:
    """The records of an activity or dead-letter topic by the input record they came from
    (``drop``: fields left out)."""
    out: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for rec in _records(kafka, topic):
        where = (rec["source_topic"], rec["source_partition"], rec["source_offset"])
        out.setdefault(where, []).append({f: v for f, v in rec.items() if f not in drop})
    return out


def _ends(kafka: str, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer({**consumer_conf(kafka), "group.id": f"e-{uuid.uuid4().hex}"})
    try:
        return {(t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t in topics for p in consumer.list_topics(t, timeout=10).topics[t].partitions}
    finally:
        consumer.close()


def _committed(kafka: str, group: str, ends: dict[tuple[str, int], int]
               ) -> dict[tuple[str, int], int]:
    """The offsets ``group`` committed, of the partitions of ``ends`` that hold records."""
    consumer = Consumer({**consumer_conf(kafka), "group.id": group})
    try:
        return {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(
            [TopicPartition(t, p) for (t, p), end in ends.items() if end], timeout=10)}
    finally:
        consumer.close()


def _once_each(grouped: dict[Any, list[dict[str, Any]]], once: Any = None
               ) -> dict[Any, dict[str, Any]]:
    """One record per input record: written once (all of them, or those in ``once``), the
    others at least once (the live path's replays), their copies equal."""
    for where, recs in grouped.items():
        if once is None or where in once:
            assert len(recs) == 1, f"{len(recs)} records of input record {where}"
        assert all(r == recs[0] for r in recs), where
    return {where: recs[0] for where, recs in grouped.items()}


def _link(rec: dict[str, Any]) -> dict[str, Any]:
    """A link record but when it was found and its source's timestamp (Faust's float)."""
    return {f: v for f, v in rec.items() if f not in ("found_at", "source_timestamp")}


def _by_case(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    cases: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        cases.setdefault(e["case_id"], []).append(e)
    return list(cases.values())


def _materials(events: list[dict[str, Any]]) -> list[Any]:
    """The distinct materials among ``events`` (a duplicate event is one material)."""
    found = {m.material_id: m for m in (material_from_event(e) for e in events
                                        if e["type"] in MATERIALS)}
    return list(found.values())


def _assert_the_pure_rules(kafka: str, topics: Topics, events: list[dict[str, Any]]) -> None:
    """The state of every case and every link of ``topics`` are those of the pure rules
    over ``events``."""
    expected = expected_views(_by_case(events))
    states = _latest_states(kafka, topics.case_state)
    assert set(states) == set(expected), topics.prefix
    for case_id, view in expected.items():
        assert comparable(states[case_id]) == view, (topics.prefix, case_id)
    pairs, _n = read_links(consumer_conf(kafka), topics.material_links)
    assert as_links(pairs) == all_links(_materials(events)), topics.prefix


def test_reprocess_equals_the_live_workers_and_hands_over_to_them(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    source = provisioned  # 3 partitions
    target = Topics(f"t{uuid.uuid4().hex[:10]}.")
    provision(Settings(kafka_bootstrap=kafka, topic_prefix=target.prefix, partitions=4),
              load_registry().codes)
    cases = list(ScenarioGenerator(ScenarioConfig(seed=41)).cases(40))
    events = shuffled_with_duplicates(cases, seed=9)
    # three parts: the cases of each go on in the next
    cut1, cut2 = len(events) // 2, len(events) * 4 // 5
    publish(kafka, source, events[:cut1])
    bad = _bad_records(kafka, source, cases[0], "first")
    first = _ends(kafka, source.inputs(load_registry().codes))

    # 1. S in place, in this process, over the first part
    assert _reprocess_here(kafka, source, tmp_path / "s1") == cut1 + bad
    # the hand-over: the live workers' groups at the ends of what it read and wrote
    assert _committed(kafka, source.case_state_app, first) == \
        {k: v for k, v in first.items() if v}
    derived = _ends(kafka, [source.case_activity, material_index_topic(source)])
    assert _committed(kafka, source.materials_app, derived) == \
        {k: v for k, v in derived.items() if v}
    once = set(_by_source(kafka, source.case_activity))
    once_dead = set(_by_source(kafka, source.dead_letters))

    # 2. the live workers of S over the second part, from where the reprocess ended;
    # meanwhile T, a new generation of 4 partitions, from the first two parts by two
    # processes
    publish(kafka, source, events[cut1:cut2])
    bad += _bad_records(kafka, source, cases[1], "second")
    workers = [start_worker(kafka, source, tmp_path, name="w1"),
               start_materials_worker(kafka, source, tmp_path, name="m1")]
    try:
        done = _reprocess(kafka, source, tmp_path / "t", "--to-prefix", target.prefix,
                          "--jobs", "2")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"reprocessed {cut2 + bad:,} input records" in done.stdout, done.stdout
        wait_stream_apps_caught_up(kafka, source, workers)
    finally:
        for w in workers:
            stop(w)
    assert [w.returncode for w in workers] == [0, 0], \
        (tmp_path / "w1.log").read_text()[-3000:] + (tmp_path / "m1.log").read_text()[-3000:]
    live = set(_by_source(kafka, source.case_activity))
    live_dead = set(_by_source(kafka, source.dead_letters))

    # 3. S in place again over the third part, from where the workers ended: their
    # offsets, their tables restored from the changelogs
    publish(kafka, source, events[cut2:])
    assert _reprocess_here(kafka, source, tmp_path / "s3") == len(events) - cut2

    _assert_the_pure_rules(kafka, source, events)
    _assert_the_pure_rules(kafka, target, events[:cut2])
    # the same records: an activity per applied or duplicate input record, a dead letter
    # per refused one, in S (a reprocess, the live workers, a reprocess: none redid what
    # the one before did; the live workers' own replays at least once) as in T (once)
    grouped = _by_source(kafka, source.case_activity, ORDER_DEPENDENT)
    activity = _once_each(grouped, once=once | (set(grouped) - live))
    assert len(activity) == len(events)
    theirs = _once_each(_by_source(kafka, target.case_activity, ORDER_DEPENDENT))
    assert {k: activity[k] for k in theirs} == theirs
    assert len(theirs) == cut2
    grouped = _by_source(kafka, source.dead_letters, WHEN)
    dead = _once_each(grouped, once=once_dead | (set(grouped) - live_dead))
    assert dead == _once_each(_by_source(kafka, target.dead_letters, WHEN))
    assert Counter(d["reason"] for d in dead.values()) == {
        "UNDECODABLE": 2, "DEPARTMENT_MISMATCH": 2, "FUTURE_TIMESTAMP": 2,
        "WRONG_PARTITION": 2}
    # the links T shares with S are the same records
    src_pairs, _ = read_links(consumer_conf(kafka), source.material_links)
    dst_pairs, _ = read_links(consumer_conf(kafka), target.material_links)
    assert {k: _link(src_pairs[k]) for k in dst_pairs} == \
        {k: _link(r) for k, r in dst_pairs.items()}


def test_reprocess_refuses_an_unprovisioned_generation_in_one_line(
        kafka: str, provisioned: Topics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(kafka_bootstrap=kafka, topic_prefix=provisioned.prefix,
                        data_dir=tmp_path, id_hash_key=ID_KEY)
    monkeypatch.setattr(stream_apps.commands, "settings_from", lambda _args: settings)
    assert main(["reprocess", "--to-prefix", "never-provisioned."]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("onewindow reprocess: target topic never-provisioned."), err
    assert not (tmp_path / "reprocess").exists()  # nothing was started
