"""Run a real Apache Kafka (KRaft, one combined broker+controller) from the Maven jars.

The same code serves `onewindow up`, the test suite and CI: resolve
`org.apache.kafka:kafka_2.13` with its runtime dependencies and a logging binding
into a per-user cache (once), format a data directory with
`kafka.tools.StorageTool format --standalone`, start `kafka.Kafka`, wait until it
answers, stop it cleanly.

Secured by default (interfaces.md, Kafka: who may do what; docs/operations.md):

- the client listener speaks SASL/SCRAM-SHA-512 (`SASL_PLAINTEXT` on loopback, or
  `SASL_SSL` with a CA and broker certificate generated into the data directory);
- the controller listener (loopback only) speaks SASL/PLAIN: SCRAM cannot serve the
  controller quorum, whose own log holds the SCRAM credentials;
- Kafka's `StandardAuthorizer` with `allow.everyone.if.no.acl.found=false`; the only
  super user is the broker's own principal `admin`, whose SCRAM credential is written
  into the metadata log when the directory is formatted (`--add-scram`), with a random
  password kept in the credentials directory (owner-only files).

Principals and ACLs for the departments and services are `onewindow.provision`'s job.
`security="PLAINTEXT"` runs the old open broker, for a benchmark baseline only.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from onewindow.errors import OneWindowError
from onewindow.security.kafka_auth import ADMIN, MECHANISM, SECURITY_PROTOCOLS, CredentialStore

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
    #: SASL_PLAINTEXT (default), SASL_SSL, or PLAINTEXT (benchmark baseline only)
    security: str = "SASL_PLAINTEXT"
    #: where the broker's own password is kept (default: <data_dir>/credentials)
    credentials_dir: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secured(self) -> bool:
        return self.security != "PLAINTEXT"

    @property
    def credentials(self) -> CredentialStore:
        return CredentialStore(self.credentials_dir or Path(self.data_dir) / "credentials")

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients trust with SASL_SSL (PEM)."""
        return Path(self.data_dir) / "tls" / "ca.pem"

    def admin_config(self) -> dict[str, Any]:
        """librdkafka settings of an admin client signed in as the broker's principal."""
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap}
        if self.secured:
            conf.update({"security.protocol": self.security, "sasl.mechanism": MECHANISM,
                         "sasl.username": ADMIN,
                         "sasl.password": self.credentials.ensure(ADMIN)})
        if self.security == "SASL_SSL":
            conf["ssl.ca.location"] = str(self.ca_file)
        return conf

    def _listener_config(self) -> dict[str, str]:
        if not self.secured:
            return {
                "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
                             f"CONTROLLER://127.0.0.1:{self.controller_port}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            }
        pw = self.credentials.ensure(ADMIN)
        conf = {
            "listeners": f"CLIENT://127.0.0.1:{self.port},"
                         f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"CLIENT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "CLIENT",
            "listener.security.protocol.map":
                f"CLIENT:{self.security},CONTROLLER:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "listener.name.client.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{ADMIN}" password="{pw}";',
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config":
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{ADMIN}" password="{pw}" user_{ADMIN}="{pw}";',
            "authorizer.class.name":
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN}",
            "allow.everyone.if.no.acl.found": "false",
        }
        if self.security == "SASL_SSL":
            # the broker talks to itself over this listener too (inter-broker), so it
            # trusts the same CA its clients do
            conf.update({"listener.name.client.ssl.keystore.type": "PEM",
                         "listener.name.client.ssl.keystore.location":
                             str(Path(self.data_dir) / "tls" / "broker.pem"),
                         "listener.name.client.ssl.truststore.type": "PEM",
                         "listener.name.client.ssl.truststore.location": str(self.ca_file)})
        return conf

    def _ensure_tls(self) -> None:
        """A local CA and a broker certificate for 127.0.0.1/localhost (openssl), once."""
        tls = Path(self.data_dir) / "tls"
        if (tls / "broker.pem").exists():
            return
        openssl = shutil.which("openssl")
        if openssl is None:
            raise KafkaLocalError("SASL_SSL needs openssl to make the local CA; install it")
        tls.mkdir(parents=True, exist_ok=True)
        os.chmod(tls, 0o700)
        ext = tls / "san.cnf"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        os.chmod(ext, 0o600)
        steps = [
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "825",
             "-subj", "/CN=onewindow local CA", "-keyout", str(tls / "ca.key"),
             "-out", str(tls / "ca.pem")],
            [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", str(tls / "broker.key"), "-out", str(tls / "broker.csr")],
            [openssl, "x509", "-req", "-in", str(tls / "broker.csr"), "-CA",
             str(tls / "ca.pem"), "-CAkey", str(tls / "ca.key"), "-CAcreateserial",
             "-days", "825", "-extfile", str(ext), "-out", str(tls / "broker.crt")],
            [openssl, "pkcs8", "-topk8", "-nocrypt", "-in", str(tls / "broker.key"),
             "-out", str(tls / "broker.p8")],
        ]
        for cmd in steps:
            res = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                 umask=0o077)
            if res.returncode != 0:
                raise KafkaLocalError(f"making the local CA failed: {res.stderr.strip()[-300:]}")
        pem = (tls / "broker.p8").read_text() + (tls / "broker.crt").read_text() \
            + (tls / "ca.pem").read_text()
        fd = os.open(tls / "broker.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pem)

    def _properties(self) -> str:
        conf = {
            "process.roles": "broker,controller",
            "node.id": "1",
            **self._listener_config(),
            "controller.listener.names": "CONTROLLER",
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
            out = (os.fdopen(os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
                   if log else subprocess.DEVNULL)
            return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, umask=0o077)
        return subprocess.run(cmd, capture_output=True, text=True, check=False, umask=0o077)

    def start(self, timeout: float = 90.0, stop: threading.Event | None = None) -> LocalKafka:
        """Fetch (once), format (once per data dir), start and wait until it answers.
        Started again on the same data directory and ports after it died, it recovers its
        logs and carries on (`onewindow up` does that). `stop`, once set, ends the wait
        early and leaves the broker running (stop() it)."""
        libs = ensure_jars(self.version, self.cache_dir)
        self.data_dir = Path(self.data_dir).resolve()
        # The log segments hold the input topics' plaintext ID numbers and the metadata
        # log the SCRAM credentials: owner only (the Java process runs with umask 077).
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        if self.security not in SECURITY_PROTOCOLS:
            raise KafkaLocalError(f"unknown security {self.security!r}: one of "
                                  f"{', '.join(SECURITY_PROTOCOLS)}")
        if self.security == "SASL_SSL":
            self._ensure_tls()
        props = self.data_dir / "server.properties"
        fd = os.open(props, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds a password
        with os.fdopen(fd, "w") as f:
            f.write(self._properties())
        os.chmod(props, 0o600)
        for p in (self.port, self.controller_port):
            if not _free(p):
                raise KafkaLocalError(f"port {p} on 127.0.0.1 is in use; is a broker running?")
        marker = self.data_dir / "security"
        formatted = (self.data_dir / "log" / "meta.properties").exists()
        profile = "secured" if self.secured else "open"
        if formatted and (marker.read_text().strip() if marker.exists() else "open") != profile:
            raise KafkaLocalError(
                f"{self.data_dir} holds a broker formatted {'without' if self.secured else 'with'}"
                f" SASL/ACLs; remove that directory (its data is lost) to start a "
                f"{profile} broker there")
        if not formatted:
            scram = ["--add-scram",
                     f"{MECHANISM}=[name={ADMIN},password={self.credentials.ensure(ADMIN)}]"] \
                if self.secured else []
            res = self._java(libs, "kafka.tools.StorageTool", "format", "--standalone",
                             "-t", _cluster_id(), "-c", str(props), *scram)
            assert isinstance(res, subprocess.CompletedProcess)
            if res.returncode != 0:
                raise KafkaLocalError(f"formatting {self.data_dir} failed: "
                                      f"{(res.stdout + res.stderr).strip()[-400:]}")
            marker.write_text(profile + "\n")
            os.chmod(marker, 0o600)
        proc = self._java(libs, "kafka.Kafka", str(props), log=self.data_dir / "stdout.log",
                          detach=True)
        assert isinstance(proc, subprocess.Popen)
        self.proc = proc
        self.wait_ready(timeout, stop=stop)
        return self

    def wait_ready(self, timeout: float, stop: threading.Event | None = None) -> None:
        """Until the broker answers a metadata request as `admin`, or `stop` is set.
        Raises KafkaLocalError if it exits or does not answer within `timeout` seconds
        (then it is stopped)."""
        admin = AdminClient({**self.admin_config(), "log_level": 0, "logger": _quiet_logger()})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                return
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
