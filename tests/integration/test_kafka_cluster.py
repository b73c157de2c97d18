"""The three-node cluster (`onewindow.kafka_local.LocalKafkaCluster`, the `kafka_cluster`
fixture) for real: `onewindow provision` creates every topic with three replicas,
`min.insync.replicas=2` and no unclean leader election, the internal topics follow; the
secured profile holds on every node; an idempotent `acks=all` producer loses nothing
when the broker leading its partitions is SIGKILLed mid-stream and started again; and
provisioning returns only once every node enforces the ACLs it made."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaError as AIOKafkaError
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as TP
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.inputs import INPUT_PRODUCER_CONFIG
from onewindow.kafka_local import (
    LocalKafkaCluster,
    free_port,
    leader_of_most,
    partition_leaders,
    wait_in_sync,
)
from onewindow.provision import (
    Grant,
    acl_plan,
    broker_acls,
    ensure_security,
    plan,
    provision,
    replication_of,
)
from onewindow.security.kafka_auth import (
    ADMIN,
    SINK,
    client_config,
    credential_store,
    department_principal,
    producer_config,
)
from onewindow.topics import Topics
from tests.integration.cluster_drills import wait_until
from tests.kafka_support import cluster_settings

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

PARTITIONS = 6
#: records acknowledged before the kill, then after it (with one broker down)
BEFORE, AFTER = 300, 300
#: generous: a SIGKILLed leader is fenced after broker.session.timeout.ms (9 s), longer
#: under load
WAIT = 120.0


def _configs(admin: AdminClient, rtype: ResourceType, name: str) -> dict[str, str]:
    """The configuration of a topic or broker. The broker asked may not know a topic
    created a moment ago (each broker's metadata follows the controller's): asked again."""
    res = ConfigResource(rtype, name)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            entries = admin.describe_configs([res], request_timeout=30)[res].result()
            return {k: v.value for k, v in entries.items()}
        except KafkaException as exc:
            assert time.monotonic() < deadline, f"no configs of {name}: {exc}"
            time.sleep(0.5)


def _replicas(admin: AdminClient, topic: str) -> set[int]:
    """The replica counts of `topic`'s partitions (waits for it to exist)."""
    deadline = time.monotonic() + WAIT
    while True:
        t = admin.list_topics(topic, timeout=10).topics.get(topic)
        if t is not None and t.error is None and t.partitions:
            return {len(p.replicas) for p in t.partitions.values()}
        assert time.monotonic() < deadline, f"{topic} was not created"
        time.sleep(0.5)


def _refusal(conf: dict[str, Any]) -> KafkaError:
    """The first error a client with `conf` is told when it asks for metadata (fails
    if it is answered instead)."""
    errors: list[KafkaError] = []
    client = AdminClient({**conf, "error_cb": errors.append, "socket.timeout.ms": 3000})
    deadline = time.monotonic() + 60
    while not errors:
        with pytest.raises(KafkaException):
            client.list_topics(timeout=1)
        client.poll(0.1)  # serves error_cb
        assert time.monotonic() < deadline, "no error within 60s"
    return errors[0]


def _read_all(conf: dict[str, Any], topic: str, group: str) -> dict[int, list[bytes]]:
    """Every record of `topic`, per partition in offset order (read_committed), then
    the offsets committed under `group` (which creates the offsets topic)."""
    consumer = Consumer({**conf, "group.id": group, "enable.auto.commit": False})
    try:
        md = consumer.list_topics(topic, timeout=30).topics[topic]
        ends = {p: consumer.get_watermark_offsets(TP(topic, p), timeout=30)[1]
                for p in md.partitions}
        consumer.assign([TP(topic, p, OFFSET_BEGINNING) for p in ends])
        out: dict[int, list[bytes]] = defaultdict(list)
        position = dict.fromkeys(ends, 0)
        deadline = time.monotonic() + WAIT
        while any(position[p] < ends[p] for p in ends):
            assert time.monotonic() < deadline, f"read {position} of {ends}"
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out[msg.partition()].append(msg.value())
            position[msg.partition()] = msg.offset() + 1
        consumer.commit(offsets=[TP(topic, p, position[p]) for p in ends], asynchronous=False)
        return out
    finally:
        consumer.close()


