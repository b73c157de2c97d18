"""Fixtures shared by every tier. Integration tests get one real Kafka broker per test
session, started by the project's own code from the Apache jars (never a mock)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from onewindow.config import Settings, get_settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafka, LocalKafkaCluster, free_port
from onewindow.provision import provision
from onewindow.topics import Topics
from onewindow_cli.local_postgres import LocalPostgres, create_database, drop_database
from tests.examples import RESTAURANT_EVENTS
from tests.keycloak_support import KeycloakError, LocalKeycloak

SESSION_ENV = ("ONEWINDOW_KAFKA_CREDENTIALS_DIR", "ONEWINDOW_KAFKA_SECURITY_PROTOCOL")


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real, secured broker (SASL/SCRAM, ACLs): a fresh local KRaft
    broker for this test session, or ONEWINDOW_TEST_KAFKA_BOOTSTRAP if set (a broker you
    run yourself, with ONEWINDOW_KAFKA_CREDENTIALS_DIR holding its `admin` password).

    For the session, ONEWINDOW_KAFKA_CREDENTIALS_DIR names the broker's credentials
    directory, so `Settings()` here and in every child process the tests start signs in
    with the principals' passwords (tests/kafka_support.py)."""
    external = os.environ.get("ONEWINDOW_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    root = tmp_path_factory.mktemp("kafka")
    broker = LocalKafka(data_dir=root / "broker", port=free_port(), controller_port=free_port(),
                        cache_dir=get_settings().cache_dir, credentials_dir=root / "credentials")
    broker.start()
    saved = {k: os.environ.get(k) for k in SESSION_ENV}
    os.environ["ONEWINDOW_KAFKA_CREDENTIALS_DIR"] = str(root / "credentials")
    os.environ["ONEWINDOW_KAFKA_SECURITY_PROTOCOL"] = broker.security
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def _kafka_cluster_session(tmp_path_factory: pytest.TempPathFactory) -> \
        Iterator[LocalKafkaCluster]:
    """The session's three-node cluster, started on first use only (the `kafka_cluster`
    fixture)."""
    root = tmp_path_factory.mktemp("kafka-cluster")
    cluster = LocalKafkaCluster(data_dir=root / "cluster",
                                ports=[(free_port(), free_port()) for _ in range(3)],
                                cache_dir=get_settings().cache_dir)
    cluster.start()
    try:
        yield cluster
    finally:
        for node in cluster.nodes:  # its data goes with the session: no clean stop
            node.kill()            # (a whole cluster's takes about 6 s)


@pytest.fixture
def kafka_cluster(_kafka_cluster_session: LocalKafkaCluster) -> LocalKafkaCluster:
    """A real, secured three-node KRaft cluster (three combined broker+controller nodes,
    `onewindow.kafka_local.LocalKafkaCluster`), one per test session, separate from the
    session's single broker (`kafka`): only the cluster tests (marker `cluster`) start it.
    Every node runs when a test begins (one an earlier test killed is started again).
    Reach it with `tests.kafka_support.cluster_settings`: it has its own credentials."""
    cluster = _kafka_cluster_session
    for node_id in range(1, cluster.size + 1):
        if node_id not in cluster.running():
            cluster.start_node(node_id)
    return cluster


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKeycloak]:
    """A real Keycloak for this test session (tests/keycloak_support.py): dev mode on
    127.0.0.1, realm `onewindow` imported from tests/fixtures/keycloak/. Started only when
    a test asks for it; no Java 21+ or a failed download fails that test, never skips it."""
    kc = LocalKeycloak(work_dir=tmp_path_factory.mktemp("keycloak"),
                       cache_dir=get_settings().cache_dir)
    problem = None
    try:
        kc.start()
    except KeycloakError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(f"Keycloak: {problem}", pytrace=False)
    try:
        yield kc
    finally:
        kc.stop()


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """The root logger's handlers and level as they were before the test. A command run
    in-process (`onewindow_cli.cli.main`) installs its handler on the stream of the moment
    (`onewindow.logs.configure_logging`), in a test pytest's captured stderr, closed when
    that test ends; a later test's librdkafka lines reaching that handler would print
    "--- Logging error ---" into its output (seen when the order of tests changed)."""
    import logging  # noqa: PLC0415 - only this fixture

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def no_broker() -> Iterator[str]:
    """A loopback address where nothing answers, for as long as the test runs: a port
    bound and never listened on (a connection is refused), held so that no other process
    of the run (a broker or a server of a parallel test worker) can take it, as a port
    that was merely free when asked for could be."""
    import socket  # noqa: PLC0415 - only this fixture

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def topic_prefix() -> str:
    """A unique topic prefix so tests sharing the broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def provisioned(kafka: str, topic_prefix: str):  # type: ignore[no-untyped-def]
    """All topics of the stack under this test's own prefix, with its principals and ACLs
    (onewindow.provision, as `onewindow up` does)."""
    provision(Settings(kafka_bootstrap=kafka, topic_prefix=topic_prefix, partitions=3),
              load_registry().codes)
    return Topics(topic_prefix)


@pytest.fixture(scope="session")
def example_events_path() -> Path:
    return RESTAURANT_EVENTS


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a real PostgreSQL server (its `postgres` database): ONEWINDOW_TEST_POSTGRES_URL
    if set (a role that may CREATE DATABASE), else a throwaway cluster for this session
    (onewindow_cli.local_postgres, as the benchmarks start one: the binaries of
    ONEWINDOW_TEST_PG_BIN or /usr/lib/postgresql, run as the `postgres` OS user when the
    tests run as root)."""
    external = os.environ.get("ONEWINDOW_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    pg = LocalPostgres()
    try:
        yield pg.start()
    finally:
        pg.stop()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL for one test; dropped after."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres_server, name)
    yield url
    drop_database(postgres_server, name)
