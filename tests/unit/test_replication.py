"""How many copies a topic gets and how many must acknowledge (onewindow.topics), and the
local cluster's layout (onewindow.kafka_local): ports, quorum, each node's settings, its
identity file. No JVM is started here (tests/integration/test_kafka_cluster.py does)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from onewindow.kafka_local import (
    KafkaLocalError,
    LocalKafka,
    LocalKafkaCluster,
    Quorum,
    Voter,
    cluster_ports,
)
from onewindow.provision import plan
from onewindow.topics import (
    Topics,
    durability_config,
    min_insync_for,
    replication_for,
)


def test_replication_is_three_at_most_and_two_must_acknowledge_from_three() -> None:
    assert [replication_for(n) for n in (1, 2, 3, 4, 7)] == [1, 2, 3, 3, 3]
    assert [min_insync_for(rf) for rf in (1, 2, 3, 5)] == [1, 1, 2, 2]
    assert durability_config(3) == {"min.insync.replicas": "2",
                                    "unclean.leader.election.enable": "false"}
    assert durability_config(1)["min.insync.replicas"] == "1"
    for bad in (0, -1):
        with pytest.raises(ValueError, match="at least 1"):
            replication_for(bad)
        with pytest.raises(ValueError, match="at least 1"):
            min_insync_for(bad)


def test_a_topic_plan_config_never_overrides_durability() -> None:
    """ensure_topics lays each plan's own settings over durability_config: none of them
    may set the durability keys (else a compacted topic could lose min ISR)."""
    for t in plan(Topics("p."), ["gaj", "swj"], 6):
        assert not set(t.config) & set(durability_config(3)), t.name


def test_cluster_ports_count_up_in_pairs_and_refuse_overlaps() -> None:
    assert cluster_ports(19092, 19093, 3) == [(19092, 19093), (19094, 19095), (19096, 19097)]
    assert cluster_ports(19092, 19093, 1) == [(19092, 19093)]
    with pytest.raises(KafkaLocalError, match="overlap"):
        cluster_ports(19092, 19094, 3)  # node 2's client port would be node 1's controller
    with pytest.raises(KafkaLocalError, match="at least one"):
        cluster_ports(19092, 19093, 0)


def test_the_quorum_strings_name_every_voter() -> None:
    q = Quorum("cid", (Voter(1, 9093, "A" * 22), Voter(2, 9095, "B" * 22)))
    assert q.bootstrap_servers == "127.0.0.1:9093,127.0.0.1:9095"
    assert q.initial_controllers == f"1@127.0.0.1:9093:{'A' * 22},2@127.0.0.1:9095:{'B' * 22}"


def _props(node: LocalKafka) -> dict[str, str]:
    text = node._properties()
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_each_node_of_three_replicates_everything_three_times(tmp_path: Path) -> None:
    cluster = LocalKafkaCluster(data_dir=tmp_path / "c", ports=cluster_ports(30092, 30093, 3))
    cluster._prepare()
    assert cluster.bootstrap == "127.0.0.1:30092,127.0.0.1:30094,127.0.0.1:30096"
    assert cluster.replication == 3
    for node in cluster.nodes:
        p = _props(node)
        assert p["node.id"] == str(node.node_id)
        assert p["process.roles"] == "broker,controller"
        assert p["controller.quorum.bootstrap.servers"] == \
            "127.0.0.1:30093,127.0.0.1:30095,127.0.0.1:30097"
        for key in ("default.replication.factor", "offsets.topic.replication.factor",
                    "transaction.state.log.replication.factor"):
            assert p[key] == "3", key
        assert p["min.insync.replicas"] == p["transaction.state.log.min.isr"] == "2"
        assert p["unclean.leader.election.enable"] == "false"
        # secured as the single broker: SCRAM between brokers, PLAIN between controllers
        assert p["inter.broker.listener.name"] == "CLIENT"
        assert p["listener.security.protocol.map"] == "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
        assert p["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
        assert p["sasl.mechanism.controller.protocol"] == "PLAIN"
        assert p["allow.everyone.if.no.acl.found"] == "false"
        assert p["super.users"] == "User:admin"
        assert node.tls == tmp_path / "c" / "tls"  # one CA for every node
    # every node signs in with the one admin password
    passwords = {_props(n)["listener.name.client.scram-sha-512.sasl.jaas.config"]
                 for n in cluster.nodes}
    assert len(passwords) == 1


def test_a_single_broker_keeps_one_copy(tmp_path: Path) -> None:
    p = _props(LocalKafka(data_dir=tmp_path / "k", port=30192, controller_port=30193))
    assert p["node.id"] == "1" and p["controller.quorum.bootstrap.servers"] == "127.0.0.1:30193"
    assert p["offsets.topic.replication.factor"] == p["min.insync.replicas"] == "1"


def test_the_cluster_identity_is_kept_private_and_its_controller_ports_fixed(
        tmp_path: Path) -> None:
    root = tmp_path / "c"
    first = LocalKafkaCluster(data_dir=root, ports=cluster_ports(30092, 30093, 3))
    first._prepare()
    doc = json.loads((root / "cluster.json").read_text())
    assert stat.S_IMODE((root / "cluster.json").stat().st_mode) == 0o600
    assert [v["controller_port"] for v in doc["voters"]] == [30093, 30095, 30097]
    assert len({v["directory_id"] for v in doc["voters"]}) == 3
    again = LocalKafkaCluster(data_dir=root, ports=cluster_ports(31092, 30093, 3))
    again._prepare()  # client ports may move; the quorum is the same
    assert again.nodes[0].quorum == first.nodes[0].quorum
    moved = LocalKafkaCluster(data_dir=root, ports=cluster_ports(30092, 32093, 3))
    with pytest.raises(KafkaLocalError, match="has controllers on ports"):
        moved._prepare()


def test_a_node_that_lost_its_data_is_not_formatted_again(tmp_path: Path) -> None:
    cluster = LocalKafkaCluster(data_dir=tmp_path / "c", ports=cluster_ports(30092, 30093, 3))
    cluster._prepare()
    for n in cluster.nodes[:2]:  # as if formatted by an earlier start; node 3's data gone
        (n.data_dir / "log").mkdir(parents=True)
        (n.data_dir / "log" / "meta.properties").write_text("x")
    cluster._prepare()
    node = cluster.node(3)
    assert not node.may_format
    with pytest.raises(KafkaLocalError, match="lost its data"):
        node.launch()


def test_a_cluster_needs_distinct_ports(tmp_path: Path) -> None:
    with pytest.raises(KafkaLocalError, match="distinct"):
        LocalKafkaCluster(data_dir=tmp_path, ports=[(30092, 30093), (30093, 30094)])
    with pytest.raises(KafkaLocalError, match="no node 4"):
        LocalKafkaCluster(data_dir=tmp_path, ports=cluster_ports(30092, 30093, 3)).node(4)
