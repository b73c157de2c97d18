"""Issue 13 on the real broker: records the limits refuse end as dead letters with the
worker alive and the next event applied; an output the broker refuses dead-letters its
input (OUTPUT_FAILED) instead of stopping the worker."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from onewindow.codec import get_codec
from onewindow.domain.validation import OUTPUT_FAILED, TOO_LARGE
from onewindow.topics import Topics
from stream_apps.output import OutputProducer
from stream_apps.records import InRecord, OutRecord
from tests.integration.streams import latest_states, read_topic, start_worker, stop
from tests.kafka_support import department_publishers, producer_conf
from tests.unit.domain.helpers import accepted, task

pytestmark = pytest.mark.integration


def test_a_1mb_and_a_nul_filled_event_are_dead_letters_and_the_next_is_applied(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    codec = get_codec()
    big = codec.encode(accepted("big-1", case_id="BIG-1", service_name="名" * 346_000))
    assert 1_000_000 < len(big) < 1_045_000  # the broker's limit is 1 MiB and a bit
    nul = codec.encode(task("nul-1", "T1", "RECEIVED", "2025-10-01 09:00", case_id="NUL-1",
                            note="\0" * 200_000))
    assert 190_000 < len(nul) < 220_000
    nxt = accepted("ok-1", case_id="OK-1")
    worker = start_worker(kafka, provisioned, tmp_path)
    try:
        # the SDK refuses such a record (message.max.bytes); a department's own client
        # with a larger limit gets it on the broker, as in the issue
        raw = Producer(producer_conf(kafka, **{"message.max.bytes": 1_100_000,
                                               "partitioner": "murmur2_random"}))
        raw.produce(provisioned.input("zwfw"), big, b"BIG-1")
        assert raw.flush(30) == 0
        with department_publishers(kafka, provisioned) as pub:
            pub.send_raw(provisioned.input("scjgj"), b"NUL-1", nul)
            pub.flush()
            pub.send(nxt, validate_first=False)
        states = latest_states(kafka, provisioned, {"OK-1": 1}, timeout=60)
        dead = [codec.decode_record(m.value())
                for m in read_topic(kafka, provisioned.dead_letters, expected=2, timeout=30)]
        assert worker.poll() is None, (tmp_path / "w1.log").read_text()[-3000:]
    finally:
        stop(worker)
    assert worker.returncode == 0, (tmp_path / "w1.log").read_text()[-3000:]
    assert states["OK-1"]["version"] == 1 and set(states) == {"OK-1"}
    by_key = {d["key"]: d for d in dead}
    assert sorted(by_key) == [b"BIG-1", b"NUL-1"]
    assert {d["reason"] for d in dead} == {TOO_LARGE}
    big_letter, nul_letter = by_key[b"BIG-1"], by_key[b"NUL-1"]
    assert nul_letter["original"] == nul and nul_letter["source_topic"] == \
        provisioned.input("scjgj")
    # too large to carry whole in a dead letter: its first ~980 KB, and the whole's digest
    assert big.startswith(big_letter["original"]) and len(big_letter["original"]) > 950_000
    assert hashlib.sha256(big).hexdigest() in big_letter["detail"]
    assert big_letter["source_topic"] == provisioned.input("zwfw")


def test_an_output_the_broker_refuses_dead_letters_its_input(
        kafka: str, provisioned: Topics) -> None:
    small = f"{provisioned.prefix}small-records"
    admin = AdminClient(producer_conf(kafka))
    for fut in admin.create_topics([NewTopic(small, 1, 1, config={
            "max.message.bytes": "2000"})]).values():
        fut.result(30)
    codec = get_codec()
    source = InRecord(provisioned.input("scjgj"), 0, 41, b"C-9",
                      codec.encode(task("e9", "T1", "RECEIVED", "2025-10-01 09:00",
                                        case_id="C-9")), None)
    failed: list[str] = []

    def on_failed(rec: InRecord, why: str) -> OutRecord:
        failed.append(why)
        value = codec.encode_record("DeadLetter", {
            "original": rec.value, "key": rec.key, "source_topic": rec.topic,
            "source_partition": rec.partition, "source_offset": rec.offset,
            "reason": OUTPUT_FAILED, "detail": why, "department": "scjgj",
            "dead_lettered_at": datetime.now(UTC)})
        return OutRecord(provisioned.dead_letters, rec.key, value)

    output = OutputProducer(kafka, client_id="limits-test", config=producer_conf(kafka),
                            on_failed=on_failed)
    # random bytes: lz4 would shrink a repeated byte under the topic's limit
    output.send_batch([OutRecord(small, b"C-9", os.urandom(10_000), source=source),
                       OutRecord(small, b"C-9", b"fits", source=source)])
    output.flush_blocking(30)  # does not raise: the refusal became a dead letter
    output.close()
    assert len(failed) == 1 and "too large" in failed[0].lower()
    dead = [codec.decode_record(m.value())
            for m in read_topic(kafka, provisioned.dead_letters, expected=1, timeout=30)]
    assert [(d["reason"], d["source_offset"], d["original"]) for d in dead] == [
        (OUTPUT_FAILED, 41, source.value)]
