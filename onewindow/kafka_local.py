"""Run a real Apache Kafka (KRaft, combined broker+controller nodes) from the Maven jars.

The same code serves `onewindow up`, the test suite and CI: resolve
`org.apache.kafka:kafka_2.13` with its runtime dependencies and a logging binding
into a per-user cache (once), format a data directory with
`kafka.tools.StorageTool format --standalone`, start `kafka.Kafka`, wait until it
answers, stop it cleanly. `LocalKafkaCluster` runs three (or any number of) such nodes
on loopback as one cluster: each node a voter of one dynamic controller quorum (formatted
with `--initial-controllers`), the topics' replication `onewindow.topics.replication_for`
(docs/operations.md, "A three-broker cluster"); it can SIGKILL and restart one node.

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
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from onewindow.errors import OneWindowError
from onewindow.security.kafka_auth import ADMIN, MECHANISM, SECURITY_PROTOCOLS, CredentialStore
from onewindow.topics import min_insync_for, replication_for

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


@dataclass(frozen=True)
class Voter:
    """One controller of a quorum: its node id, its controller port on 127.0.0.1 and
    the directory id of its metadata log (a Kafka Uuid, base64)."""

    node_id: int
    controller_port: int
    directory_id: str


@dataclass(frozen=True)
class Quorum:
    """The KRaft cluster a node belongs to: the cluster id and every voter, the same for
    every node (StorageTool's `--initial-controllers` must be identical on each)."""

    cluster_id: str
    voters: tuple[Voter, ...]

    @property
    def bootstrap_servers(self) -> str:
        """`controller.quorum.bootstrap.servers`: every controller's address."""
        return ",".join(f"127.0.0.1:{v.controller_port}" for v in self.voters)

    @property
    def initial_controllers(self) -> str:
        """StorageTool's `--initial-controllers`: `id@host:port:directory-id,...`."""
        return ",".join(f"{v.node_id}@127.0.0.1:{v.controller_port}:{v.directory_id}"
                        for v in self.voters)


@dataclass
class LocalKafka:
    """One local KRaft broker+controller. Use as a context manager or start()/stop().
    Alone (`quorum` None) it is a one-voter quorum (`--standalone`); in a
    `LocalKafkaCluster` it is node `node_id` of `quorum`."""

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
    #: node id and quorum in a cluster (None: a cluster of one, this node)
    node_id: int = 1
    quorum: Quorum | None = None
    #: where the CA and the broker certificate are (SASL_SSL; default <data_dir>/tls):
    #: the nodes of a cluster share one, so clients trust one CA
    tls_dir: Path | None = None
    #: False once its cluster has started: a node whose data is gone must not be
    #: formatted again as an initial voter (`LocalKafkaCluster`)
    may_format: bool = True
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
    def tls(self) -> Path:
        return Path(self.tls_dir) if self.tls_dir is not None else Path(self.data_dir) / "tls"

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients trust with SASL_SSL (PEM)."""
        return self.tls / "ca.pem"

    @property
    def replication(self) -> int:
        """The replication factor of its cluster's topics, internal ones included:
        `onewindow.topics.replication_for` of the number of nodes."""
        return replication_for(len(self.quorum.voters) if self.quorum is not None else 1)

    @property
    def formatted(self) -> bool:
        """Whether its data directory holds a formatted log."""
        return (Path(self.data_dir) / "log" / "meta.properties").exists()

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
                             str(self.tls / "broker.pem"),
                         "listener.name.client.ssl.truststore.type": "PEM",
                         "listener.name.client.ssl.truststore.location": str(self.ca_file)})
        return conf

    def _ensure_tls(self) -> None:
        """A local CA and a broker certificate for 127.0.0.1/localhost (openssl), once."""
        tls = self.tls
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
        rf, isr = self.replication, min_insync_for(self.replication)
        conf = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            **self._listener_config(),
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.bootstrap.servers": self.quorum.bootstrap_servers
            if self.quorum is not None else f"127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.data_dir / "log"),
            "num.partitions": "6",
            "auto.create.topics.enable": "false",
            # every topic's copies and acknowledgements, the internal ones too (the
            # consumer offsets, the transaction state; the changelogs Faust creates get
            # these defaults): onewindow.topics, docs/operations.md
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(isr),
            "unclean.leader.election.enable": "false",
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(isr),
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
        early and leaves the broker running (stop() it). Already launched (`launch`, as a
        cluster starts its nodes together), it only waits. Anything raised meanwhile (a
        broker that does not answer, Ctrl-C, `onewindow.stopping.Stopped`) stops a JVM
        still running first: the caller has no broker to stop yet (one that exited keeps
        its ``proc``, for its status)."""
        try:
            if self.proc is None or self.proc.poll() is not None:
                self.launch()
            self.wait_ready(timeout, stop=stop)
        except BaseException:
            if self.proc is not None and self.proc.poll() is None:
                self.stop()
            raise
        return self

    def launch(self) -> None:
        """`start` without the wait: fetch, format if needed, start the JVM. A node of a
        cluster answers only once a majority of its quorum runs, so a cluster launches
        every node before it waits for any (`LocalKafkaCluster.start`)."""
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
        if not formatted and not self.may_format:
            raise KafkaLocalError(
                f"node {self.node_id} has lost its data ({self.data_dir}); formatting it "
                "again as an initial voter of its quorum is unsafe: remove the whole cluster "
                "directory (docs/operations.md, \"A three-broker cluster\")")
        if not formatted:
            scram = ["--add-scram",
                     f"{MECHANISM}=[name={ADMIN},password={self.credentials.ensure(ADMIN)}]"] \
                if self.secured else []
            quorum = ["--initial-controllers", self.quorum.initial_controllers,
                      "-t", self.quorum.cluster_id] if self.quorum is not None \
                else ["--standalone", "-t", _cluster_id()]
            res = self._java(libs, "kafka.tools.StorageTool", "format", *quorum,
                             "-c", str(props), *scram)
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

    def wait_ready(self, timeout: float, stop: threading.Event | None = None,
                   brokers: int = 1) -> None:
        """Until the broker answers a metadata request as `admin` naming at least
        `brokers` live brokers, or `stop` is set. Raises KafkaLocalError if it exits or
        does not answer within `timeout` seconds (then it is stopped)."""
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
                if len(md.brokers) >= brokers:
                    return
                time.sleep(0.3)
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

    def kill(self) -> None:
        """SIGKILL, as a machine that loses power (no controlled shutdown, no flush); the
        next start recovers its logs. Returns once the process is gone."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _quiet_logger() -> logging.Logger:
    log = logging.getLogger("onewindow.kafka_local.librdkafka")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return log


def cluster_ports(port: int, controller_port: int, size: int) -> list[tuple[int, int]]:
    """The (client, controller) ports of the nodes of a local cluster whose first node
    listens on `port` and `controller_port`: node i (from 1) on `port + 2(i-1)` and
    `controller_port + 2(i-1)` (`onewindow up --brokers 3` with the defaults: 19092/19093,
    19094/19095, 19096/19097). Raises KafkaLocalError when two of them coincide."""
    if size < 1:
        raise KafkaLocalError(f"a cluster has at least one node, not {size}")
    out = [(port + 2 * i, controller_port + 2 * i) for i in range(size)]
    flat = [p for pair in out for p in pair]
    if len(set(flat)) != len(flat):
        raise KafkaLocalError(f"the ports of {size} nodes from {port}/{controller_port} "
                              f"overlap ({', '.join(map(str, flat))}): pick a controller "
                              "port that is not a client port plus an even number")
    return out


@dataclass
class LocalKafkaCluster:
    """`len(ports)` local KRaft nodes on loopback, one cluster: each node a combined
    broker+controller (`process.roles=broker,controller`) and a voter of one dynamic
    controller quorum, node i (from 1) on `ports[i-1]` = (client port, controller port),
    its data under `<data_dir>/node-<i>`. Secured as a single `LocalKafka` is (the same
    listeners, SASL mechanisms, authorizer and super user on every node; inter-broker
    traffic on the client listener as `admin` over SCRAM, the controllers among themselves
    over SASL/PLAIN); one credentials directory and, with SASL_SSL, one CA for all.

    The cluster's identity (its id, each voter's controller port and directory id) is
    written to `<data_dir>/cluster.json` at the first start and read after, so a restart
    or a new process on the same directory joins the same quorum; it refuses other
    controller ports, and a node whose data is gone (re-formatting it as an initial voter
    would let it vote again with nothing: docs/operations.md). Topics and the internal
    topics get `replication_for(nodes)` copies, `min_insync_for` of that."""

    data_dir: Path
    ports: Sequence[tuple[int, int]]
    version: str = "3.9.2"
    cache_dir: Path = Path(".cache")
    heap: str = "512m"
    extra_config: dict[str, str] = field(default_factory=dict)
    security: str = "SASL_PLAINTEXT"
    credentials_dir: Path | None = None
    nodes: list[LocalKafka] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        flat = [p for pair in self.ports for p in pair]
        if not self.ports or len(set(flat)) != len(flat):
            raise KafkaLocalError(f"a cluster needs one distinct (client, controller) port "
                                  f"pair per node, got {list(self.ports)}")
        creds = Path(self.credentials_dir) if self.credentials_dir is not None \
            else self.data_dir / "credentials"
        self.credentials_dir = creds
        self.nodes = [LocalKafka(data_dir=self.data_dir / f"node-{i}", port=port,
                                 controller_port=cport, version=self.version,
                                 cache_dir=self.cache_dir, heap=self.heap,
                                 extra_config=dict(self.extra_config), security=self.security,
                                 credentials_dir=creds, node_id=i,
                                 tls_dir=self.data_dir / "tls")
                      for i, (port, cport) in enumerate(self.ports, start=1)]

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma-separated (a client needs one that answers)."""
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def secured(self) -> bool:
        return self.security != "PLAINTEXT"

    @property
    def credentials(self) -> CredentialStore:
        return self.nodes[0].credentials

    @property
    def ca_file(self) -> Path:
        return self.nodes[0].ca_file

    @property
    def replication(self) -> int:
        return replication_for(self.size)

    def node(self, node_id: int) -> LocalKafka:
        """Node `node_id` (from 1)."""
        if not 1 <= node_id <= self.size:
            raise KafkaLocalError(f"no node {node_id} in a cluster of {self.size}")
        return self.nodes[node_id - 1]

    def admin_config(self, node_id: int | None = None) -> dict[str, Any]:
        """librdkafka settings of an admin client signed in as `admin`, bootstrapped from
        every node (or from node `node_id` alone)."""
        conf = self.nodes[0].admin_config()
        conf["bootstrap.servers"] = self.node(node_id).bootstrap if node_id else self.bootstrap
        return conf

    def running(self) -> list[int]:
        """The ids of the nodes whose process runs."""
        return [n.node_id for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def _quorum(self) -> Quorum:
        path = self.data_dir / "cluster.json"
        cports = [cport for _, cport in self.ports]
        if path.exists():
            doc = json.loads(path.read_text())
            quorum = Quorum(doc["cluster_id"], tuple(Voter(**v) for v in doc["voters"]))
            have = [v.controller_port for v in quorum.voters]
            if have != cports:
                raise KafkaLocalError(
                    f"the cluster in {self.data_dir} has controllers on ports {have}, not "
                    f"{cports}: start it on those (its quorum keeps them), or remove the "
                    "directory (its data is lost)")
            return quorum
        stale = [n.node_id for n in self.nodes if n.formatted]
        if stale:
            raise KafkaLocalError(f"{self.data_dir} holds formatted nodes {stale} but no "
                                  "cluster.json; remove the directory (its data is lost)")
        quorum = Quorum(_cluster_id(), tuple(Voter(i, cport, _cluster_id())
                                             for i, cport in enumerate(cports, start=1)))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"cluster_id": quorum.cluster_id,
                       "voters": [v.__dict__ for v in quorum.voters]}, f, indent=1)
        tmp.replace(path)
        return quorum

    def _prepare(self) -> None:
        """The quorum into every node; only a cluster none of whose nodes holds data yet
        may format them (each node refuses after: `LocalKafka.may_format`)."""
        quorum = self._quorum()
        fresh = not any(n.formatted for n in self.nodes)
        for n in self.nodes:
            n.quorum = quorum
            n.may_format = n.may_format and fresh

    def start(self, timeout: float = 120.0, stop: threading.Event | None = None) -> \
            LocalKafkaCluster:
        """Launch every node, then wait until each answers and names all of them as live
        brokers (or `stop` is set). A node that fails stops the whole cluster and raises
        KafkaLocalError; anything else raised meanwhile (Ctrl-C,
        `onewindow.stopping.Stopped`) stops it too before it goes on."""
        try:
            self.launch()
            self.wait_ready(timeout, stop=stop)
        except BaseException:
            self.stop()
            raise
        return self

    def launch(self) -> None:
        """Launch every node that does not run (no wait), side by side: formatting a
        node is a JVM of its own (2 s or more on a busy machine)."""
        self._prepare()
        ensure_jars(self.version, self.cache_dir)
        if self.secured:
            self.credentials.ensure(ADMIN)  # once, before the nodes read it
        if self.security == "SASL_SSL":
            self.nodes[0]._ensure_tls()
        todo = [n for n in self.nodes if n.proc is None or n.proc.poll() is not None]
        with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
            for future in [pool.submit(n.launch) for n in todo]:
                future.result()
        for n in self.nodes:
            n.may_format = False

    def wait_ready(self, timeout: float, stop: threading.Event | None = None) -> None:
        """Until every running node answers and names all nodes as live brokers."""
        deadline = time.monotonic() + timeout
        for n in self.nodes:
            if n.proc is not None:
                n.wait_ready(max(1.0, deadline - time.monotonic()), stop=stop,
                             brokers=self.size)

    def start_node(self, node_id: int, timeout: float = 90.0,
                   stop: threading.Event | None = None) -> LocalKafka:
        """Start node `node_id` again (after `kill`/`stop_node`) on its data and ports, and
        wait until it answers and the cluster names every node live again (it recovers
        its logs first; its replicas catch up after: `wait_in_sync`)."""
        node = self.node(node_id)
        if node.quorum is None:
            self._prepare()
        node.launch()
        node.wait_ready(timeout, stop=stop, brokers=self.size)
        return node

    def kill(self, node_id: int) -> None:
        """SIGKILL node `node_id` (a machine losing power); returns once it is gone."""
        self.node(node_id).kill()

    def stop_node(self, node_id: int, timeout: float = 30.0) -> None:
        """A controlled shutdown of node `node_id` (SIGTERM: its leaderships move first)."""
        self.node(node_id).stop(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to every node at once (a controlled shutdown of a whole cluster
        waits for nothing but its own logs), then each waited for (SIGKILL after
        `timeout`)."""
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                os.killpg(n.proc.pid, signal.SIGTERM)
        for n in self.nodes:
            n.stop(timeout)

    def __enter__(self) -> LocalKafkaCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- partitions


def partition_leaders(admin_conf: dict[str, Any], topics: Iterable[str],
                      timeout: float = 10.0) -> dict[tuple[str, int], int]:
    """The leader (node id; -1: none) of every partition of `topics`, from a metadata
    request with `admin_conf` (librdkafka settings). Raises KafkaLocalError for a topic
    the cluster does not know."""
    admin = AdminClient({**admin_conf, "log_level": 0, "logger": _quiet_logger()})
    md = admin.list_topics(timeout=timeout)
    out: dict[tuple[str, int], int] = {}
    for name in topics:
        t = md.topics.get(name)
        if t is None or t.error is not None:
            raise KafkaLocalError(f"topic {name}: {t.error if t is not None else 'unknown'}")
        out.update({(name, p.id): p.leader for p in t.partitions.values()})
    return out


def leader_of_most(admin_conf: dict[str, Any], topics: Iterable[str],
                   timeout: float = 10.0) -> int:
    """The node that leads the most partitions of `topics` (the lowest id on a tie): the
    broker whose loss moves the most leaderships. Raises KafkaLocalError when no
    partition has a leader."""
    counts = Counter(leader for leader in partition_leaders(admin_conf, topics, timeout).values()
                     if leader >= 0)
    if not counts:
        raise KafkaLocalError("no partition of those topics has a leader")
    return min(counts, key=lambda node: (-counts[node], node))


def wait_in_sync(admin_conf: dict[str, Any], topics: Iterable[str], timeout: float = 90.0,
                 stop: threading.Event | None = None) -> None:
    """Until every partition of `topics` has a leader and all its replicas in sync (a
    restarted broker has caught up), or `stop` is set. Raises KafkaLocalError after
    `timeout` seconds, naming a partition that is not."""
    names = list(topics)
    admin = AdminClient({**admin_conf, "log_level": 0, "logger": _quiet_logger()})
    deadline = time.monotonic() + timeout
    behind = "no metadata"
    while time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            return
        try:
            md = admin.list_topics(timeout=5)
            behind = ""
            for name in names:
                t = md.topics.get(name)
                if t is None or t.error is not None:
                    behind = f"{name}: {t.error if t is not None else 'unknown'}"
                    break
                lagging = [p for p in t.partitions.values()
                           if p.leader < 0 or set(p.isrs) != set(p.replicas)]
                if lagging:
                    p = lagging[0]
                    behind = (f"{name}[{p.id}] leader {p.leader}, replicas {p.replicas}, "
                              f"in sync {p.isrs}")
                    break
            if not behind:
                return
        except Exception as exc:  # noqa: BLE001 - a broker away: keep asking until the deadline
            behind = str(exc)
        time.sleep(0.5)
    raise KafkaLocalError(f"not all replicas in sync within {timeout:.0f}s: {behind}")
