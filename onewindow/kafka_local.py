"""Run a real Apache Kafka (KRaft, one combined broker+controller) from the Maven jars.

The same code serves `onewindow up`, the test suite and CI: resolve
`org.apache.kafka:kafka_2.13` with its runtime dependencies and a logging binding
into a git-ignored cache (once), format a data directory with
`kafka.tools.StorageTool format --standalone`, start `kafka.Kafka`, wait until it
answers, stop it cleanly.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient

from onewindow.errors import OneWindowError

POM_TEMPLATE = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>onewindow</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version></dependency>
  </dependencies>
</project>
"""

LOG4J = """log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.Kafka$=INFO
"""


class KafkaLocalError(OneWindowError):
    """The local broker could not be fetched, formatted or started."""


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """An unused loopback port (for tests that run their own broker)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_jars(version: str, cache_dir: Path) -> Path:
    """The directory of Kafka's runtime jars, fetched with Maven only the first time."""
    libs = Path(cache_dir).resolve() / f"kafka-{version}" / "libs"
    marker = libs.parent / ".complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None:
        raise KafkaLocalError("Maven (mvn) is needed once to fetch the Kafka jars; install it")
    work = libs.parent
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(POM_TEMPLATE.format(version=version))
    tmp = work / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = ["mvn", "-q", "-B", "-f", str(work / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise KafkaLocalError(f"fetching Kafka {version} jars failed: {' | '.join(tail)}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    (work / "log4j.properties").write_text(LOG4J)
    marker.write_text(version)
    return libs


def _cluster_id() -> str:
    """A KRaft cluster id (URL-safe base64 of a UUID). One that starts with '-' would be
    read as an option by StorageTool's argument parser, so draw again."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


@dataclass
class LocalKafka:
    """One local KRaft broker+controller. Use as a context manager or start()/stop()."""

    data_dir: Path
    port: int = 19092
    controller_port: int = 19093
    version: str = "3.9.2"
    cache_dir: Path = Path(".cache")
    heap: str = "768m"
    extra_config: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _properties(self) -> str:
        conf = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
                         f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.data_dir / "log"),
            "num.partitions": "6",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        conf.update(self.extra_config)
        return "".join(f"{k}={v}\n" for k, v in conf.items())

    def _java(self, libs: Path, main: str, *args: str, log: Path | None = None,
              detach: bool = False) -> subprocess.Popen[bytes] | subprocess.CompletedProcess[str]:
        java = shutil.which("java")
        if java is None:
            raise KafkaLocalError("Java 17+ (java) is needed to run Kafka; install it")
        cmd = [java, "-Xms128m", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j.configuration=file:{libs.parent / 'log4j.properties'}",
               f"-Dkafka.logs.dir={self.data_dir}", "-cp", f"{libs}/*", main, *args]
        if detach:
            out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
            return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    def start(self, timeout: float = 90.0) -> LocalKafka:
        """Fetch (once), format (once per data dir), start and wait until it answers."""
        libs = ensure_jars(self.version, self.cache_dir)
        self.data_dir = Path(self.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self.data_dir / "server.properties"
        props.write_text(self._properties())
        for p in (self.port, self.controller_port):
            if not _free(p):
                raise KafkaLocalError(f"port {p} on 127.0.0.1 is in use; is a broker running?")
        if not (self.data_dir / "log" / "meta.properties").exists():
            res = self._java(libs, "kafka.tools.StorageTool", "format", "--standalone",
                             "-t", _cluster_id(), "-c", str(props))
            assert isinstance(res, subprocess.CompletedProcess)
            if res.returncode != 0:
                raise KafkaLocalError(f"formatting {self.data_dir} failed: "
                                      f"{(res.stdout + res.stderr).strip()[-400:]}")
        proc = self._java(libs, "kafka.Kafka", str(props), log=self.data_dir / "stdout.log",
                          detach=True)
        assert isinstance(proc, subprocess.Popen)
        self.proc = proc
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0,
                             "logger": _quiet_logger()})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise KafkaLocalError(f"Kafka exited with {self.proc.returncode}; see "
                                      f"{self.data_dir / 'server.log'}")
            try:
                md = admin.list_topics(timeout=2)
                if md.brokers:
                    return
            except Exception:  # noqa: BLE001,S112 - not up yet: keep polling until the deadline
                time.sleep(0.3)
        self.stop()
        raise KafkaLocalError(f"Kafka did not answer on {self.bootstrap} within {timeout:.0f}s")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (controlled shutdown), then SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _quiet_logger() -> logging.Logger:
    log = logging.getLogger("onewindow.kafka_local.librdkafka")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return log
