"""The Kafka trust boundary on the real secured broker (interfaces.md, Kafka: who may do
what): every client signs in; a department writes only its own topic and reads nothing;
only the stream apps write the derived topics; the sink reads only the outputs; a
department removed from the registry is locked out; transactions are read committed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from onewindow.codec import get_codec
from onewindow.config import Settings, get_settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import acl_plan, provision
from onewindow.security.kafka_auth import (
    GATEWAY,
    OPS,
    SINK,
    STREAM,
    client_config,
    credential_store,
    department_principal,
    kafka_env,
    producer_config,
)
from onewindow.security.protected_form import activity_event
from onewindow.topics import Topics, record_key
from producers.publisher import DeliveryFailed, Publisher
from tests.integration.ops_support import scrape, start_worker_on
from tests.integration.streams import ID_KEY, read_topic, stop
from tests.kafka_support import consumer_conf, producer_conf, settings_for

pytestmark = pytest.mark.integration

CODES = sorted(load_registry().codes)


def _produce(conf: dict[str, Any], topic: str, value: bytes = b"x") -> list[KafkaError | None]:
    """What the broker said of one record: [None] when it was written."""
    errs: list[KafkaError | None] = []
    # not idempotent: a principal that may write no topic at all would get no producer id
    # (CLUSTER_AUTHORIZATION_FAILED, fatal) before the topic's ACL is even asked
    p = Producer({**conf, "message.timeout.ms": 10000, "enable.idempotence": False,
                  "acks": "all"})
    try:
        p.produce(topic, value, b"C-1", on_delivery=lambda err, _msg: errs.append(err))
    except KafkaException as exc:  # the topic is already known to be refused
        errs.append(exc.args[0])
    try:
        p.flush(15)
    except KafkaException as exc:  # a principal that may write nothing gets no producer id
        errs.append(exc.args[0])
    return errs


def _refused(errs: list[KafkaError | None]) -> bool:
    """Refused by the broker's ACLs."""
    # (`is`, never `==`: comparing a KafkaError with None breaks confluent-kafka)
    return all(e is not None for e in errs) and any(
        e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errs if e is not None)


def _written(errs: list[KafkaError | None]) -> bool:
    """The broker acknowledged the record."""
    return len(errs) == 1 and errs[0] is None


