"""Output records of the stream apps, through confluent-kafka rather than Faust's producer.

Faust's producer buffer sends one message per await (about 10,000 messages/s at best on
two cores), and every input event makes one or two output records. librdkafka batches in
C. The agent flushes this producer at the end of each batch, before Faust may ack (and so
commit) the batch's input offsets: every output of a committed input is on the broker.
A failed delivery raises, the worker stops uncommitted, and the batch is replayed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

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
        if remaining:
            raise OutputDeliveryError(f"{remaining} output records not acknowledged "
                                      f"within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise OutputDeliveryError("; ".join(errors[:3]))

    def close(self) -> None:
        self._producer.flush(30)
