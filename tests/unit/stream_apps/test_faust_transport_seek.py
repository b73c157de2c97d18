"""The worker consumer's bookkeeping around a seek to the committed offsets
(`stream_apps.faust_transport.ReadCommittedConsumer.perform_seek`, `settle_seek`): issue
17, records dropped as read already after a seek back, and a partition whose commits
stopped for good after a worker took it over.

Faust's own consumer (the real `ReadCommittedConsumer` of an app, its `ack`,
`_new_offset` and `_should_commit` unchanged) without a broker: the seek and the
assignment are the calls that would go to Kafka, and they are replaced by what happened
concurrently in the drill while the seek was awaited (a commit landing), followed by the
offset the seek returned. The worker drill (tests/integration/test_cluster_drills.py)
runs the real thing."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import pytest
from faust.types import TP, Message

from onewindow.config import Settings
from stream_apps.faust_base import new_app
from stream_apps.faust_transport import ReadCommittedConsumer, settle_seek

TOPIC = "unit-seek.dept.gaj.events"
TPX = TP(TOPIC, 1)


def _consumer(tmp_path: Path) -> ReadCommittedConsumer:
    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT")
    app = new_app(settings, app_id="unit-seek", worker_name="unit", web_port=16067,
                  batch_max=10)
    consumer = app.consumer
    assert isinstance(consumer, ReadCommittedConsumer)
    app.topics._acking_topics.add(TOPIC)  # noqa: SLF001 - as an agent on the topic does
    return consumer


def _ack(consumer: ReadCommittedConsumer, offsets: range) -> None:
    for offset in offsets:
        message = Message(TOPIC, TPX.partition, offset, 0.0, 0, {}, b"k", b"v", None)
        consumer.ack(message)


def _commit(consumer: ReadCommittedConsumer) -> int | None:
    """Faust's commit bookkeeping (`Consumer._commit_tps`, `_commit_offsets`) for TPX,
    the broker's part left out: the offset committed, or None when none can be."""
    offset = consumer._new_offset(TPX)  # noqa: SLF001
    if offset is None or not consumer._should_commit(TPX, offset):  # noqa: SLF001
        return None
    consumer._committed_offset[TPX] = offset  # noqa: SLF001
    return offset


def test_a_commit_that_lands_while_the_seek_is_awaited_is_kept(tmp_path: Path) -> None:
    consumer = _consumer(tmp_path)
    consumer._read_offset[TPX] = 22  # noqa: SLF001 - records 1..22 delivered
    _ack(consumer, range(1, 7))  # a batch of 1..6 written

    async def seek_during_which_a_commit_landed() -> Mapping[TP, int | None]:
        assert _commit(consumer) == 7
        return {TPX: 1}  # the group's committed offset when the seek ran

    consumer.seek_to_committed = seek_during_which_a_commit_landed  # type: ignore[method-assign]
    consumer.assignment = lambda: {TPX}  # type: ignore[method-assign]
    asyncio.run(consumer.perform_seek())
    assert consumer._committed_offset[TPX] == 7  # noqa: SLF001
    assert consumer._read_offset[TPX] == 1  # noqa: SLF001 - 1.. is fetched again
    _ack(consumer, range(7, 23))  # the rest written: the partition commits on
    assert _commit(consumer) == 23


def test_no_record_of_an_agents_partition_is_delivered_while_the_seek_is_awaited(
        tmp_path: Path) -> None:
    consumer = _consumer(tmp_path)
    other = TP("unit-seek.onewindow-case-state-case-fold-changelog", 1)
    consumer._set_active_tps({TPX, other})  # noqa: SLF001 - as a rebalance does
    consumer.assignment = lambda: {TPX, other}  # type: ignore[method-assign]
    during: list[set[TP]] = []

    async def seek() -> Mapping[TP, int | None]:
        during.append(set(consumer._get_active_partitions()))  # noqa: SLF001
        return {TPX: 0}

    consumer.seek_to_committed = seek  # type: ignore[method-assign]
    asyncio.run(consumer.perform_seek())
    # getmany delivers only records of active partitions: none of TPX during the seek
    assert during == [{other}]
    assert consumer._get_active_partitions() == {TPX, other}  # noqa: SLF001


def test_fausts_own_bookkeeping_after_that_seek_stops_the_partitions_commits(
        tmp_path: Path) -> None:
    """What the correction is for: with Faust's bookkeeping (the committed offset set
    back to the one the seek returned), the head of the acks (7) is more than one past
    it (1) and `_new_offset` gives None for ever."""
    consumer = _consumer(tmp_path)
    consumer._read_offset[TPX] = 22  # noqa: SLF001
    _ack(consumer, range(1, 7))
    assert _commit(consumer) == 7
    consumer._committed_offset[TPX] = 1  # noqa: SLF001 - faust's perform_seek
    _ack(consumer, range(7, 23))
    assert [_commit(consumer) for _ in range(3)] == [None, None, None]


@pytest.mark.parametrize(("before", "mine", "sought", "committed"), [
    ({}, {}, 5, 5),  # the offset sought
    ({TPX: 12}, {TPX: 12}, 5, 5),  # a previous assignment's offset: the one sought
    ({}, {TPX: 7}, 1, 7),  # committed while the seek was awaited: kept
    ({TPX: 2}, {TPX: 3}, 5, 5),  # committed meanwhile, but less far than the seek found
    ({}, {}, 0, None),  # Faust keeps no committed offset 0
    ({}, {}, None, None),  # nothing committed yet
])
def test_after_a_seek_the_read_offset_is_the_one_sought_and_a_commit_meanwhile_stays(
        before: dict[TP, int | None], mine: dict[TP, int | None], sought: int | None,
        committed: int | None) -> None:
    read_offset: dict[TP, int | None] = {TPX: 22}
    committed_offset = dict(mine)
    settle_seek(read_offset, committed_offset, {TPX: sought}, before)
    assert (read_offset[TPX], committed_offset.get(TPX)) == (sought, committed)
