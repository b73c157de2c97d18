"""Faust's aiokafka transport, reading `read_committed` (interfaces.md, Kafka: department
systems may publish in transactions, and every consumer of the project reads only
committed records; domain.md section 2: a record of an aborted transaction never
happened).

Faust reads `read_uncommitted` unless the app itself runs exactly-once; onewindow runs
at least once (docs/architecture.md), so the worker consumer is built here with
`read_committed`. Registered as the Faust transport `onewindow://` through Faust's own
plug-in point, the `faust.transports` entry point (pyproject.toml), so the broker URL
selects it. Its consumer thread also stops when aiokafka's own stop raises, its seek
to the committed offsets rewinds a partition that has none, and its fetch requests wait
at the broker for `FETCH_MIN_BYTES`, at most `FETCH_MAX_WAIT_MS`; the consumer delivers no
record of an agent's partition while that seek is awaited and keeps a commit that landed
meanwhile (issue 17; all below); everything else is Faust's aiokafka driver unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import aiokafka
import aiokafka.errors
from faust.transport.consumer import ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka

SCHEME = "onewindow"

#: The longest a fetch request waits at the broker for records (aiokafka's
#: ``fetch_max_wait_ms``; Faust's driver passes 1,500). After a seek (a start, the end of
#: a table recovery, a rebalance) the partitions sought are fetched only once the request
#: in flight has returned, and a request for partitions with nothing new returns only
#: after this wait: with 1,500 ms a restarted worker's first records waited about a
#: second more (docs/benchmarks.md, "Issue 15, point 2"). An idle worker sends about fifty
#: fetch requests a second (a few hundred bytes each) instead of two thirds of one.
FETCH_MAX_WAIT_MS = 20

#: The least a fetch request waits for at the broker (aiokafka's ``fetch_min_bytes``;
#: Faust's driver leaves aiokafka's 1), within `FETCH_MAX_WAIT_MS`. With 1, a steady
#: stream of 1,000 events/s came in about 250 fetches a second of four records each, and
#: fetching (requests written, responses parsed, records handed across threads) took 0.4
#: of the worker's 0.6-0.8 core, on the two cores it shares with the broker, where the
#: latency tail was the threads' wait for a core (docs/benchmarks.md, "The latency
#: tail"). A backlog fills a fetch at once; a steady stream waits at most the 20 ms.
FETCH_MIN_BYTES = 16 * 1024

log = logging.getLogger(__name__)


def tune_worker_consumer(consumer: aiokafka.AIOKafkaConsumer) -> aiokafka.AIOKafkaConsumer:
    """``consumer``, not yet started, set to read ``read_committed`` and to fetch with
    `FETCH_MIN_BYTES` and `FETCH_MAX_WAIT_MS`. aiokafka takes these at construction and
    first uses them in ``start()`` (its fetcher), which Faust calls later; Faust's driver
    passes read_uncommitted outside exactly-once and hard-codes the fetch settings, so
    they are corrected here, before ``start()`` (tests/integration/test_faust_transport.py
    checks that the started fetcher has them)."""
    consumer._isolation_level = "read_committed"  # noqa: SLF001
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # noqa: SLF001
    consumer._fetch_min_bytes = FETCH_MIN_BYTES  # noqa: SLF001
    return consumer


class ReadCommittedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread whose worker consumer reads `read_committed`."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        return tune_worker_consumer(super()._create_worker_consumer(transport))

    async def seek_to_committed(self) -> Mapping[Any, int | None]:
        """Faust's seek to the committed offsets, through `seek_to_committed_or_beginning`
        for the agents' topics (the ones whose offsets Faust commits; the table recovery
        seeks the changelogs itself)."""
        return await self.call_thread(seek_to_committed_or_beginning,
                                      self._ensure_consumer(),
                                      self.app.topics.acks_enabled_for)

    async def on_thread_stop(self) -> None:
        """Stop the aiokafka consumer, even when its stop raises.

        With the broker gone, `AIOKafkaConsumer.stop()` can raise the CancelledError of a
        fetch task it cancelled itself (aiokafka issue #647: `Fetcher.close` awaits the
        tasks it cancels). Raised here, it skipped the rest of mode's thread shutdown,
        which tells the worker the thread is done, and the worker's stop waited 60 s
        (mode's `shutdown_timeout`) for a thread that had already ended. Such an error is
        logged and the stop goes on; a cancellation of this task itself still propagates.
        """
        try:
            await super().on_thread_stop()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            log.warning("the Kafka consumer did not close cleanly (a fetch was cancelled "
                        "mid-request); stopping anyway")


async def seek_to_committed_or_beginning(
        consumer: aiokafka.AIOKafkaConsumer,
        rewind: Callable[[str], bool]) -> Mapping[Any, int | None]:
    """Seek every assigned partition to its committed offset, and a partition with none
    whose topic passes ``rewind`` to its beginning; return the committed offsets
    (TopicPartition -> offset, None where there is none), as aiokafka's
    `seek_to_committed`.

    Faust drops records it has fetched but not handed to a stream (a rebalance or a table
    recovery stopped the flow while a fetch was out: `faust.transport.consumer.Consumer
    .getmany`) and counts on this seek to fetch them again. aiokafka's `seek_to_committed`
    moves only the partitions that have a committed offset, so in a partition nothing was
    committed for yet (a new group's first seconds) the dropped records were skipped: the
    records after them were processed, their offsets committed, and the dropped ones lost
    (issue 13). Without a committed offset the worker starts a partition at its beginning
    (`consumer_auto_offset_reset="earliest"`, stream_apps.faust_base), so the seek goes
    there: records processed since are processed again (at least once: duplicates)."""
    committed = await consumer.seek_to_committed()
    # aiokafka seeks only where `offset and offset > 0`; 0 is the beginning too
    fresh = [tp for tp, offset in committed.items()
             if (not offset or offset < 0) and rewind(tp.topic)]
    if fresh:
        await consumer.seek_to_beginning(*fresh)
    return committed


def settle_seek(read_offset: MutableMapping[Any, int | None],
                committed_offset: MutableMapping[Any, int | None],
                sought: Mapping[Any, int | None],
                committed_before: Mapping[Any, int | None]) -> None:
    """Faust's bookkeeping after a seek to the committed offsets (``sought``:
    TopicPartition -> committed offset or None, as `seek_to_committed` returns;
    ``committed_before``: the committed offsets Faust held when the seek began): each
    partition's read offset is the one sought (as in Faust), and its committed offset too
    unless the worker committed further while the seek was awaited, which it keeps.

    Faust's `Consumer.perform_seek` (faust-streaming 0.15.3) sets the committed offset
    to the one the seek returned after awaiting it; a commit of records acked before the
    seek can land meanwhile, and Faust takes acked offsets off its list when it commits
    them: set back below them, the committed offset sat more than one below the first
    ack left, and `Consumer._new_offset` returns None for good ("gap at the head":
    faust-streaming issues #312, #313, #606; robinhood/faust #681): issue 17."""
    for tp, offset in sought.items():
        read_offset[tp] = offset if offset is not None and offset >= 0 else None
        mine = committed_offset.get(tp)
        if mine is not None and mine != committed_before.get(tp) \
                and (offset is None or mine > offset):
            continue  # committed while the seek was awaited: further than it found
        if offset is not None:
            committed_offset[tp] = offset if offset else None


class ReadCommittedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ReadCommittedConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        """Faust's seek of every assigned partition to its committed offset, with no
        record of the agents' partitions delivered while it is awaited (issue 17).

        Faust's table recovery (`Recovery.on_recovery_completed`, faust-streaming 0.15.3)
        resumes the stream partitions and the flow, then awaits this seek; the seek runs
        in the consumer thread, and its bookkeeping (each partition's read offset, the
        last one delivered, and committed offset) is set when the await returns, under
        load seconds later. Records delivered meanwhile met stale bookkeeping (the drill
        of a worker SIGKILL, issue 17):
        - a seek back (to the beginning, where nothing was committed yet) and records of
          the sought position fetched again while the read offset still stood at the
          records delivered before it: `Consumer._drain_messages` dropped them as read
          already ("DROPPED MESSAGE"), never processed, and the offsets after them were
          committed: records lost (compare robinhood/faust #221, prefetched records after a
          rebalance);
        - records delivered, acked and committed, then the committed offset set back to
          the one the seek found: the partition's commits stopped (`settle_seek`).
        So the agents' partitions are paused (Faust's own `pause_partitions`: not fetched,
        and records of them already fetched not delivered) until the seek and its
        bookkeeping are done; a record not delivered is fetched again from the offset
        sought. They are resumed unless a rebalance came meanwhile (its recovery resumes
        them after its own seek)."""
        acks_enabled_for = self.app.topics.acks_enabled_for
        held = {tp for tp in self._get_active_partitions() if acks_enabled_for(tp.topic)}
        generation = self.app.consumer_generation_id
        committed_before = dict(self._committed_offset)
        self.pause_partitions(held)
        try:
            sought = await self.seek_to_committed()
            settle_seek(self._read_offset, self._committed_offset,
                        {ensure_TP(tp): offset for tp, offset in sought.items()},
                        committed_before)
        finally:
            if self.app.consumer_generation_id == generation:
                self.resume_partitions(held & self.assignment())


#: seconds a topic declaration keeps trying while brokers are unreachable: longer than a
#: dead broker takes to be fenced (KRaft's broker.session.timeout.ms, 9 s) and dropped
#: from the metadata clients get
DECLARE_PATIENCE = 60.0


def declare_again(exc: BaseException) -> bool:
    """Whether a failed topic declaration may succeed if sent again: aiokafka's retriable
    errors (a node not ready, a lost connection, a request timed out, not the
    controller), and Faust's own words for "not the controller"."""
    if isinstance(exc, aiokafka.errors.KafkaError):
        return bool(getattr(exc, "retriable", False))
    return isinstance(exc, RuntimeError) and str(exc).startswith("Invalid controller")


class Transport(faust_aiokafka.Transport):
    """`onewindow://host:port`: Faust's aiokafka transport with a read_committed consumer,
    whose topic declarations outlast a broker down."""

    Consumer = ReadCommittedConsumer

    async def _create_topic(self, owner: Any, client: aiokafka.AIOKafkaClient,
                            topic: str, partitions: int, replication: int,
                            **kwargs: Any) -> None:
        """Faust's topic declaration (a CreateTopics request to the controller the first
        broker of the client's metadata names; an existing topic is left alone), sent
        again while it fails for a node down, until the topic exists, for up to
        `DECLARE_PATIENCE` s.

        Faust asks the first broker its metadata lists, whichever it is, and gives up on
        the first error: a worker started while one broker of three was down died at
        start-up on aiokafka's NodeNotReadyError, declaring its leader topic (the broker
        drill, issue 17), though two brokers could serve it. And a request that outlasts
        its timeout returns as if the worker were stopping (mode's `Service.wait` reports
        a timeout as "stopped"), the topic not created and nothing said: so the topic's
        existence is checked after each attempt. The metadata is refreshed between
        attempts, so a fenced broker drops out of it. Raises the last error (or
        KafkaTimeoutError when the topic never appeared) after `DECLARE_PATIENCE` s, any
        other error at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DECLARE_PATIENCE
        while True:
            try:
                await super()._create_topic(owner, client, topic, partitions, replication,
                                            **kwargs)
                # the client's metadata first: Faust's own check, for a topic that
                # existed (every start's case) no request is sent
                if owner.should_stop or topic in client.cluster.topics() \
                        or await _exists(client, topic):
                    return
                problem: BaseException = aiokafka.errors.KafkaTimeoutError(
                    f"topic {topic} not created: the request got no answer in time")
            except Exception as exc:
                if not declare_again(exc):
                    raise
                problem = exc
            if loop.time() >= deadline or owner.should_stop:
                raise problem
            log.warning("declaring topic %s: %r; asking again", topic, problem)
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):  # the next attempt says what is wrong
                await client.force_metadata_update()


async def _exists(client: aiokafka.AIOKafkaClient, topic: str) -> bool:
    """Whether the cluster lists ``topic`` (fresh metadata of every topic; False when no
    broker answers)."""
    try:
        return topic in (await client.fetch_all_metadata()).topics()
    except aiokafka.errors.KafkaError:
        return False
