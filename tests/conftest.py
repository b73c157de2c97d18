"""Fixtures shared by every tier. Integration tests get one real Kafka broker per test
session, started by the project's own code from the Apache jars (never a mock)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from onewindow.config import Settings, get_settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import provision
from onewindow.topics import Topics
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


def _pg_bindir() -> Path:
    """Directory of initdb/pg_ctl: ONEWINDOW_TEST_PG_BIN, the newest
    /usr/lib/postgresql/*/bin, or the PATH."""

    env = os.environ.get("ONEWINDOW_TEST_PG_BIN")
    if env:
        return Path(env)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    if found:
        return found[-1].parent
    which = shutil.which("initdb")
    if which:
        return Path(which).parent
    raise RuntimeError("PostgreSQL binaries not found: install PostgreSQL, set "
                       "ONEWINDOW_TEST_PG_BIN, or ONEWINDOW_TEST_POSTGRES_URL to a server")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a real PostgreSQL server (its `postgres` database): ONEWINDOW_TEST_POSTGRES_URL
    if set (a role that may CREATE DATABASE), else a throwaway cluster for this session,
    run as the `postgres` OS user when the tests run as root."""
    external = os.environ.get("ONEWINDOW_TEST_POSTGRES_URL")
    if external:
        yield external
        return


    bindir = _pg_bindir()
    root = Path(tempfile.mkdtemp(prefix="onewindow-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
        "-E", "UTF8", "--locale=C", "--no-sync")
    opts = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "server.log"),
        "-w", "-t", "60", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL for one test; dropped after."""

    base = make_url(postgres_server)
    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
