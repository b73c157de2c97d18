"""Output records of the stream apps, through confluent-kafka rather than Faust's producer.

Faust's producer buffer sends one message per await (about 10,000 messages/s at best on
two cores), and every input event makes one or two output records. librdkafka batches in
C.

The rule that keeps this safe: no input offset is committed before the outputs of its
record are acknowledged. The agent queues a batch's outputs and acks the batch; Faust
commits acked offsets only in `Consumer.force_commit`, which first calls the sensors'
`on_commit_initiated` and then, with no await in between, picks the offsets to commit.
`guard_commits` registers a sensor that flushes this producer right there, so every
offset Faust commits has its outputs on the broker, without a flush wait per batch
(a per-batch flush cost a sixth of the worker's time). A failed delivery raises, the
worker stops uncommitted, and the batches are replayed (outputs are upserts downstream).

Except when the failure is the record's own (domain.md section 2, ``OUTPUT_FAILED``): an
output that the client refuses at once (over ``message.max.bytes``) or the broker refuses
for good (too large, invalid, a policy: `RECORD_ERRORS`) and that names its input
(`OutRecord.source`) makes that input a dead letter (``on_failed``, the processor's
`output_failed`) instead of stopping the worker: a replay would fail on it for ever. The
dead letter is produced right there (from the delivery report, inside the flush that the
commit waits for, which waits for it too), so the input's offset is committed only once
its dead letter is on the broker; if the dead letter fails too, the worker stops
uncommitted as before. Other errors (the broker unreachable, rights) are not the record's:
they stop the worker. Caveat: the broker refuses a whole batch, so a topic whose
``max.message.bytes`` is set below ``message.max.bytes`` here could dead-letter the inputs
of small records that shared a batch with a large one; the project's topics keep the
broker's default (1 MiB), above it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import faust
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from faust.sensors import Sensor

from onewindow.errors import OneWindowError
from stream_apps.records import MAX_OUTPUT_BYTES, InRecord, OutRecord

#: Errors that refuse one record for good, for what it is: its input is dead-lettered.
RECORD_ERRORS = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE,
                           KafkaError.INVALID_RECORD, KafkaError.POLICY_VIOLATION})

#: ``on_failed(input record, why)``: the dead letter to produce for it.
FailureHandler = Callable[[InRecord, str], OutRecord]


class OutputDeliveryError(OneWindowError):
    """The broker refused or lost an output record; the batch must not be committed."""


class OutputProducer:
    """``on_failed``: how to dead-letter an input whose output is refused for good (see
    the module docstring); without it every failure stops the worker."""

    def __init__(self, bootstrap: str, *, client_id: str,
                 config: dict[str, Any] | None = None,
                 on_failed: FailureHandler | None = None) -> None:
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500000,
            "message.max.bytes": MAX_OUTPUT_BYTES,
        }
        conf.update(config or {})
        self._producer = Producer(conf)
        self._errors: list[str] = []
        self._on_failed = on_failed
        #: inputs dead-lettered since the last flush (one dead letter per input)
        self._failed: set[tuple[str, int, int]] = set()

    def _on_delivery(self, err: KafkaError | None, msg: Message,
                     source: InRecord | None = None,
                     delivered: Callable[[int], None] | None = None) -> None:
        if err is None:
            if delivered is not None:
                delivered(msg.offset())
            return
        if source is not None and err.code() in RECORD_ERRORS:
            self._dead_letter(source, f"{msg.topic()}: {err.str()}")
        else:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def _dead_letter(self, source: InRecord, why: str) -> None:
        if self._on_failed is None:  # never: a source is only kept with a handler
            self._errors.append(why)
            return
        where = (source.topic, source.partition, source.offset)
        if where not in self._failed:
            self._failed.add(where)
            out = self._on_failed(source, f"an output was refused: {why}")
            self.send(out.topic, out.key, out.value)

    def send(self, topic: str, key: bytes | None, value: bytes,
             source: InRecord | None = None, partition: int | None = None,
             delivered: Callable[[int], None] | None = None) -> None:
        """Queue one record (on ``partition`` when given, else the key's). With ``source``
        (and ``on_failed``), a refusal of this record for good dead-letters ``source``
        instead of raising. ``delivered(offset)`` is called once the broker has the record
        (from the thread that serves delivery reports: a poll, a flush)."""
        if self._on_failed is None:
            source = None
        report = (self._on_delivery if source is None and delivered is None else
                  partial(self._on_delivery, source=source, delivered=delivered))
        where = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=report, **where)
                return
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if source is None or not isinstance(err, KafkaError) \
                        or err.code() not in RECORD_ERRORS:
                    raise OutputDeliveryError(f"{topic}: {exc}") from exc
                self._dead_letter(source, f"{topic}: {err.str()}")
                return

    async def flush(self, timeout: float = 60.0) -> None:
        """Wait, off the event loop, until every queued record is acknowledged."""
        remaining = await asyncio.get_running_loop().run_in_executor(
            None, self._producer.flush, timeout)
        self._check(remaining, timeout)
        self._failed.clear()

    def flush_blocking(self, timeout: float = 60.0) -> None:
        """Flush on the calling thread (the commit guard must not yield to the loop)."""
        self._check(self._producer.flush(timeout), timeout)
        self._failed.clear()

    def send_batch(self, records: Iterable[Any]) -> None:
        """Queue a batch's output records (`.topic`, `.key`, `.value`), serve delivery
        reports without waiting, and raise a failure seen so far. They are flushed
        before any commit (`guard_commits`), not here."""
        for out in records:
            self.send(out.topic, out.key, out.value, getattr(out, "source", None),
                      getattr(out, "partition", None))
        self._producer.poll(0)
        self._check(0, 0)

    def _check(self, remaining: int, timeout: float) -> None:
        if remaining:
            raise OutputDeliveryError(f"{remaining} output records not acknowledged "
                                      f"within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise OutputDeliveryError("; ".join(errors[:3]))

    def guard_commits(self, app: faust.App) -> None:
        """Flush before Faust commits any offset (see the module docstring)."""
        app.sensors.add(_FlushBeforeCommit(self))

    def close(self) -> None:
        self._producer.flush(30)


class _FlushBeforeCommit(Sensor):
    def __init__(self, output: OutputProducer) -> None:
        super().__init__()
        self.output = output

    def on_commit_initiated(self, consumer: Any) -> Any:
        if consumer.app.crashed:
            # An agent raised: Faust's take_events acked its batch all the same. Nothing
            # more is committed; the worker stops (stream_apps.faust_base) and the batch
            # is processed again after the restart.
            raise OutputDeliveryError("an agent crashed: no offset is committed any more")
        self.output.flush_blocking()
        return None
