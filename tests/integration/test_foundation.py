"""The foundation against the real broker the test session started from the jars."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, ConfigResource

from onewindow.codec import MAGIC, get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import ensure_jars
from onewindow.provision import ensure_topics, plan
from onewindow.topics import Topics
from tests.kafka_support import consumer_conf, department_publishers, producer_conf

pytestmark = pytest.mark.integration


def _example_events(path: Path) -> list[dict]:
    codec = get_codec()
    return [codec.loads_json_line(line) for line in path.read_text("utf-8").splitlines() if line]


def _consume_all(bootstrap: str, topic_names: list[str], expected: int,
                 timeout: float = 30.0) -> list:
    consumer = Consumer({**consumer_conf(bootstrap), "group.id": f"g-{os.urandom(4).hex()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(topic_names)
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg)
    consumer.close()
    return got


def test_cached_jars_need_no_maven(kafka: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second start with an existing cache downloads nothing: no mvn on PATH is fine."""
    s = Settings()
    monkeypatch.setenv("PATH", "/nonexistent")
    libs = ensure_jars(s.kafka_version, s.cache_dir)
    assert any(p.name.startswith("kafka_2.13-3.9") for p in libs.iterdir())


def test_provisioning_is_idempotent_and_copartitioned(kafka: str, topic_prefix: str) -> None:
    topics = Topics(topic_prefix)
    codes = load_registry().codes
    wanted = plan(topics, codes, partitions=4)
    created = ensure_topics(producer_conf(kafka), wanted)
    assert sorted(created) == sorted(t.name for t in wanted)
    assert {topics.input(c) for c in codes} | set(topics.outputs()) <= set(created)
    assert ensure_topics(producer_conf(kafka), wanted) == []  # re-running is harmless
    admin = AdminClient(producer_conf(kafka))
    md = admin.list_topics(timeout=10)
    for code in codes:
        assert len(md.topics[topics.input(code)].partitions) == 4
    res = ConfigResource(ConfigResource.Type.TOPIC, topics.case_state)
    conf = admin.describe_configs([res])[res].result()
    assert conf["cleanup.policy"].value == "compact"


def test_every_event_type_reaches_its_topic_and_decodes_from_raw_bytes(
        provisioned: Topics, kafka: str, example_events_path: Path) -> None:
    """Publish every event type with the SDK; read the raw bytes back with kcat."""
    events = _example_events(example_events_path)
    assert {e["type"] for e in events} >= {"CaseAccepted", "TaskUpdated", "MaterialSubmitted",
                                          "CertificateIssued"}
    withdrawn = dict(events[0], type="CaseWithdrawn", event_id="evt-w", reason="申请人撤回")
    for k in ("service_code", "service_name", "case_kind", "channel", "window_id", "applicant",
              "promise", "tasks"):
        withdrawn.pop(k)
    events.append(withdrawn)
    with department_publishers(kafka, provisioned) as pub:
        for e in events:
            pub.send(e)
    assert pub.report.total == len(events)

    kcat = shutil.which("kcat")
    assert kcat, "kcat (Debian package) is needed: .ci/run installs it"
    decoded = []
    for dept in sorted({e["department"] for e in events}):
        auth = [x for k, v in producer_conf(kafka).items()
                if k not in ("bootstrap.servers", "logger")  # logger: a Python object
                for x in ("-X", f"{k}={v}")]
        raw = subprocess.run([kcat, "-C", "-b", kafka, *auth, "-t", provisioned.input(dept),
                              "-o", "beginning", "-e", "-q", "-f", "%R%s%K"],
                             capture_output=True, check=True, timeout=60).stdout
        pos = 0
        while pos < len(raw):
            (n,) = struct.unpack(">i", raw[pos:pos + 4])
            value = raw[pos + 4:pos + 4 + n]
            pos += 4 + n
            assert value[:2] == MAGIC
            decoded.append((dept, get_codec().decode(value)))
            pos += 0  # %K prints the key length as text: skip it
            while pos < len(raw) and raw[pos:pos + 1].isdigit():
                pos += 1
    assert sorted((d, e["event_id"]) for d, e in decoded) == sorted(
        (e["department"], e["event_id"]) for e in events)
    by_id = {e["event_id"]: e for _, e in decoded}
    for e in events:
        assert by_id[e["event_id"]] == e


def _run_cli(*args: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-m", "onewindow_cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_produce_cli_sends_nothing_when_a_line_is_bad(
        provisioned: Topics, kafka: str, example_events_path: Path, tmp_path: Path) -> None:
    lines = example_events_path.read_text("utf-8").splitlines()
    bad = json.loads(lines[1])  # a MaterialSubmitted
    bad["sha256"] = "not-a-hash"
    spoof = json.loads(lines[4])
    spoof["department"] = "nope"
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([lines[0], lines[1], lines[2], json.dumps(bad), json.dumps(spoof),
                               "{not json"]) + "\n", "utf-8")
    env = {"ONEWINDOW_KAFKA_BOOTSTRAP": kafka, "ONEWINDOW_TOPIC_PREFIX": provisioned.prefix}
    res = _run_cli("produce", str(path), env_extra=env)
    assert res.returncode != 0
    assert f"{path}:4: INVALID_FIELD" in res.stderr
    assert f"{path}:5: UNKNOWN_DEPARTMENT" in res.stderr
    assert f"{path}:6: UNDECODABLE" in res.stderr
    assert "nothing was sent" in res.stderr
    codes = load_registry().codes
    assert _consume_all(kafka, provisioned.inputs(codes), expected=1, timeout=5) == []


def test_produce_cli_delivers_a_good_file(provisioned: Topics, kafka: str,
                                          example_events_path: Path) -> None:
    env = {"ONEWINDOW_KAFKA_BOOTSTRAP": kafka, "ONEWINDOW_TOPIC_PREFIX": provisioned.prefix}
    res = _run_cli("produce", str(example_events_path), env_extra=env)
    assert res.returncode == 0, res.stderr
    assert "sent 9 events" in res.stdout
    codes = load_registry().codes
    msgs = _consume_all(kafka, provisioned.inputs(codes), expected=9)
    events = _example_events(example_events_path)
    assert len(msgs) == 9
    got = {get_codec().decode(m.value())["event_id"]: m for m in msgs}
    for e in events:
        m = got[e["event_id"]]
        assert m.key() == e["case_id"].encode()
        assert m.topic() == provisioned.input(e["department"])


def test_produce_cli_topic_override_and_no_validate(provisioned: Topics, kafka: str,
                                                    tmp_path: Path,
                                                    example_events_path: Path) -> None:
    """--no-validate lets a spoofed event through to --topic (to test the stream app)."""
    line = json.loads(example_events_path.read_text("utf-8").splitlines()[3])
    line["department"] = "gaj"  # published on scjgj's topic: a spoof
    path = tmp_path / "spoof.jsonl"
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n", "utf-8")
    env = {"ONEWINDOW_KAFKA_BOOTSTRAP": kafka, "ONEWINDOW_TOPIC_PREFIX": provisioned.prefix}
    topic = provisioned.input("scjgj")
    res = _run_cli("produce", str(path), "--topic", topic, env_extra=env)
    assert res.returncode != 0 and "DEPARTMENT_MISMATCH" in res.stderr
    res = _run_cli("produce", str(path), "--topic", topic, "--no-validate", env_extra=env)
    assert res.returncode == 0, res.stderr
    msgs = _consume_all(kafka, [topic], expected=1)
    assert get_codec().decode(msgs[0].value())["department"] == "gaj"
