"""docker-compose.cluster.yml, the three-broker profile laid over docker-compose.yml,
checked without a Docker engine: merged as compose merges an override file, it has three
Kafka nodes of one quorum, each secured by the same script, and every onewindow service
reaches all three with replication factor 3. (The script itself runs as three real nodes
in tests/integration/test_compose_kafka.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from onewindow.config import Settings
from onewindow.topics import replication_for
from tests import REPO_ROOT
from tests.unit.ops.test_compose import (
    COMPOSE,
    ONEWINDOW_SERVICES,
    SECRETS,
    _settings_kwargs,
    env_of,
)

CLUSTER = REPO_ROOT / "docker-compose.cluster.yml"
NODES = ("kafka", "kafka-2", "kafka-3")
#: what the operator's env file holds for the cluster (kafka-storage.sh random-uuid)
IDS = {"ONEWINDOW_KAFKA_CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qk",
       "ONEWINDOW_KAFKA_DIR_ID_1": "pbvuBlaTTwKRxS5NLJwRFQ",
       "ONEWINDOW_KAFKA_DIR_ID_2": "ACiMCq5JSBiTUk6pnT0vEQ",
       "ONEWINDOW_KAFKA_DIR_ID_3": "xc6uS5y0SEuOfLyXfVfU-A"}
ENV = {**SECRETS, **IDS}


def merge(base: Any, over: Any) -> Any:
    """Compose's merge of an override file, as far as these files need it: mappings
    merged key by key, sequences extended (without repeats), scalars replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    if isinstance(base, list) and isinstance(over, list):
        return base + [v for v in over if v not in base]
    return over


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    return merge(yaml.safe_load(COMPOSE.read_text()), yaml.safe_load(CLUSTER.read_text()))


def test_three_nodes_of_one_quorum_each_secured_by_the_script(merged: dict[str, Any]) -> None:
    services = merged["services"]
    base = yaml.safe_load(COMPOSE.read_text())["services"]["kafka"]
    envs = {name: env_of(services[name], ENV) for name in NODES}
    data_volumes = set()
    for name in NODES:
        svc = services[name]
        assert svc["image"] == base["image"] and svc["entrypoint"] == base["entrypoint"]
        assert "./ops/kafka/start-secured.sh:/etc/onewindow/start-secured.sh:ro" in svc["volumes"]
        assert svc["secrets"] == ["kafka-admin"]
        assert envs[name]["KAFKA_ADMIN_PASSWORD_FILE"] == "/run/secrets/kafka-admin"
        assert envs[name]["KAFKA_ADVERTISED_HOST"] == name  # how the others reach it
        assert "healthcheck" in svc and svc["restart"] == "unless-stopped"
        (data,) = [v.split(":")[0] for v in svc["volumes"]
                   if v.split(":")[1] == envs[name]["KAFKA_DATA_DIR"]]
        assert data in merged["volumes"]
        data_volumes.add(data)
    assert len(data_volumes) == 3  # each node its own log
    assert sorted(e["KAFKA_NODE_ID"] for e in envs.values()) == ["1", "2", "3"]
    voters = {e["KAFKA_INITIAL_CONTROLLERS"] for e in envs.values()}
    assert len(voters) == 1  # the same on every node, as StorageTool requires
    expected = ",".join(f"{envs[n]['KAFKA_NODE_ID']}@{n}:9093:"
                        f"{IDS['ONEWINDOW_KAFKA_DIR_ID_' + envs[n]['KAFKA_NODE_ID']]}"
                        for n in NODES)
    assert voters == {expected}
    assert {e["KAFKA_CLUSTER_ID"] for e in envs.values()} == {IDS["ONEWINDOW_KAFKA_CLUSTER_ID"]}
    for entry in expected.split(","):  # the form the script accepts
        assert re.fullmatch(r"[0-9]+@[^:@]+:[0-9]+:[A-Za-z0-9_-]{22}", entry)


def test_the_cluster_ids_come_from_the_env_file(merged: dict[str, Any]) -> None:
    for missing in IDS:
        with pytest.raises(KeyError, match=missing):
            env_of(merged["services"]["kafka-2"], {k: v for k, v in ENV.items() if k != missing})


@pytest.mark.parametrize("name", ONEWINDOW_SERVICES)
def test_every_onewindow_service_reaches_all_three_with_replication_3(
        merged: dict[str, Any], name: str) -> None:
    s = Settings(**_settings_kwargs(env_of(merged["services"][name], ENV)))
    hosts = [hp.split(":") for hp in s.kafka_bootstrap.split(",")]
    assert sorted(h for h, _ in hosts) == sorted(NODES)
    assert {p for _, p in hosts} == {"9092"}
    assert s.replication_factor == replication_for(len(NODES)) == 3
    assert s.kafka_security_protocol == "SASL_PLAINTEXT"


def test_provision_waits_for_every_node(merged: dict[str, Any]) -> None:
    deps = merged["services"]["provision"]["depends_on"]
    for name in NODES:
        assert deps[name] == {"condition": "service_healthy"}, name
