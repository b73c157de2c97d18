"""docker-compose's broker (ops/kafka/start-secured.sh, the entrypoint of the apache/kafka
container) runs here for real: the script is started with the Kafka jars the tests use
standing in for the image's /opt/kafka (its bin/ scripts are thin launchers of the same
classes), and it must come up secured as the local broker does."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from onewindow.config import get_settings
from onewindow.kafka_local import ensure_jars, free_port
from tests import REPO_ROOT

pytestmark = pytest.mark.integration

LAUNCHER = """#!/usr/bin/env bash
exec java -Xmx512m -cp "{libs}/*" -Dlog4j.configuration=file:{log4j} \\
  -Dkafka.logs.dir={logs} {main} "$@"
"""


def _kafka_home(tmp: Path) -> Path:
    s = get_settings()
    libs = ensure_jars(s.kafka_version, s.cache_dir)
    home = tmp / "opt-kafka"
    (home / "bin").mkdir(parents=True)
    for name, main in (("kafka-storage.sh", "kafka.tools.StorageTool"),
                       ("kafka-server-start.sh", "kafka.Kafka")):
        path = home / "bin" / name
        path.write_text(LAUNCHER.format(libs=libs, log4j=libs.parent / "log4j.properties",
                                        logs=tmp, main=main))
        path.chmod(0o755)
    return home


def test_the_compose_broker_starts_secured(tmp_path: Path) -> None:
    secret = tmp_path / "admin.secret"
    secret.write_text("composeAdminSecret123\n")
    port, cport = free_port(), free_port()
    env = dict(os.environ, KAFKA_HOME=str(_kafka_home(tmp_path)),
               KAFKA_DATA_DIR=str(tmp_path / "data"), KAFKA_ADVERTISED_HOST="127.0.0.1",
               KAFKA_CLIENT_PORT=str(port), KAFKA_CONTROLLER_PORT=str(cport),
               KAFKA_CONFIG_DIR=str(tmp_path / "conf"), KAFKA_ADMIN_PASSWORD_FILE=str(secret))
    with open(tmp_path / "broker.log", "wb") as log:
        proc = subprocess.Popen(["bash", str(REPO_ROOT / "ops" / "kafka" / "start-secured.sh")],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}",
                             "security.protocol": "SASL_PLAINTEXT",
                             "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin",
                             "sasl.password": "composeAdminSecret123"})
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "broker.log").read_text()[-2000:]
            try:
                if admin.list_topics(timeout=2).brokers:
                    break
            except KafkaException:
                pass
            assert time.monotonic() < deadline, "the compose broker did not come up"
            time.sleep(0.5)
        anonymous = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}",
                                 "socket.timeout.ms": 3000})
        with pytest.raises(KafkaException):
            anonymous.list_topics(timeout=4)
        props = (tmp_path / "conf" / "server.properties").read_text()
        assert "allow.everyone.if.no.acl.found=false" in props
        assert "super.users=User:admin\n" in props
        assert oct((tmp_path / "conf" / "server.properties").stat().st_mode & 0o777) == "0o600"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


def test_a_password_kafka_cannot_parse_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "admin.secret"
    secret.write_text("has,comma=and-equals\n")
    res = subprocess.run(["bash", str(REPO_ROOT / "ops" / "kafka" / "start-secured.sh")],
                         env=dict(os.environ, KAFKA_ADMIN_PASSWORD_FILE=str(secret),
                                  KAFKA_CONFIG_DIR=str(tmp_path / "conf")),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "admin password must be" in res.stderr


def _uuid() -> str:
    """A Kafka Uuid (what `kafka-storage.sh random-uuid` prints)."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):
            return value


