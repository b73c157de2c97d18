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
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import faust
from confluent_kafka import KafkaError, Message, Producer
from faust.sensors import Sensor

from onewindow.errors import OneWindowError


class OutputDeliveryError(OneWindowError):
    """The broker refused or lost an output record; the batch must not be committed."""


class OutputProducer:
    def __init__(self, bootstrap: str, *, client_id: str,
                 config: dict[str, Any] | None = None) -> None:
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500000,
        }
        conf.update(config or {})
        self._producer = Producer(conf)
        self._errors: list[str] = []

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=self._on_delivery)
                return
            except BufferError:
                self._producer.poll(0.05)

    async def flush(self, timeout: float = 60.0) -> None:
        """Wait, off the event loop, until every queued record is acknowledged."""
        remaining = await asyncio.get_running_loop().run_in_executor(
            None, self._producer.flush, timeout)
        self._check(remaining, timeout)

    def flush_blocking(self, timeout: float = 60.0) -> None:
        """Flush on the calling thread (the commit guard must not yield to the loop)."""
        self._check(self._producer.flush(timeout), timeout)

    def send_batch(self, records: Iterable[Any]) -> None:
        """Queue a batch's output records (`.topic`, `.key`, `.value`), serve delivery
        reports without waiting, and raise a failure seen so far. They are flushed
        before any commit (`guard_commits`), not here."""
        for out in records:
            self.send(out.topic, out.key, out.value)
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
        self.output.flush_blocking()
        return None
