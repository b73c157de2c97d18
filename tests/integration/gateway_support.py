"""The gateway as a process (`python -m onewindow_cli gateway`) against a real, secured
broker, its key store in SQLite: for tests of what the running server does."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from gateway import key_migrations, keys
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.provision import provision
from onewindow.read_model.engine import make_engine
from onewindow.topics import Topics
from tests.integration.server_support import clean_env, serving


def provisioned_topics(kafka: str, mark: str) -> Topics:
    """Every topic, principal and ACL of the stack under a new prefix ``<mark><8 hex>.``
    on the broker ``kafka`` (as `onewindow provision` makes them)."""
    prefix = f"{mark}{uuid.uuid4().hex[:8]}."
    provision(Settings(kafka_bootstrap=kafka, topic_prefix=prefix, partitions=3),
              load_registry().codes)
    return Topics(prefix)


@dataclass(frozen=True)
class Gateway:
    base: str
    database_url: str
    log: Path
    #: the gateway process's id (its memory: /proc/<pid>/status)
    pid: int = 0

    def key(self, department: str) -> dict[str, str]:
        """The Authorization header of a new key of ``department``."""
        return {"Authorization": f"Bearer {issue_key(self.database_url, department)}"}


def issue_key(database_url: str, department: str) -> str:
    engine = make_engine(database_url, writer=True)
    try:
        key_migrations.upgrade(engine)
        return keys.issue(engine, department, "test", datetime.now(UTC)).key
    finally:
        engine.dispose()


@contextmanager
def gateway_process(tmp: Path, bootstrap: str, prefix: str, *,
                    credentials_dir: str | None = None, **settings: str) -> Iterator[Gateway]:
    """A running gateway on ``bootstrap`` with topic prefix ``prefix``. The credentials
    are the session broker's (ONEWINDOW_KAFKA_CREDENTIALS_DIR, set by the ``kafka``
    fixture) unless ``credentials_dir``; ``settings``: more ONEWINDOW_* variables
    (``GATEWAY_ACK_TIMEOUT_SECONDS="3"``). None of the caller's own."""
    tmp.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{tmp / 'gateway.db'}"
    env = clean_env(DATABASE_URL=db_url, KAFKA_BOOTSTRAP=bootstrap, TOPIC_PREFIX=prefix,
                    DATA_DIR=str(tmp / "data"), KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
                    KAFKA_CREDENTIALS_DIR=credentials_dir
                    or os.environ["ONEWINDOW_KAFKA_CREDENTIALS_DIR"], **settings)
    log = tmp / "gateway.log"
    with serving("gateway", env, log, ready="/openapi.json") as (base, proc):
        yield Gateway(base, db_url, log, proc.pid)


def read_events(conf: dict[str, Any], topic: str) -> list[tuple[int, bytes, dict[str, Any]]]:
    """Every record of ``topic`` up to its end as (partition, key, decoded event); ``conf``
    signs a consumer in (read_committed)."""
    consumer = Consumer({**conf, "group.id": "gateway-test", "enable.auto.commit": False})
    try:
        md = consumer.list_topics(topic, timeout=10)
        ends = {}
        for p in md.topics[topic].partitions:
            lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if hi > lo:
                ends[p] = hi
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        out: list[tuple[int, bytes, dict[str, Any]]] = []
        deadline = time.monotonic() + 60
        while ends and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.5):
                if m.error() is None:
                    out.append((m.partition(), m.key(), get_codec().decode(m.value())))
                    if m.offset() + 1 >= ends.get(m.partition(), 0):
                        ends.pop(m.partition(), None)
        assert not ends, f"partitions not read to their end: {ends}"
        return out
    finally:
        consumer.close()
