"""The worker's Kafka transport on the real broker: after Faust drops records it fetched,
its seek to the committed offsets fetches them again, also where nothing is committed
(issue 13: a record lost in a new group's first rebalance). A real aiokafka consumer in
the worker's group, signed in as the stream principal."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Producer

from onewindow.security.kafka_auth import MECHANISM, STREAM, credential_for
from onewindow.topics import Topics
from stream_apps.faust_transport import seek_to_committed_or_beginning
from tests.kafka_support import producer_conf, settings_for

pytestmark = pytest.mark.integration

RECORDS = 5


def test_a_seek_fetches_dropped_records_again_with_or_without_a_committed_offset(
        kafka: str, provisioned: Topics) -> None:
    agent_topic, other_topic = provisioned.input("gaj"), provisioned.input("mzj")
    producer = Producer(producer_conf(kafka))
    for topic, partition in ((agent_topic, 0), (agent_topic, 1), (other_topic, 0)):
        for i in range(RECORDS):
            producer.produce(topic, b"v%d" % i, b"k", partition=partition)
    assert producer.flush(30) == 0

    position = asyncio.run(_positions_after_drop_and_seek(
        kafka, provisioned.case_state_app, agent_topic, other_topic))

    # nothing committed: from the beginning (aiokafka's seek alone left it at 5: the
    # dropped records were skipped)
    assert position[TopicPartition(agent_topic, 0)] == 0
    # committed 3: from 3, as before
    assert position[TopicPartition(agent_topic, 1)] == 3
    # a topic the caller does not rewind (a changelog): where it was
    assert position[TopicPartition(other_topic, 0)] == RECORDS


async def _positions_after_drop_and_seek(
        kafka: str, group: str, agent_topic: str, other_topic: str) -> dict[TopicPartition, int]:
    """Fetch every record of the three partitions (as Faust does before it drops them),
    seek, and return the offset each partition is fetched from next."""
    settings = settings_for(kafka)
    cred = credential_for(settings, STREAM)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed",
        security_protocol=settings.kafka_security_protocol, sasl_mechanism=MECHANISM,
        sasl_plain_username=cred.principal, sasl_plain_password=cred.password)
    tps = [TopicPartition(agent_topic, 0), TopicPartition(agent_topic, 1),
           TopicPartition(other_topic, 0)]
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.commit({tps[1]: 3})
        await consumer.seek_to_beginning(*tps)
        seen = {tp: 0 for tp in tps}
        for _ in range(60):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                seen[tp] += len(records)
            if all(n >= RECORDS for n in seen.values()):
                break
        assert all(n == RECORDS for n in seen.values()), seen
        # Faust drops what it fetched here, and seeks back
        committed = await seek_to_committed_or_beginning(
            consumer, lambda topic: topic == agent_topic)
        assert committed[tps[0]] is None
        assert committed[tps[1]] == 3
        # the offset each partition is fetched from next
        return {tp: await consumer.position(tp) for tp in tps}
    finally:
        await consumer.stop()
