"""Growing the partition count on the real secured broker (docs/operations.md, *Growing
the partition count*; issue 17, point 3): a generation of 2 partitions copied by
`onewindow copy-inputs` into one of 5 (a run killed inside a batch, then finished; again
with nothing new; again with what the departments published meanwhile), derived there by
`onewindow reprocess` in place, the departments moved over (a record two departments
each sent to the old generation afterwards refused by the copy, both in one line, then
skipped with `--skip-to-end` and not copied by the next run), the new generation going on
from there, and its read model (`onewindow rebuild`) equal to the
pure fold and the pure link rules of everything produced.

The copy itself is checked record by record: every source record once in the target with
its key, value, headers and timestamp, on its key's partition of the new count (the one
record the old generation dead-lettered for its partition off its key's partition
there too), each key's records in their order.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

import stream_apps.commands
from counter.app import create_app
from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.provision import provision
from onewindow.read_model.engine import make_engine
from onewindow.read_model.tables import DeadLetter, MaterialLink
from onewindow.security.kafka_auth import ADMIN, client_config, department_principal
from onewindow.topics import Topics, copied_partition, partition_for
from onewindow_cli.cli import main
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from sinks.bootstrap import build_sink
from sinks.rebuild import rebuild
from stream_apps.copy_inputs import TopicCopier, copy_inputs, plan_copy
from stream_apps.reprocess import reprocess
from tests.integration.streams import (
    ID_KEY,
    publish,
    shuffled_with_duplicates,
)
from tests.kafka_support import consumer_conf, producer_conf, settings_for
from tests.read_model_support import (
    dump_model,
    expected_case,
    expected_links,
    expected_views,
    group_by_case,
)
from tests.staff_support import bearer_for

pytestmark = pytest.mark.integration

OLD_PARTITIONS, NEW_PARTITIONS = 2, 5


def _records(kafka: str, topics: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every record of ``topics`` now, per topic, sorted: (partition, offset, key, value,
    headers, timestamp)."""
    consumer = Consumer({**consumer_conf(kafka), "group.id": f"read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        md = consumer.list_topics(timeout=10).topics
        ends = {(t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t in topics for p in md[t].partitions}
        pending = {tp for tp, end in ends.items() if end}
        consumer.assign([TopicPartition(t, p, 0) for t, p in pending])
        out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in topics}
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.2):
                if msg.error() is None and msg.offset() < ends[(msg.topic(), msg.partition())]:
                    out[msg.topic()].append((msg.partition(), msg.offset(), msg.key(),
                                             msg.value(), tuple(msg.headers() or ()),
                                             msg.timestamp()[1]))
            for tp in consumer.position([TopicPartition(t, p) for t, p in pending]):
                if tp.offset >= ends[(tp.topic, tp.partition)]:
                    pending.discard((tp.topic, tp.partition))
        assert not pending, f"partitions {pending} not read to their end"
        return {t: sorted(recs) for t, recs in out.items()}
    finally:
        consumer.close()


def _ends(kafka: str, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer({**consumer_conf(kafka), "group.id": f"e-{uuid.uuid4().hex}"})
    try:
        return {(t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t in topics for p in consumer.list_topics(t, timeout=10).topics[t].partitions}
    finally:
        consumer.close()


def _assert_copied(kafka: str, old: Topics, new: Topics, misplaced: set[bytes]) -> int:
    """Every record of each of ``old``'s input topics once in ``new``'s, as it was, on
    `copied_partition`'s partition, each key's records in the source's order (and nothing
    else there). Returns the records compared."""
    codes = sorted(load_registry().codes)
    records = _records(kafka, [*old.inputs(codes), *new.inputs(codes)])
    n = 0
    for code in codes:
        src, dst = records[old.input(code)], records[new.input(code)]
        assert Counter(r[2:] for r in src) == Counter(r[2:] for r in dst), code
        place = {r[2:]: r[0] for r in dst}
        for p, _o, key, value, *rest in src:
            q = copied_partition(key, p, OLD_PARTITIONS, NEW_PARTITIONS)
            assert place[(key, value, *rest)] == q
            assert (q == partition_for(key, NEW_PARTITIONS)) == (value not in misplaced)
        for key in {r[2] for r in src}:  # dst is sorted by (partition, offset)
            assert [r[3] for r in src if r[2] == key] == [r[3] for r in dst if r[2] == key]
        n += len(src)
    return n


def _copy_cli(settings: Settings, new: Topics, monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, str, str]:
    """`onewindow copy-inputs --to-prefix NEW` (and ``more`` arguments) of the generation
    of ``settings``: its exit status, standard output and error."""
    monkeypatch.setattr(stream_apps.commands, "settings_from", lambda _args: settings)
    capsys.readouterr()
    status = main(["copy-inputs", "--to-prefix", new.prefix, "--batch-size", "50",
                   "--progress", "0.1", *more])
    out, err = capsys.readouterr()
    return status, out, err


def _kill_inside_a_batch(kafka: str, old: Topics, new: Topics) -> int:
    """What a copy killed inside its second batch of the busiest topic leaves: its first
    batch written and noted, the second noted and about half of each target partition's
    share of it written, nothing committed after. Returns the records written."""
    settings = settings_for(kafka, topic_prefix=old.prefix)
    consumer = Consumer({**client_config(settings, ADMIN),
                         "group.id": f"{new.prefix}onewindow-copy-inputs",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    producer = Producer(producer_conf(kafka, acks="all", **{"enable.idempotence": True}))
    try:
        plan = plan_copy(settings, consumer, new.prefix)
        source, target = max(plan.pairs, key=lambda pair: sum(
            plan.ends[(pair[0], p)] for p in range(OLD_PARTITIONS)))
        copier = TopicCopier(settings, plan, source, target, consumer, producer)
        copier.resume()
        first = copier.next_batch(25)
        copier.write(first)
        second = copier.next_batch(25)
        assert len(first) == len(second) == 25
        copier.note(second)
        seqs = copier.sequences(second)
        part = {q: seq[: (len(seq) + 1) // 2] for q, seq in seqs.items()}
        copier.send(part)  # acknowledged; the run dies before its next note
        return len(first) + sum(len(s) for s in part.values())
    finally:
        consumer.close()


def _misplaced(kafka: str, old: Topics, accepted: dict[str, Any]) -> bytes:
    """A record of a known case on the partition after its key's: the old generation
    dead-letters it ``WRONG_PARTITION``."""
    owner, key = accepted["department"], accepted["case_id"].encode()
    value = get_codec().encode(dict(accepted, event_id=f"misplaced-{uuid.uuid4().hex[:6]}"))
    producer = Producer(producer_conf(kafka, department_principal(owner)))
    producer.produce(old.input(owner), value, key,
                     partition=(partition_for(key, OLD_PARTITIONS) + 1) % OLD_PARTITIONS,
                     headers=[("origin", b"a department's own client")])
    assert producer.flush(30) == 0
    return value


def _assert_model_is_the_fold(db_url: str, prefix: str, cases: list[list[dict[str, Any]]]
                              ) -> None:
    """The read model holds every case as the pure fold of its events (through the
    counter's API) with every distinct event once in its timeline, the links of the pure
    rules, and one dead letter: the misplaced record's."""
    flat = [e for c in cases for e in c]
    engine = make_engine(db_url)
    try:
        model = dump_model(engine)
        assert len(model["cases"]) == len(cases)
        assert len(model["timeline_entries"]) == len({(e["case_id"], e["event_id"])
                                                      for e in flat})
        with engine.connect() as conn:
            assert [r for (r,) in conn.execute(select(DeadLetter.reason))] == \
                ["WRONG_PARTITION"]
            links = {(a, b): v for a, b, v in conn.execute(select(
                MaterialLink.material_a, MaterialLink.material_b, MaterialLink.verdict))}
        assert links == expected_links(flat)[0]
        now = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
        cal = load_calendar()
        app = create_app(Settings(database_url=db_url, topic_prefix=prefix,
                                  id_hash_key=SecretStr(ID_KEY)), engine=engine,
                         clock=lambda: now)
        with TestClient(app, headers=bearer_for(db_url, "clerk")) as client:
            for case_id, view in expected_views(group_by_case(flat)).items():
                assert client.get(f"/api/cases/{case_id}").json() == \
                    expected_case(view, now, cal), case_id
    finally:
        engine.dispose()


def test_a_generation_grown_by_copy_and_reprocess_holds_the_pure_fold(
        kafka: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    codes = load_registry().codes
    old, new = (Topics(f"t{uuid.uuid4().hex[:10]}.") for _ in range(2))
    for topics, n in ((old, OLD_PARTITIONS), (new, NEW_PARTITIONS)):
        provision(settings_for(kafka, topic_prefix=topics.prefix, partitions=n), codes)
    cases = list(ScenarioGenerator(ScenarioConfig(seed=57)).cases(30))
    events = shuffled_with_duplicates(cases, seed=5)
    cut1, cut2 = len(events) * 3 // 5, len(events) * 4 // 5

    # 1. the old generation live; the copy killed inside a batch, then run to the end
    publish(kafka, old, events[:cut1])
    misplaced = {_misplaced(kafka, old, cases[0][0])}
    written = _kill_inside_a_batch(kafka, old, new)
    old_settings = settings_for(kafka, topic_prefix=old.prefix)
    status, out, err = _copy_cli(old_settings, new, monkeypatch, capsys)
    assert status == 0, out + err
    assert f"copied {cut1 + 1 - written:,} records of {len(codes)} input topics" in out, out
    assert "found in place" in out and "1 kept off their key's partition" in out, out

    # 2. again: nothing new, nothing written; then what the departments published since
    assert copy_inputs(old_settings, target_prefix=new.prefix).copied == 0
    publish(kafka, old, events[cut1:cut2])
    assert copy_inputs(old_settings, target_prefix=new.prefix, batch_max=64).copied == \
        cut2 - cut1
    assert _assert_copied(kafka, old, new, misplaced) == cut2 + 1

    # 3. the new generation derived in place before its workers start, the departments
    # moved over; a record sent to the old one afterwards is not copied after theirs
    new_settings = Settings(kafka_bootstrap=kafka, topic_prefix=new.prefix,
                            partitions=NEW_PARTITIONS, data_dir=tmp_path,
                            id_hash_key=ID_KEY, database_url=f"sqlite:///{tmp_path / 'm.db'}")
    derived = reprocess(new_settings, wait=30.0)
    assert not derived.stopped and derived.input_records == cut2 + 1
    publish(kafka, new, events[cut2:])
    # two departments each send one record to the old one: one refusal names both
    late_events = [events[cut2], next(e for e in events[cut2:]
                                      if e["department"] != events[cut2]["department"])]
    publish(kafka, old, late_events)
    status, out, err = _copy_cli(old_settings, new, monkeypatch, capsys)
    assert status == 2, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "record(s) the copy did not write" in lines[0], lines
    late = [old.input(e["department"]) for e in late_events]
    for source, e in zip(late, late_events, strict=True):
        assert f"{source} has 1 more to copy" in lines[0], lines
        assert f"--skip-to-end {source}" in lines[0], lines
        assert f"{new.input(e['department'])}[" in lines[0], lines
    # the remedy of docs/operations.md, step 5 (the departments send them to the new
    # generation, which they did here): the copy's progress on those topics moved to
    # their ends (--skip-to-end); the next copy goes on without them
    status, out, err = _copy_cli(old_settings, new, monkeypatch, capsys,
                                 *(arg for t in late for arg in ("--skip-to-end", t)))
    assert status == 0, out + err
    for source in late:
        assert f"copy-inputs: skipped 1 record(s) of {source} (per partition " in out, out
    assert len(out.splitlines()) == len(late), out
    before = _ends(kafka, new.inputs(codes))
    status, out, err = _copy_cli(old_settings, new, monkeypatch, capsys)
    assert status == 0, out + err
    assert "copied 0 records" in out and "published to the target directly" in out, out
    assert _ends(kafka, new.inputs(codes)) == before  # the late records not copied

    # 4. the new generation goes on from there (a reprocess in place, as its workers
    # would: tests/integration/test_reprocess.py hands a reprocessed generation to them);
    # its read model rebuilt from its topics
    assert reprocess(new_settings, wait=30.0).input_records == len(events) - cut2
    db_url = new_settings.database_url
    rebuild(build_sink(new_settings, migrate=False), wait=30.0)
    _assert_model_is_the_fold(db_url, new.prefix, cases)


def test_copy_inputs_refuses_in_one_line(
        kafka: str, provisioned: Topics, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    smaller = f"t{uuid.uuid4().hex[:10]}."
    provision(settings_for(kafka, topic_prefix=smaller, partitions=2), load_registry().codes)
    for source, target, says in (
            ("never-provisioned.", smaller, "no input topic of generation "
                                            "'never-provisioned.'"),
            (provisioned.prefix, smaller, "has 2 partitions, fewer than the 3 of"),
            (provisioned.prefix, provisioned.prefix, "is the source generation itself"),
            (provisioned.prefix, "never-provisioned.", "provision generation "
                                                       "'never-provisioned.' first")):
        settings = settings_for(kafka, topic_prefix=source)
        monkeypatch.setattr(stream_apps.commands, "settings_from", lambda _a, s=settings: s)
        assert main(["copy-inputs", "--to-prefix", target, "--wait", "10"]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and err[0].startswith("onewindow copy-inputs: "), err
        assert says in err[0], err
    with pytest.raises(SystemExit) as exit_:
        main(["copy-inputs", "--to-prefix", "g 2/"])
    assert exit_.value.code == 2
    assert "not a valid topic prefix" in capsys.readouterr().err
