"""The worker's Kafka transport on the real broker: after Faust drops records it fetched,
its seek to the committed offsets fetches them again, also where nothing is committed
(issue 13: a record lost in a new group's first rebalance). A real aiokafka consumer in
the worker's group, signed in as the stream principal."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import READ_COMMITTED
from confluent_kafka import Producer

from onewindow.security.kafka_auth import MECHANISM, STREAM, credential_for
from onewindow.topics import Topics
from stream_apps.faust_transport import (
    FETCH_MAX_WAIT_MS,
    FETCH_MIN_BYTES,
    seek_to_committed_or_beginning,
    tune_worker_consumer,
)
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


def test_the_started_fetcher_has_the_workers_isolation_and_fetch_settings(
        kafka: str, provisioned: Topics) -> None:
    """The worker's consumer settings are set on aiokafka's consumer after construction
    (Faust's driver passes its own): its fetcher, made in ``start()``, must have them, or
    an aiokafka upgrade would drop read_committed and the fetch wait without a word."""
    assert provisioned.prefix  # the stream principal's credential exists from here on
    asyncio.run(_started_fetcher_settings(kafka, provisioned))


async def _started_fetcher_settings(kafka: str, topics: Topics) -> None:
    settings = settings_for(kafka)
    cred = credential_for(settings, STREAM)
    consumer = tune_worker_consumer(AIOKafkaConsumer(
        bootstrap_servers=kafka, group_id=topics.case_state_app, enable_auto_commit=False,
        fetch_min_bytes=1,
        fetch_max_wait_ms=1500, isolation_level="read_uncommitted",
        security_protocol=settings.kafka_security_protocol, sasl_mechanism=MECHANISM,
        sasl_plain_username=cred.principal, sasl_plain_password=cred.password))
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topics.input("gaj"), 0)])
        await consumer.getmany(timeout_ms=100)  # a fetch made, with those settings
        fetcher = consumer._fetcher  # noqa: SLF001
        assert fetcher._fetch_min_bytes == FETCH_MIN_BYTES  # noqa: SLF001
        assert fetcher._fetch_max_wait_ms == FETCH_MAX_WAIT_MS  # noqa: SLF001
        assert fetcher._isolation_level == READ_COMMITTED  # noqa: SLF001
    finally:
        await consumer.stop()
