"""The producer SDK: department systems publish events through this.

Idempotent confluent-kafka producer (enable.idempotence, acks=all), keyed by case_id,
routed to the department's own topic, checked against the source-checkable rules of
domain.md section 2 before anything is sent. The stream app enforces every rule again:
this is the integrator's early warning, not the line of defence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from onewindow.codec import Codec
from onewindow.domain.validation import validate
from onewindow.errors import OneWindowError
from onewindow.topics import Topics, record_key


class RejectedEvent(OneWindowError):
    """An event broke a rule of domain.md section 2 and was not sent."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DeliveryFailed(OneWindowError):
    """The broker did not acknowledge every record before the flush timed out or failed."""


@dataclass
class DeliveryReport:
    delivered: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.delivered.values())


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Publisher:
    """Publish events to their departments' topics. Use as a context manager: the exit
    flushes and raises DeliveryFailed if any record was not acknowledged."""

    def __init__(self, bootstrap: str, *, topics: Topics, departments: Iterable[str],
                 codec: Codec, clock: Callable[[], datetime] = _utcnow,
                 config: dict[str, Any] | None = None) -> None:
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "client.id": "onewindow-publisher",
        }
        conf.update(config or {})
        self._producer = Producer(conf)
        self._topics = topics
        self._departments = frozenset(departments)
        self._codec = codec
        self._clock = clock
        self.report = DeliveryReport()

    def check(self, event: dict[str, Any], topic: str | None = None) -> None:
        """Raise RejectedEvent if the event breaks a source-checkable rule."""
        owner = self._topics.department_of(topic) if topic else event.get("department")
        rejection = validate(event, topic_department=owner, departments=self._departments,
                             now=self._clock())
        if rejection is not None:
            raise RejectedEvent(rejection.reason, rejection.detail)

    def send(self, event: dict[str, Any], *, validate_first: bool = True,
             topic: str | None = None) -> str:
        """Queue one event; returns the topic it goes to. Delivery is confirmed by flush()."""
        if validate_first:
            self.check(event, topic)
        target = topic or self._topics.input(str(event["department"]))
        value = self._codec.encode(event)
        self.send_raw(target, record_key(str(event["case_id"])), value)
        return target

    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue bytes as they are (replays, and tests of the stream app's defences)."""
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain
        self._producer.poll(0)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.report.failed.append(f"{msg.topic()}: {err.str()}")
        else:
            self.report.delivered[msg.topic() or "?"] += 1

    def flush(self, timeout: float = 30.0) -> DeliveryReport:
        remaining = self._producer.flush(timeout)
        if remaining:
            self.report.failed.append(f"{remaining} records not acknowledged within {timeout}s")
        if self.report.failed:
            raise DeliveryFailed("; ".join(self.report.failed[:3]))
        return self.report

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.flush()
        else:
            self._producer.flush(10)