def test_three_brokers_replicate_stay_secured_and_survive_the_leader_killed(
        kafka_cluster: LocalKafkaCluster, topic_prefix: str) -> None:
    cluster = kafka_cluster
    s = cluster_settings(cluster, topic_prefix=topic_prefix, partitions=PARTITIONS)
    assert s.replication_factor == 3
    codes = sorted(load_registry().codes)
    provision(s, codes)
    topics = Topics(topic_prefix)
    admin_conf = producer_config(s, ADMIN)
    admin = AdminClient(admin_conf)

    # every topic of the stack: three copies, two acknowledgements, no unclean election
    for t in plan(topics, codes, PARTITIONS):
        assert _replicas(admin, t.name) == {3}, t.name
        conf = _configs(admin, ResourceType.TOPIC, t.name)
        assert conf["min.insync.replicas"] == "2", t.name
        assert conf["unclean.leader.election.enable"] == "false", t.name
    # ... and the internal topics' defaults, on each node
    for node in cluster.nodes:
        conf = _configs(admin, ResourceType.BROKER, str(node.node_id))
        assert conf["offsets.topic.replication.factor"] == "3"
        assert conf["transaction.state.log.replication.factor"] == "3"
        assert conf["transaction.state.log.min.isr"] == "2"
        assert conf["default.replication.factor"] == "3"
        assert conf["min.insync.replicas"] == "2"
        assert conf["unclean.leader.election.enable"] == "false"

    # the secured profile on every node: no anonymous client, no wrong password; a
    # principal signs in through any node alone
    dept, other = codes[0], codes[1]
    for node in cluster.nodes:
        anonymous = _refusal({"bootstrap.servers": node.bootstrap})  # it hangs up on them
        assert anonymous.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT)
        wrong = _refusal({**producer_config(s, department_principal(dept)),
                          "bootstrap.servers": node.bootstrap, "sasl.password": "wrong"})
        assert wrong.code() == KafkaError._AUTHENTICATION, wrong
        signed_in = AdminClient({**producer_config(s, department_principal(dept)),
                                 "bootstrap.servers": node.bootstrap})
        deadline = time.monotonic() + WAIT
        while True:  # (a broker learns of a topic created a moment ago a moment later)
            seen = {n for n in signed_in.list_topics(timeout=30).topics
                    if n.startswith(topic_prefix)}
            if seen or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert seen == {topics.input(dept)}  # it may describe its own topic only
    # the ACLs hold on every node: the sink (READ on the outputs, no WRITE) sends one record
    # to each partition of an output topic, whose leaders are all three nodes; each refuses
    leaders = partition_leaders(admin_conf, [topics.case_state])
    assert set(leaders.values()) == {1, 2, 3}
    sink = Producer({**producer_config(s, SINK), "message.timeout.ms": 30000})
    answers: dict[int, str] = {}
    deadline = time.monotonic() + WAIT
    while len(answers) < PARTITIONS:  # a partition its metadata lacks yet is asked again
        for (_, p) in leaders:
            if p not in answers:
                sink.produce(topics.case_state, b"x", b"k", partition=p,
                             on_delivery=lambda err, m: answers.__setitem__(
                                 m.partition(), err.name() if err else "ok"))
        assert sink.flush(60) == 0
        for p in [p for p, a in answers.items() if a == "_UNKNOWN_PARTITION"]:
            del answers[p]
        assert time.monotonic() < deadline, answers
        time.sleep(0.2 if len(answers) < PARTITIONS else 0)
    assert set(answers.values()) == {"TOPIC_AUTHORIZATION_FAILED"}, answers
    # a department cannot write another's topic
    intruder = Producer({**producer_config(s, department_principal(dept)),
                         **INPUT_PRODUCER_CONFIG, "message.timeout.ms": 30000})
    denied: list[Any] = []
    intruder.produce(topics.input(other), b"x", b"k",
                     on_delivery=lambda err, _m: denied.append(err))
    intruder.flush(60)
    assert denied and denied[0] is not None
    assert denied[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    # a transaction as the department (its markers go between brokers as `admin`)
    topic = topics.input(dept)
    txn = Producer({**producer_config(s, department_principal(dept)), **INPUT_PRODUCER_CONFIG,
                    "transactional.id": f"{topic_prefix}{department_principal(dept)}-check"})
    txn.init_transactions(WAIT)
    txn.begin_transaction()
    txn.produce(topic, b"txn", b"case-txn")
    txn.commit_transaction(WAIT)
    assert _replicas(admin, "__transaction_state") == {3}

    # acks=all with idempotence while the leader of the most partitions is SIGKILLed
    victim = leader_of_most(admin_conf, [topic])
    acked: list[int] = []
    failed: list[str] = []
    sent = 0
    producer = Producer({**producer_config(s, department_principal(dept)),
                         **INPUT_PRODUCER_CONFIG})
    assert INPUT_PRODUCER_CONFIG["acks"] == "all" and INPUT_PRODUCER_CONFIG["enable.idempotence"]

    def delivered(err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            failed.append(err.str())
        else:
            acked.append(int(msg.value()))

    stop = threading.Event()

    def produce() -> None:
        nonlocal sent
        while not stop.is_set():
            for _ in range(20):
                producer.produce(topic, str(sent).encode(), f"case-{sent % 37}".encode(),
                                 on_delivery=delivered)
                sent += 1
            producer.poll(0.05)

    def wait_for(what: str, ok: Any) -> None:
        deadline = time.monotonic() + WAIT
        while not ok():
            assert not failed, failed[:3]
            assert time.monotonic() < deadline, f"{what}: {len(acked)} acknowledged of {sent}"
            time.sleep(0.2)

    thread = threading.Thread(target=produce, name="produce", daemon=True)
    thread.start()
    try:
        wait_for("before the kill", lambda: len(acked) >= BEFORE)
        killed_at = sent
        cluster.kill(victim)
        # writes go on with two of three copies in sync (min.insync.replicas=2)
        wait_for("with a broker down", lambda: sum(v >= killed_at for v in acked) >= AFTER)
    finally:
        stop.set()
        thread.join(30)
    assert producer.flush(WAIT) == 0
    assert not failed, failed[:3]
    assert victim not in cluster.running()
    deadline = time.monotonic() + WAIT  # every broker's metadata names the new leaders
    while victim in partition_leaders(admin_conf, [topic]).values():
        assert time.monotonic() < deadline, "the dead broker still leads"
        time.sleep(0.5)

    cluster.start_node(victim)
    wait_in_sync(admin_conf, [topic], timeout=WAIT)
    records = _read_all(client_config(s, ADMIN), topic, f"{topic_prefix}check")
    values = [v for part in records.values() for v in part]
    assert values.count(b"txn") == 1
    seqs = [int(v) for v in values if v != b"txn"]
    assert sorted(seqs) == sorted(acked) == list(range(sent))  # none lost, none twice
    for part in records.values():  # each case's records in the order sent
        by_key: dict[int, list[int]] = defaultdict(list)
        for v in part:
            if v != b"txn":
                by_key[int(v) % 37].append(int(v))
        assert all(vs == sorted(vs) for vs in by_key.values())
    assert _replicas(admin, "__consumer_offsets") == {3}


def _acls(address: str, conf: dict[str, Any]) -> frozenset[Grant]:
    """The ACLs the node at `address` enforces, asked itself (none while it does not
    answer)."""
    try:
        return asyncio.run(broker_acls(address, conf))
    except (OSError, AIOKafkaError):  # TimeoutError is an OSError
        return frozenset()


def test_provisioning_returns_once_every_broker_enforces_the_acls(
        kafka_cluster: LocalKafkaCluster, topic_prefix: str) -> None:
    """Issue 17: a drill's department producer, started right after provisioning, was
    answered TOPIC_AUTHORIZATION_FAILED by a node that had not yet applied the ACLs just
    created (each node applies the metadata log on its own). Provisioning now returns
    only once every node a client can reach, asked itself, enforces them.

    Node 3 is stopped (SIGSTOP: it accepts connections, answers nothing and applies
    nothing), and provisioning starts once the others have fenced it (so that librdkafka,
    which sends admin requests to a random live broker, does not pick it). The two other
    nodes come to enforce the new prefix's ACLs, which is all provisioning used to wait
    for, and it must still wait; once node 3 runs again it returns, and node 3 then
    enforces them and lets the department describe its topic. (A slow machine can only
    delay the return, never make it early: the check cannot fail for slowness.)"""
    cluster = kafka_cluster
    s = cluster_settings(cluster, topic_prefix=topic_prefix)
    conf = producer_config(s, ADMIN)
    codes = sorted(load_registry().codes)
    topics = Topics(topic_prefix)
    wanted = set(acl_plan(topics, codes))
    paused = cluster.node(3)
    assert paused.proc is not None
    others = [n.bootstrap for n in cluster.nodes if n is not paused]
    watch = AdminClient({**conf, "bootstrap.servers": ",".join(others)})
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def provision_acls() -> None:
        try:
            outcome["report"] = ensure_security(conf, topics, codes, credential_store(s),
                                                timeout=WAIT)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            outcome["error"] = exc
        finally:
            done.set()

    os.kill(paused.proc.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: 3 not in watch.list_topics(timeout=10).brokers,
                   "the other nodes to fence node 3")
        threading.Thread(target=provision_acls, name="provision", daemon=True).start()
        wait_until(lambda: done.is_set() or all(wanted <= _acls(a, conf) for a in others),
                   "the two running nodes to enforce the new ACLs")
        assert not done.wait(5.0), \
            f"provisioning returned while node 3 lacked the ACLs: {outcome}"
    finally:
        os.kill(paused.proc.pid, signal.SIGCONT)
    assert done.wait(WAIT), "provisioning did not return once node 3 ran again"
    assert "error" not in outcome, outcome["error"]
    assert outcome["report"].acls_created == len(wanted)
    assert wanted <= _acls(paused.bootstrap, conf)
    # the department, through node 3 alone, may describe its topic (not created here:
    # unknown, not refused)
    dept = Producer({**producer_config(s, department_principal(codes[0])),
                     "bootstrap.servers": paused.bootstrap})
    got = dept.list_topics(topics.input(codes[0]), timeout=30).topics[topics.input(codes[0])]
    assert got.error is not None and got.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, \
        got.error


def test_without_a_replication_factor_set_a_generation_gets_a_copy_on_three_brokers(
        kafka_cluster: LocalKafkaCluster, topic_prefix: str) -> None:
    """`onewindow provision` on a cluster, ONEWINDOW_REPLICATION_FACTOR unset: min(3,
    live brokers) copies, as `up --brokers 3` sets (a newcomer provisioning a new
    generation by the growing procedure got one copy a partition); set, it wins."""
    s = cluster_settings(kafka_cluster, topic_prefix=topic_prefix, partitions=PARTITIONS)
    values = {**s.model_dump(), "replication_factor": 1}
    unset = Settings.model_construct(s.model_fields_set - {"replication_factor"}, **values)
    conf = producer_config(s, ADMIN)
    # all three live first: the test before pauses node 3, which registers again a
    # moment after it runs (min(3, live brokers) is 2 meanwhile, as it should be)
    deadline = time.monotonic() + WAIT
    while len(AdminClient(dict(conf)).list_topics(timeout=10).brokers) < 3:
        assert time.monotonic() < deadline, "node 3 did not register again"
        time.sleep(0.5)
    assert replication_of(unset, conf) == 3
    assert replication_of(Settings.model_construct(s.model_fields_set, **values), conf) == 1


def test_a_worker_declares_its_topic_while_the_broker_it_asks_first_is_down(
        kafka_cluster: LocalKafkaCluster, topic_prefix: str, tmp_path: Path) -> None:
    """Issue 17, the broker drill: a worker started while one node of three was down died
    at start-up. Faust declares a topic (its leader topic, at every start) through the
    first broker its client's metadata lists and gave up on the first error (aiokafka's
    NodeNotReadyError), though two nodes could serve it. The worker's transport asks
    again, with fresh metadata, until the dead node is fenced and left out of it."""
    from stream_apps.faust_base import new_app  # noqa: PLC0415 - Faust only here

    s = cluster_settings(kafka_cluster, topic_prefix=topic_prefix, data_dir=tmp_path)
    provision(s, sorted(load_registry().codes))
    topics = Topics(topic_prefix)
    app = new_app(s, app_id=topics.case_state_app, worker_name="declare",
                  web_port=free_port(), batch_max=10)
    name = f"{topics.case_state_app}-declared"  # new: its declaration asks the controller

    async def declare() -> int:
        producer = app.producer
        await producer.start()
        try:
            client = producer._ensure_producer().client  # noqa: SLF001
            await client.force_metadata_update()
            assert len(client.cluster.brokers()) == 3
            first = next(iter(client.cluster.brokers())).nodeId
            kafka_cluster.kill(first)  # the node Faust asks first
            # two copies: what two live nodes can hold
            await producer.create_topic(name, partitions=1, replication=2)
            return first
        finally:
            await producer.stop()

    killed = asyncio.run(declare())
    assert killed not in kafka_cluster.running()
    admin = AdminClient(producer_config(s, ADMIN))
    # each node applies the creation on its own, a moment after the controller
    wait_until(lambda: admin.list_topics(name, timeout=10).topics[name].error is None,
               f"{name} listed")
    assert len(admin.list_topics(name, timeout=10).topics[name].partitions[0].replicas) == 2
