"""The producer SDK: department systems publish events through this.

Idempotent confluent-kafka producer (enable.idempotence, acks=all), keyed by case_id,
routed to the department's own topic, checked against the source-checkable rules of
domain.md section 2 before anything is sent. The stream app enforces every rule again:
this is the integrator's early warning, not the line of defence.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from onewindow.codec import Codec
from onewindow.domain.validation import Rejection, validate
from onewindow.errors import DeliveryError, OneWindowError
from onewindow.inputs import INPUT_PRODUCER_CONFIG, prepare_record
from onewindow.security.kafka_auth import department_of_principal
from onewindow.topics import Topics, record_key


class RejectedEvent(OneWindowError):
    """An event broke a rule of domain.md section 2 and was not sent."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DeliveryFailed(DeliveryError):
    """The broker did not acknowledge every record before the flush timed out or failed
    (exit status 1 on the command line)."""


#: librdkafka errors that mean "no broker answered", not "the broker said no"
_NO_ANSWER = (KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT,
              KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE)


@dataclass
class DeliveryReport:
    delivered: Counter[str] = field(default_factory=Counter)
    #: one line per distinct failure (readable: names the topic or the broker's error)
    failed: list[str] = field(default_factory=list)
    #: how many records failed
    failures: int = 0
    #: the last error the client itself reported (connection refused, authentication ...)
    broker_error: str | None = None

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
                 config: dict[str, Any] | None = None,
                 counters: Iterable[str] | None = None,
                 uscc_exceptions: Iterable[str] = ()) -> None:
        # idempotent, acks=all, murmur2_random: what every producer of input records uses
        conf: dict[str, Any] = {"bootstrap.servers": bootstrap, **INPUT_PRODUCER_CONFIG,
                                "client.id": "onewindow-publisher"}
        conf.update(config or {})
        conf.setdefault("error_cb", self._on_error)
        #: the principal it signs in as (None on a PLAINTEXT cluster): named in refusals
        self.principal: str | None = conf.get("sasl.username")
        self._bootstrap = str(conf["bootstrap.servers"])
        self._producer = Producer(conf)
        self._topics = topics
        self._departments = frozenset(departments)
        #: the departments whose role is `counter` (UNAUTHORISED); None skips that rule
        self._counters = frozenset(counters) if counters is not None else None
        #: the operator's known-valid USCCs failing their check (onewindow.uscc_exceptions)
        self._uscc_exceptions = frozenset(uscc_exceptions)
        self._codec = codec
        self._clock = clock
        self.report = DeliveryReport()

    def connect(self, topic: str, timeout: float = 30.0) -> None:
        """Sign in and fetch ``topic``'s metadata now, not at the first send: a paced
        stream's first events would otherwise wait for the connection and the SCRAM
        handshake (their latency, measured from the time they were sent, included it).
        Raises KafkaException when no broker answers within ``timeout`` seconds."""
        self._producer.list_topics(topic, timeout=timeout)

    def check(self, event: dict[str, Any], topic: str | None = None) -> None:
        """Raise RejectedEvent if the event breaks a source-checkable rule."""
        owner = self._topics.department_of(topic) if topic else event.get("department")
        rejection = validate(event, topic_department=owner, departments=self._departments,
                             counters=self._counters, now=self._clock(),
                             uscc_exceptions=self._uscc_exceptions)
        if rejection is not None:
            raise RejectedEvent(rejection.reason, rejection.detail)

    def send(self, event: dict[str, Any], *, validate_first: bool = True,
             topic: str | None = None) -> str:
        """Queue one event; returns the topic it goes to. Delivery is confirmed by flush()."""
        if validate_first:  # the rules, the encoding and the record's size (TOO_LARGE)
            owner = self._topics.department_of(topic) if topic else event.get("department")
            prepared = prepare_record(event, owner=owner, departments=self._departments,
                                      counters=self._counters, now=self._clock(),
                                      uscc_exceptions=self._uscc_exceptions,
                                      codec=self._codec)
            if isinstance(prepared, Rejection):
                raise RejectedEvent(prepared.reason, prepared.detail)
            key, value = prepared.key, prepared.value
        else:
            key, value = record_key(str(event["case_id"])), self._codec.encode(event)
        target = topic or self._topics.input(str(event["department"]))
        self.send_raw(target, key, value)
        return target

    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue bytes as they are (replays, and tests of the stream app's defences)."""
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain
            except KafkaException as exc:  # the topic is already known to be refused
                self._fail(topic, exc.args[0])
                return
        self._producer.poll(0)

    def _on_error(self, err: KafkaError) -> None:
        """librdkafka's client-level errors (connection refused, sign-in failed, all
        brokers down): kept to explain a failed delivery, never printed."""
        if err.code() != KafkaError._ALL_BROKERS_DOWN or self.report.broker_error is None:
            self.report.broker_error = err.str()

    def _fail(self, topic: str, err: KafkaError) -> None:
        self.report.failures += 1
        if err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            who = self.principal or "this client"
            dept = department_of_principal(who) if self.principal else None
            who = f"department {dept}" if dept else who
            line = f"{who} may not write {topic}"
        elif err.code() in _NO_ANSWER:
            line = f"no acknowledgement from {self._bootstrap}: " \
                   f"{self.report.broker_error or err.str()}"
        else:
            line = f"{topic}: {err.str()}"
        if line not in self.report.failed:
            self.report.failed.append(line)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._fail(msg.topic() or "?", err)
        else:
            self.report.delivered[msg.topic() or "?"] += 1

    def flush(self, timeout: float = 30.0) -> DeliveryReport:
        remaining = self._producer.flush(timeout)
        if remaining:  # still queued or in flight when the wait ended
            self.report.failures += remaining
            line = f"no acknowledgement from {self._bootstrap}: " \
                   f"{self.report.broker_error or f'none within {timeout:g}s'}"
            if line not in self.report.failed:
                self.report.failed.append(line)
        if self.report.failed:
            raise DeliveryFailed("; ".join(self.report.failed[:3]))
        return self.report

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.flush()
        else:
            self.drain(10)

    def drain(self, timeout: float) -> None:
        """Give what is still queued at most ``timeout`` seconds, without a report (on the
        way out after an error or Ctrl-C)."""
        self._producer.flush(max(0.0, timeout))


class DepartmentPublishers:
    """Publish events each signed in as the department that owns its target topic: for
    tools that act for every department (the simulator, replays, benchmarks) and hold
    each department's credential. One `Publisher` per department, made on first use;
    `config_for(code)` gives its librdkafka settings (e.g. `producer_config(settings,
    department_principal(code))`). Same interface as `Publisher`."""

    def __init__(self, bootstrap: str, *, topics: Topics, departments: Iterable[str],
                 codec: Codec, config_for: Callable[[str], dict[str, Any]],
                 clock: Callable[[], datetime] = _utcnow,
                 counters: Iterable[str] | None = None,
                 uscc_exceptions: Iterable[str] = ()) -> None:
        self._args = {"topics": topics, "departments": frozenset(departments), "codec": codec,
                      "clock": clock, "counters": counters,
                      "uscc_exceptions": frozenset(uscc_exceptions)}
        self._bootstrap = bootstrap
        self._topics = topics
        self._config_for = config_for
        self._by_department: dict[str, Publisher] = {}

    def _for_topic(self, topic: str) -> Publisher:
        owner = self._topics.department_of(topic)
        if owner is None:
            raise RejectedEvent("UNKNOWN_DEPARTMENT", f"{topic} is no department's topic")
        pub = self._by_department.get(owner)
        if pub is None:
            pub = Publisher(self._bootstrap, config=self._config_for(owner), **self._args)
            self._by_department[owner] = pub
        return pub

    def connect(self, departments: Iterable[str], timeout: float = 30.0) -> None:
        """`Publisher.connect` for each department's input topic, as that department."""
        for code in sorted(set(departments)):
            topic = self._topics.input(code)
            self._for_topic(topic).connect(topic, timeout)

    def send(self, event: dict[str, Any], *, validate_first: bool = True,
             topic: str | None = None) -> str:
        """Queue one event as the owner of its target topic; returns that topic."""
        target = topic or self._topics.input(str(event["department"]))
        return self._for_topic(target).send(event, validate_first=validate_first, topic=target)

    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        self._for_topic(topic).send_raw(topic, key, value)

    @property
    def report(self) -> DeliveryReport:
        merged = DeliveryReport()
        for pub in self._by_department.values():
            merged.delivered.update(pub.report.delivered)
            merged.failed.extend(x for x in pub.report.failed if x not in merged.failed)
            merged.failures += pub.report.failures
            merged.broker_error = pub.report.broker_error or merged.broker_error
        return merged

    def flush(self, timeout: float = 30.0) -> DeliveryReport:
        """Flush every department's producer within one deadline of `timeout` seconds;
        raise DeliveryFailed naming each distinct failure once."""
        deadline = time.monotonic() + timeout
        for pub in self._by_department.values():
            with contextlib.suppress(DeliveryFailed):
                pub.flush(max(0.1, deadline - time.monotonic()))
        report = self.report
        if report.failed:
            raise DeliveryFailed("; ".join(report.failed[:3]))
        return report

    def __enter__(self) -> DepartmentPublishers:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.flush()
        else:
            # one deadline for all: Ctrl-C with the broker gone waits 10 s, not 10 s per
            # department (issue 13: every process stops within seconds)
            deadline = time.monotonic() + 10
            for pub in self._by_department.values():
                pub.drain(deadline - time.monotonic())