@pytest.mark.cluster
def test_three_compose_nodes_form_one_secured_cluster(tmp_path: Path) -> None:
    """docker-compose.cluster.yml's nodes: the script three times, one quorum."""
    secret = tmp_path / "admin.secret"
    secret.write_text("composeAdminSecret123\n")
    home = _kafka_home(tmp_path)
    ports = [(free_port(), free_port()) for _ in range(3)]
    voters = ",".join(f"{i}@127.0.0.1:{cport}:{_uuid()}"
                      for i, (_, cport) in enumerate(ports, start=1))
    cluster_id = _uuid()
    procs: list[subprocess.Popen[bytes]] = []
    for i, (port, cport) in enumerate(ports, start=1):
        env = dict(os.environ, KAFKA_HOME=str(home), KAFKA_DATA_DIR=str(tmp_path / f"data-{i}"),
                   KAFKA_ADVERTISED_HOST="127.0.0.1", KAFKA_CLIENT_PORT=str(port),
                   KAFKA_CONTROLLER_PORT=str(cport), KAFKA_CONFIG_DIR=str(tmp_path / f"conf-{i}"),
                   KAFKA_ADMIN_PASSWORD_FILE=str(secret), KAFKA_NODE_ID=str(i),
                   KAFKA_INITIAL_CONTROLLERS=voters, KAFKA_CLUSTER_ID=cluster_id)
        with open(tmp_path / f"broker-{i}.log", "wb") as log:
            procs.append(subprocess.Popen(
                ["bash", str(REPO_ROOT / "ops" / "kafka" / "start-secured.sh")], env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    try:
        admin = AdminClient({"bootstrap.servers": ",".join(f"127.0.0.1:{p}" for p, _ in ports),
                             "security.protocol": "SASL_PLAINTEXT",
                             "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin",
                             "sasl.password": "composeAdminSecret123"})
        deadline = time.monotonic() + 120
        while True:
            for i, proc in enumerate(procs, start=1):
                assert proc.poll() is None, (tmp_path / f"broker-{i}.log").read_text()[-2000:]
            try:
                if len(admin.list_topics(timeout=2).brokers) == 3:
                    break
            except KafkaException:
                pass
            assert time.monotonic() < deadline, "the three compose nodes did not come up"
            time.sleep(0.5)
        # a topic created with the brokers' default replication: three copies, two acks
        # sent again while the cluster settles: librdkafka drops a bootstrap address's
        # handle once the metadata names that broker, and a request on it ends with
        # _DESTROY_BROKER (seen 0.3 s after the three answered, in a newcomer's run)
        deadline = time.monotonic() + 60
        while True:
            fut = admin.create_topics([NewTopic("compose.check", num_partitions=3)],
                                      operation_timeout=60)["compose.check"]
            try:
                fut.result()
                break
            except KafkaException as exc:
                code = exc.args[0].code()
                if code == KafkaError.TOPIC_ALREADY_EXISTS:
                    break  # the first attempt made it
                assert code in (KafkaError._DESTROY_BROKER, KafkaError._TRANSPORT,  # noqa: SLF001
                                KafkaError._TIMED_OUT) or exc.args[0].retriable(), exc  # noqa: SLF001
                assert time.monotonic() < deadline, exc
                time.sleep(0.5)
        deadline = time.monotonic() + 60
        while True:
            t = admin.list_topics("compose.check", timeout=10).topics["compose.check"]
            if t.error is None and len(t.partitions) == 3:
                break
            assert time.monotonic() < deadline, t.error
            time.sleep(0.5)
        assert {len(p.replicas) for p in t.partitions.values()} == {3}
        res = ConfigResource(ResourceType.TOPIC, "compose.check")
        while True:  # the broker asked may learn of the new topic a moment later
            try:
                conf = admin.describe_configs([res], request_timeout=30)[res].result()
                break
            except KafkaException:
                assert time.monotonic() < deadline, "no configs of compose.check"
                time.sleep(0.5)
        assert conf["min.insync.replicas"].value == "2"
        assert conf["unclean.leader.election.enable"].value == "false"
        anonymous = AdminClient({"bootstrap.servers": f"127.0.0.1:{ports[2][0]}",
                                 "socket.timeout.ms": 3000})
        with pytest.raises(KafkaException):
            anonymous.list_topics(timeout=4)
        for i in (1, 2, 3):
            props = (tmp_path / f"conf-{i}" / "server.properties").read_text()
            assert f"node.id={i}\n" in props
            assert "offsets.topic.replication.factor=3\n" in props
            assert "transaction.state.log.min.isr=2\n" in props
            assert "allow.everyone.if.no.acl.found=false" in props
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(60)


@pytest.mark.parametrize(("voters", "says"), [
    ("1@kafka:9093", "is not id@host:port:directory-id"),
    ("2@kafka-2:9093:pbvuBlaTTwKRxS5NLJwRFQ", "node 1 is not in KAFKA_INITIAL_CONTROLLERS"),
])
def test_a_cluster_node_without_a_usable_quorum_is_refused(
        tmp_path: Path, voters: str, says: str) -> None:
    secret = tmp_path / "admin.secret"
    secret.write_text("composeAdminSecret123\n")
    res = subprocess.run(["bash", str(REPO_ROOT / "ops" / "kafka" / "start-secured.sh")],
                         env=dict(os.environ, KAFKA_ADMIN_PASSWORD_FILE=str(secret),
                                  KAFKA_CONFIG_DIR=str(tmp_path / "conf"),
                                  KAFKA_INITIAL_CONTROLLERS=voters,
                                  KAFKA_CLUSTER_ID="MkU3OEVBNTcwNTJENDM2Qk"),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert says in res.stderr
