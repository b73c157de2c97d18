"""The gateway's producer: one idempotent confluent-kafka producer, signed in as
``svc-gateway``, whose acknowledgements resolve asyncio futures.

:class:`KafkaPublisher` is the publish path of every gateway endpoint (the events and
the materials upload): ``send_many(topic, records, on_record)`` queues a request's
records and returns a :class:`Sent`: each record is settled, on the event loop, when the
broker has acknowledged it (``acks=all``) or with :class:`Unavailable` when it cannot be
delivered (the local queue is full, the broker refused it, or no acknowledgement came
within librdkafka's ``message.timeout.ms``); ``on_record(index, error)`` is told each
outcome as it comes, and ``Sent.done`` completes once every record is settled. A thread
polls the producer, so acknowledgements arrive while requests wait; after each poll it
hands the outcomes it collected to the event loop in one call. One wake-up of the loop
per poll and one future per request, not a future, a callback and a wake-up per record:
what a batch of 500 cost before (docs/benchmarks.md, "The ingestion gateway").

The producer settings are those of every producer of input records
(:data:`onewindow.inputs.INPUT_PRODUCER_CONFIG`: idempotent, ``acks=all``,
``murmur2_random``). A record unacknowledged after :data:`MESSAGE_TIMEOUT_MS` fails; a
request stops waiting much earlier (``ONEWINDOW_GATEWAY_ACK_TIMEOUT_SECONDS``, then 503),
and a record acknowledged after that is still remembered (``gateway.service``), so the
retry does not send it again. A fatal error of the idempotent producer (librdkafka gives
up on the sequence) fails what is in flight and starts a new producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from onewindow.errors import DeliveryError
from onewindow.inputs import INPUT_PRODUCER_CONFIG

__all__ = ["MESSAGE_TIMEOUT_MS", "KafkaPublisher", "Sent", "Unavailable"]

log = logging.getLogger("onewindow.gateway")

#: how long librdkafka keeps trying one record before it fails it (2 minutes)
MESSAGE_TIMEOUT_MS = 120_000


class Unavailable(DeliveryError):
    """A record was not acknowledged: the broker is unreachable or refused it."""


#: the outcome of a record not settled yet
_PENDING: Any = object()


class Sent:
    """The records of one :meth:`KafkaPublisher.send_many`, in order, settled on the event
    loop as their outcomes arrive: :meth:`acknowledged`, :meth:`error` and
    :meth:`settled` per record, ``done`` once all are settled (whatever the outcomes).
    ``on_record(index, error)``, when given, is called as each record settles (``error``
    None: acknowledged)."""

    __slots__ = ("_left", "_on_record", "_outcomes", "done", "loop", "topic")

    def __init__(self, loop: asyncio.AbstractEventLoop, n: int,
                 on_record: Callable[[int, BaseException | None], None] | None = None,
                 topic: str = "") -> None:
        #: the loop its records settle on, the topic they went to
        self.loop, self.topic = loop, topic
        self.done: asyncio.Future[None] = loop.create_future()
        self._outcomes: list[Any] = [_PENDING] * n
        self._left = n
        self._on_record = on_record
        if n == 0:
            self.done.set_result(None)

    def __len__(self) -> int:
        return len(self._outcomes)

    def settle(self, index: int, error: BaseException | None) -> None:
        """Record ``index``'s outcome (the first one counts). On the event loop."""
        if self._outcomes[index] is not _PENDING:
            return
        self._outcomes[index] = error
        self._left -= 1
        try:
            if self._on_record is not None:
                self._on_record(index, error)
        finally:
            if self._left == 0 and not self.done.done():
                self.done.set_result(None)

    def settled(self, index: int) -> bool:
        return self._outcomes[index] is not _PENDING

    def acknowledged(self, index: int) -> bool:
        return self._outcomes[index] is None

    def unacknowledged(self) -> list[int]:
        """The records not acknowledged (failed, or not settled yet)."""
        return [i for i, outcome in enumerate(self._outcomes) if outcome is not None]

    def error(self, index: int) -> BaseException | None:
        """Why record ``index`` failed (None: acknowledged, or not settled yet)."""
        outcome = self._outcomes[index]
        return None if outcome is _PENDING else outcome


