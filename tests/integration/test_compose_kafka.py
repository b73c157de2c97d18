"""docker-compose's broker (ops/kafka/start-secured.sh, the entrypoint of the apache/kafka
container) runs here for real: the script is started with the Kafka jars the tests use
standing in for the image's /opt/kafka (its bin/ scripts are thin launchers of the same
classes), and it must come up secured as the local broker does."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

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