def _read_error(conf: dict[str, Any], topic: str, group: str = "probe") -> KafkaError | None:
    """The error a consumer reading `topic` from the start gets (None: it could read).
    Partitions are assigned, not subscribed; `group` is one the principal may use."""
    c = Consumer({**conf, "group.id": f"{group}-{uuid.uuid4().hex}",
                  "enable.partition.eof": True, "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        if md.error is not None:
            return md.error
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is not None \
                    and m.error().code() != KafkaError._PARTITION_EOF:
                return m.error()
            if m is not None and m.error() is None:
                return None
        return None
    finally:
        c.close()


def as_(kafka: str, principal: str) -> dict[str, Any]:
    return producer_conf(kafka, principal)


def test_an_anonymous_client_is_refused(kafka: str, provisioned: Topics) -> None:
    admin = AdminClient({"bootstrap.servers": kafka, "socket.timeout.ms": 3000})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    errs = _produce({"bootstrap.servers": kafka, "message.timeout.ms": 4000},
                    provisioned.input("gaj"))
    assert errs and errs[0] is not None  # never written


def test_a_wrong_password_is_refused(kafka: str, provisioned: Topics) -> None:
    conf = {**as_(kafka, department_principal("gaj")), "sasl.password": "not-the-password"}
    admin = AdminClient({**conf, "socket.timeout.ms": 3000})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_a_department_writes_its_own_topic_and_nothing_else(
        kafka: str, provisioned: Topics) -> None:
    gaj = as_(kafka, department_principal("gaj"))
    assert _written(_produce(gaj, provisioned.input("gaj")))  # the positive control
    assert _refused(_produce(gaj, provisioned.input("swj")))
    for topic in provisioned.outputs():
        assert _refused(_produce(gaj, topic)), topic


def test_a_department_reads_no_topic(kafka: str, provisioned: Topics) -> None:
    gaj = consumer_conf(kafka, department_principal("gaj"))
    for topic in (provisioned.input("gaj"), provisioned.input("swj"), provisioned.case_state):
        err = _read_error(gaj, topic)
        assert err is not None and err.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                                  KafkaError.GROUP_AUTHORIZATION_FAILED), topic


def test_only_the_stream_apps_write_the_derived_topics(kafka: str, provisioned: Topics) -> None:
    for principal in (SINK, OPS, GATEWAY, department_principal("zwfw")):
        for topic in (provisioned.case_state, provisioned.case_activity,
                      provisioned.material_links):
            assert _refused(_produce(as_(kafka, principal), topic)), (principal, topic)
    assert _written(_produce(as_(kafka, STREAM), provisioned.case_state))


def test_the_sink_reads_the_outputs_and_writes_no_input(kafka: str, provisioned: Topics) -> None:
    assert _refused(_produce(as_(kafka, SINK), provisioned.input("gaj")))
    assert _read_error(consumer_conf(kafka, SINK), provisioned.input("gaj")) is not None
    assert _written(_produce(as_(kafka, STREAM), provisioned.dead_letters))
    sink_group = f"{provisioned.prefix}onewindow-sink"
    assert _read_error(consumer_conf(kafka, SINK), provisioned.dead_letters, sink_group) is None
    # the dead letters keep original bytes: besides the sink (the read model's dead-letter
    # page), only ops and the stream apps read them
    ops_group = f"{provisioned.prefix}onewindow-ops"
    assert _read_error(consumer_conf(kafka, OPS), provisioned.dead_letters, ops_group) is None
    assert _read_error(consumer_conf(kafka, OPS), provisioned.case_state, ops_group) is not None
    assert _read_error(consumer_conf(kafka, GATEWAY), provisioned.input("gaj")) is not None


def test_the_sdk_names_the_refused_write_in_one_line(kafka: str, provisioned: Topics,
                                                     example_events_path: Path) -> None:
    event = get_codec().loads_json_line(example_events_path.read_text("utf-8").splitlines()[2])
    assert event["department"] != "gaj"
    pub = Publisher(kafka, topics=provisioned, departments=CODES, codec=get_codec(),
                    config=as_(kafka, department_principal("gaj")))
    target = provisioned.input(event["department"])
    with pytest.raises(DeliveryFailed) as caught:
        with pub:
            pub.send(event, validate_first=False)
    assert str(caught.value) == f"department gaj may not write {target}"


def test_produce_as_another_department_sends_nothing(kafka: str, provisioned: Topics,
                                                     example_events_path: Path,
                                                     tmp_path: Path) -> None:
    env = dict(os.environ, ONEWINDOW_KAFKA_BOOTSTRAP=kafka,
               ONEWINDOW_TOPIC_PREFIX=provisioned.prefix)
    res = subprocess.run([sys.executable, "-m", "onewindow_cli", "produce",
                          str(example_events_path), "--as", "gaj"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"onewindow produce: department gaj may not write "
                               f"{provisioned.prefix}dept.")
    assert "nothing was sent" in lines[0]
    assert read_topic(kafka, provisioned.input("zwfw"), expected=1, timeout=3) == []


def test_provision_show_and_a_removed_department_is_locked_out(
        kafka: str, topic_prefix: str, tmp_path: Path) -> None:
    settings = settings_for(kafka, topic_prefix=topic_prefix, partitions=3)
    registry = load_registry()
    created, report = provision(settings, registry.codes)
    assert report is not None
    gjj = as_(kafka, department_principal("gjj"))
    topics = Topics(topic_prefix)
    assert _written(_produce(gjj, topics.input("gjj")))

    fewer = tmp_path / "departments.yaml"
    fewer.write_text(yaml.safe_dump({"departments": [
        {"code": d.code, "name": d.name, "name_en": d.name_en, "role": d.role}
        for d in registry.departments if d.code != "gjj"]}, allow_unicode=True), "utf-8")
    env = dict(os.environ, ONEWINDOW_KAFKA_BOOTSTRAP=kafka, ONEWINDOW_TOPIC_PREFIX=topic_prefix,
               ONEWINDOW_PARTITIONS="3", ONEWINDOW_DEPARTMENTS_FILE=str(fewer))
    res = subprocess.run([sys.executable, "-m", "onewindow_cli", "provision"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "revoked dept-gjj" in res.stdout
    assert credential_store(settings).get("dept-gjj") is None
    # its old password no longer signs in; its ACLs are gone
    with pytest.raises(KafkaException):
        AdminClient({**gjj, "socket.timeout.ms": 3000}).list_topics(timeout=5)
    shown = subprocess.run([sys.executable, "-m", "onewindow_cli", "provision", "--show"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0
    assert "dept-gjj" not in shown.stdout
    assert f"dept-gaj         WRITE     TOPIC            LITERAL  {topic_prefix}dept.gaj.events" \
        in shown.stdout
    # and back: provisioning with the full registry issues a new credential
    provision(settings, registry.codes)
    assert _written(_produce(as_(kafka, department_principal("gjj")), topics.input("gjj")))


def test_the_acl_plan_gives_departments_only_their_own_topic() -> None:
    plan = acl_plan(Topics("p."), ["gaj", "swj"])
    gaj = [g for g in plan if g.principal == "dept-gaj"]
    assert {(g.resource, g.name, g.operation) for g in gaj} == {
        ("TOPIC", "p.dept.gaj.events", "WRITE"), ("TRANSACTIONAL_ID", "p.dept-gaj-", "WRITE")}
    assert not [g for g in plan if g.operation == "READ" and g.principal.startswith("dept-")]
    writers = {g.principal for g in plan if g.operation in ("WRITE", "ALL")
               and g.name.startswith("p.onewindow")}
    assert writers == {STREAM}


def test_an_aborted_transaction_is_never_applied_and_lag_returns_to_zero(
        kafka: str, provisioned: Topics, tmp_path: Path, example_events_path: Path) -> None:
    """A department publishing transactionally: the aborted event never happened."""
    codec = get_codec()
    lines = example_events_path.read_text("utf-8").splitlines()
    accepted = codec.loads_json_line(lines[0])
    assert accepted["department"] == "zwfw"
    aborted = dict(accepted, event_id="aborted-1", case_id="TX-ABORTED")
    committed = dict(accepted, event_id="committed-1", case_id="TX-COMMITTED")
    conf = {**producer_config(settings_for(kafka), department_principal("zwfw")),
            "transactional.id": f"{provisioned.prefix}dept-zwfw-test-{uuid.uuid4().hex[:6]}",
            "partitioner": "murmur2_random"}
    p = Producer(conf)
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(provisioned.input("zwfw"), codec.encode(aborted), record_key("TX-ABORTED"))
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(provisioned.input("zwfw"), codec.encode(committed), record_key("TX-COMMITTED"))
    p.commit_transaction(30)

    port = free_port()
    worker = start_worker_on(kafka, provisioned, tmp_path, port)
    try:
        states = read_topic(kafka, provisioned.case_state, expected=1, timeout=90)
        ids = {m.key().decode() for m in states}
        assert ids == {"TX-COMMITTED"}
        dead = read_topic(kafka, provisioned.dead_letters, expected=1, timeout=2)
        assert dead == []
        deadline = time.monotonic() + 60
        lag = None
        while time.monotonic() < deadline:
            page = scrape(port)
            lag = page.get("onewindow_consumer_lag")
            if lag == 0 and page.get("onewindow_events_applied_total") == 1:
                break
            time.sleep(1)
        assert lag == 0, f"lag {lag} after an aborted and a committed transaction"
    finally:
        stop(worker)
    applied = read_topic(kafka, provisioned.case_activity, expected=1, timeout=5)
    assert [activity_event(codec, codec.decode_record(m.value()))["event_id"]
            for m in applied] == ["committed-1"]


def test_sasl_ssl_end_to_end_with_a_local_ca(tmp_path: Path,
                                             example_events_path: Path) -> None:
    """The production profile: SASL_SSL with a locally generated CA. A department
    publishes over TLS, the Faust worker (aiokafka with the CA) folds it."""
    broker = LocalKafka(data_dir=tmp_path / "kafka", port=free_port(),
                        controller_port=free_port(), cache_dir=get_settings().cache_dir,
                        credentials_dir=tmp_path / "credentials", security="SASL_SSL")
    broker.start()
    try:
        prefix = "tls."
        s = Settings(kafka_bootstrap=broker.bootstrap, kafka_security_protocol="SASL_SSL",
                     kafka_ssl_ca_file=broker.ca_file, topic_prefix=prefix, partitions=3,
                     kafka_credentials_dir=tmp_path / "credentials")
        provision(s, CODES)
        topics = Topics(prefix)
        event = get_codec().loads_json_line(example_events_path.read_text("utf-8")
                                            .splitlines()[0])
        with Publisher(s.kafka_bootstrap, topics=topics, departments=CODES, codec=get_codec(),
                       config=producer_config(s, department_principal(event["department"]))
                       ) as pub:
            pub.send(event)
        plain = {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                 "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin",
                 "sasl.password": broker.credentials.ensure("admin"), "socket.timeout.ms": 3000}
        with pytest.raises(KafkaException):  # no plaintext way in
            AdminClient(plain).list_topics(timeout=4)
        env = dict(os.environ, **kafka_env(s), ONEWINDOW_TOPIC_PREFIX=prefix,
                   ONEWINDOW_DATA_DIR=str(tmp_path / "data"), ONEWINDOW_PARTITIONS="3",
                   ONEWINDOW_ID_HASH_KEY=ID_KEY)
        (tmp_path / "data").mkdir()
        with open(tmp_path / "worker.log", "ab") as log:
            worker = subprocess.Popen([sys.executable, "-m", "onewindow_cli", "worker",
                                       "--web-port", str(free_port())], env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
        try:
            reader = Consumer({**client_config(s, "admin"), "group.id": "tls-check",
                               "auto.offset.reset": "earliest"})
            reader.subscribe([topics.case_state])
            got = None
            deadline = time.monotonic() + 90
            while got is None and time.monotonic() < deadline:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
                m = reader.poll(0.5)
                if m is not None and m.error() is None:
                    got = m
            reader.close()
            assert got is not None and got.key() == event["case_id"].encode()
        finally:
            stop(worker)
    finally:
        broker.stop()
    # the broker's files (plaintext input segments, the metadata log with the SCRAM
    # credentials, its properties) are the owner's alone
    exposed = [str(p) for p in (tmp_path / "kafka").rglob("*")
               if p.stat().st_mode & 0o077]
    assert exposed == []