class KafkaPublisher:
    """Queue records, get futures of their acknowledgements (module docstring).

    ``config``: librdkafka settings with ``bootstrap.servers`` and the sign-in
    (``onewindow.security.kafka_auth.producer_config(settings, GATEWAY)``)."""

    def __init__(self, config: Mapping[str, Any],
                 producer_factory: Callable[[dict[str, Any]], Producer] = Producer) -> None:
        self._conf: dict[str, Any] = {**INPUT_PRODUCER_CONFIG,
                                      "client.id": "onewindow-gateway",
                                      "message.timeout.ms": MESSAGE_TIMEOUT_MS,
                                      **config, "error_cb": self._on_error}
        self._factory = producer_factory
        self._lock = threading.Lock()
        self._producer = producer_factory(self._conf)
        self._fatal = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: the last client-level error librdkafka reported (for logs and /healthz)
        self.last_error: str | None = None
        self._logged_at = 0.0
        #: outcomes collected by the delivery callbacks, handed to their loops after each
        #: poll: (the records' Sent, the record's index, librdkafka's error or None)
        self._settled: deque[tuple[Sent, int, KafkaError | None]] = deque()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the thread that serves acknowledgements."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="gateway-kafka-poll",
                                            daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` seconds for what is queued, then stop; how many records
        were left undelivered."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            left = int(self._producer.flush(timeout))
        self._hand_over()
        return left

    def _poll(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                producer = self._producer
            try:
                producer.poll(0.1)
            except Exception:  # noqa: BLE001 - a callback failing must not end the thread
                log.exception("gateway producer: a delivery callback failed")
            self._hand_over()
            if self._fatal:
                self._renew()
                self._hand_over()

    def _hand_over(self) -> None:
        """The outcomes collected since the last call, to their event loops: one
        ``call_soon_threadsafe`` per loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Sent, int, KafkaError | None]]] = {}
        settled = self._settled
        while settled:
            outcome = settled.popleft()
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle_all, outcomes)

    def _renew(self) -> None:
        """After a fatal error: fail what the old producer holds, start a new one."""
        with self._lock:
            old, self._producer = self._producer, self._factory(self._conf)
            self._fatal = False
        log.error("gateway producer: fatal error (%s); started a new producer",
                  self.last_error)
        old.purge()
        old.poll(0)  # the purged records' callbacks: their futures fail
        old.flush(0)

    def _on_error(self, err: KafkaError) -> None:
        """librdkafka's client-level errors: kept for /healthz and logged once per
        change, or once a minute while the same (a broker down repeats it every retry)."""
        text = err.str()
        now = time.monotonic()
        if text != self.last_error or now - self._logged_at > 60:
            log.warning("gateway producer: %s", text)
            self._logged_at = now
        self.last_error = text
        if err.fatal():
            self._fatal = True

    # ------------------------------------------------------------------ sending

    def send_many(self, topic: str, records: Sequence[tuple[bytes, bytes]],
                  on_record: Callable[[int, BaseException | None], None] | None = None
                  ) -> Sent:
        """Queue ``records`` (key, value) to ``topic`` in order (module docstring). A
        record refused at once (the queue is full, the topic is known to be refused) is
        settled with its :class:`Unavailable` on the loop's next turn, never before this
        returns. Call from the event loop."""
        loop = asyncio.get_running_loop()
        sent = Sent(loop, len(records), on_record, topic)
        refused: list[tuple[int, Unavailable]] = []
        settle = self._settle
        with self._lock:
            produce = self._producer.produce
            for index, (key, value) in enumerate(records):
                try:
                    produce(topic, value, key, on_delivery=partial(settle, sent, index))
                except BufferError:
                    refused.append((index, Unavailable("the producer's queue is full")))
                except KafkaException as exc:
                    refused.append((index, Unavailable(f"{topic}: {exc.args[0].str()}")))
        for index, error in refused:
            loop.call_soon(sent.settle, index, error)
        return sent

    def _settle(self, sent: Sent, index: int, err: KafkaError | None, _msg: Message) -> None:
        """A delivery callback (in the thread that polls): collected for :meth:`_hand_over`."""
        self._settled.append((sent, index, err))

    def check(self, timeout: float) -> str | None:
        """``None`` when the cluster's metadata can be read within ``timeout`` seconds
        (the broker answers the gateway's principal), else why not. Blocking."""
        try:
            with self._lock:
                producer = self._producer
            producer.list_topics(timeout=timeout)
        except KafkaException as exc:
            return exc.args[0].str() if exc.args else "unreachable"
        return None


def _settle_all(outcomes: list[tuple[Sent, int, KafkaError | None]]) -> None:
    for sent, index, err in outcomes:
        try:
            sent.settle(index, None if err is None else
                        Unavailable(f"{sent.topic}: {err.str()}"))
        except Exception:  # noqa: BLE001 - one failing callback must not lose the others
            log.exception("gateway producer: settling a record failed")
