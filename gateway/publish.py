"""The gateway's producer: one idempotent confluent-kafka producer, signed in as
``svc-gateway``, whose acknowledgements resolve asyncio futures.

:class:`KafkaPublisher` is the publish path of every gateway endpoint (the events, and the
materials upload to come): ``send(topic, key, value)`` queues one record and returns a
future that completes when the broker has acknowledged it (``acks=all``) or fails with
:class:`Unavailable` when it cannot be delivered (the local queue is full, the broker
refused it, or no acknowledgement came within librdkafka's ``message.timeout.ms``). A
thread polls the producer, so acknowledgements arrive while requests wait; it hands each
outcome to the event loop that sent the record.

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
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from onewindow.errors import DeliveryError
from onewindow.inputs import INPUT_PRODUCER_CONFIG

__all__ = ["MESSAGE_TIMEOUT_MS", "KafkaPublisher", "Unavailable"]

log = logging.getLogger("onewindow.gateway")

#: how long librdkafka keeps trying one record before it fails it (2 minutes)
MESSAGE_TIMEOUT_MS = 120_000


class Unavailable(DeliveryError):
    """A record was not acknowledged: the broker is unreachable or refused it."""


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
            return int(self._producer.flush(timeout))

    def _poll(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                producer = self._producer
            try:
                producer.poll(0.1)
            except Exception:  # noqa: BLE001 - a callback failing must not end the thread
                log.exception("gateway producer: a delivery callback failed")
            if self._fatal:
                self._renew()

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

    def send(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[None]:
        """Queue one record; the future completes on the broker's acknowledgement or fails
        with :class:`Unavailable`. Call from the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def settle(err: KafkaError | None, _msg: Message) -> None:
            error = None if err is None else Unavailable(f"{topic}: {err.str()}")
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, future, error)

        try:
            with self._lock:
                self._producer.produce(topic, value=value, key=key, on_delivery=settle)
        except BufferError:
            future.set_exception(Unavailable("the producer's queue is full"))
        except KafkaException as exc:
            future.set_exception(Unavailable(f"{topic}: {exc.args[0].str()}"))
        return future

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


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # the request stopped waiting and cancelled it
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
