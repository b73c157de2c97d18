"""Clients of the test broker, each signed in as a principal (onewindow.security.kafka_auth).

Positive tests read and check with `admin` (the broker's own principal, a super user);
negative tests sign in as the principal under test, never as `admin`."""

from __future__ import annotations

from typing import Any

from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafkaCluster
from onewindow.security.kafka_auth import (
    ADMIN,
    client_config,
    department_principal,
    producer_config,
)
from onewindow.topics import Topics
from producers.publisher import DepartmentPublishers


def settings_for(kafka: str, **extra: Any) -> Settings:
    """Settings that reach the test broker (credentials from the session's environment)."""
    return Settings(kafka_bootstrap=kafka, **extra)


def consumer_conf(kafka: str, principal: str = ADMIN, **extra: Any) -> dict[str, Any]:
    """librdkafka consumer settings signed in as `principal` (read_committed)."""
    return {**client_config(settings_for(kafka), principal), **extra}


def department_publishers(kafka: str, topics: Topics) -> DepartmentPublishers:
    """The SDK publishing each event as the department that owns its topic."""
    s = settings_for(kafka)
    return DepartmentPublishers(
        kafka, topics=topics, departments=load_registry().codes, codec=get_codec(),
        config_for=lambda d: producer_config(s, department_principal(d)))


def producer_conf(kafka: str, principal: str = ADMIN, **extra: Any) -> dict[str, Any]:
    """librdkafka producer (or admin client) settings signed in as `principal`."""
    return {**producer_config(settings_for(kafka), principal), **extra}


# --------------------------------------------------------------------------- the cluster
# The three-node cluster of the `kafka_cluster` fixture (tests/conftest.py). Its own
# credentials directory, not the session broker's: every client of it is configured with
# `cluster_settings` (and a child process with `onewindow.security.kafka_auth.kafka_env`
# of those settings). Killing, restarting and finding leaders:
# `LocalKafkaCluster.kill/start_node/stop_node`, `onewindow.kafka_local.leader_of_most`,
# `partition_leaders` and `wait_in_sync` (also what the benchmarks use).


def cluster_settings(cluster: LocalKafkaCluster, **extra: Any) -> Settings:
    """Settings that reach `cluster` as its clients should: every node in the bootstrap,
    its credentials, its replication factor (3 on three nodes)."""
    conf: dict[str, Any] = {"kafka_bootstrap": cluster.bootstrap,
                            "kafka_security_protocol": cluster.security,
                            "kafka_credentials_dir": cluster.credentials_dir,
                            "replication_factor": cluster.replication}
    if cluster.security == "SASL_SSL":
        conf["kafka_ssl_ca_file"] = cluster.ca_file
    return Settings(**{**conf, **extra})
