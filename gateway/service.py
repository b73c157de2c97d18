"""The ingestion of a batch of events: rules, answers, publishing, in that order.

:class:`IngestService` holds what lives across requests (the answer cache, the events in
flight, the producer) and drives the pure steps of ``gateway.answers``:

1. every event is read and checked (in a worker thread: the CPU work of a 500-event batch
   must not hold up the event loop, which serves every other request);
2. the plan decides, per event, ``rejected`` / ``duplicate`` / send / wait for the same
   event already in flight;
3. the events to send are queued to the caller's topic (``dept.<code>.events``) and
   remembered as in flight, then the request waits for the broker's acknowledgements, at
   most ``ack_timeout`` seconds. Only when every event it sent or waits for is
   acknowledged does it answer (200); otherwise :class:`~gateway.publish.Unavailable`
   (503), and nothing was reported ``accepted``.

An acknowledgement moves its event from in flight to the answer cache, whether or not the
request still waits: a record acknowledged after its request was answered 503 is known
when the request is retried, and is not sent twice. A record that fails is forgotten, so
the retry sends it again. Steps 2 and 3 run without an ``await`` between them, so two
requests carrying the same event never both send it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from gateway.answers import (
    ACCEPTED,
    Answer,
    AnswerCache,
    EventKey,
    Known,
    Plan,
    Ready,
    Send,
    Wait,
    plan,
    prepare,
    request_digest,
)
from gateway.metrics import GatewayMetrics
from gateway.parsing import RawEvent
from gateway.publish import KafkaPublisher, Unavailable
from onewindow.codec import Codec
from onewindow.departments import Registry
from onewindow.topics import Topics

__all__ = ["IngestService"]


@dataclass(frozen=True, slots=True)
class _InFlight:
    known: Known
    future: asyncio.Future[None]


class IngestService:
    """One per gateway process (``app.state.ingest``)."""

    def __init__(self, *, publisher: KafkaPublisher, topics: Topics, registry: Registry,
                 codec: Codec, cache: AnswerCache, ack_timeout: float,
                 clock: Callable[[], datetime], metrics: GatewayMetrics,
                 uscc_exceptions: Collection[str] = frozenset()) -> None:
        self.publisher = publisher
        self._topics = topics
        self._departments = registry.codes
        self._counters = registry.counter_codes
        self._uscc_exceptions = frozenset(uscc_exceptions)
        self._codec = codec
        self.cache = cache
        self._ack_timeout = ack_timeout
        self._clock = clock
        self._metrics = metrics
        self._in_flight: dict[EventKey, _InFlight] = {}

    def known(self, key: EventKey) -> Known | None:
        """An event in flight, or published recently (the answer cache)."""
        flying = self._in_flight.get(key)
        return flying.known if flying is not None else self.cache.get(key)

    def _prepare(self, department: str, raws: list[RawEvent]
                 ) -> tuple[list[Ready | Answer], bytes]:
        items = prepare(raws, department=department, departments=self._departments,
                        counters=self._counters, now=self._clock(), codec=self._codec,
                        uscc_exceptions=self._uscc_exceptions)
        return items, request_digest(department, items, raws)

    def _track(self, key: EventKey, known: Known, future: asyncio.Future[None]) -> None:
        entry = _InFlight(known, future)
        self._in_flight[key] = entry

        def settled(f: asyncio.Future[None]) -> None:
            if self._in_flight.get(key) is entry:
                del self._in_flight[key]
            if not f.cancelled() and f.exception() is None:
                self.cache.put(key, Known(known.fingerprint, known.request))
            self._metrics.in_flight.set(len(self._in_flight))

        future.add_done_callback(settled)

    async def ingest(self, department: str, raws: list[RawEvent]) -> list[Answer]:
        """The answer for each event of a request from ``department`` (authenticated), in
        request order; :class:`Unavailable` when the broker did not acknowledge every event
        the answers depend on within the bound (then answer 503)."""
        items, digest = await asyncio.to_thread(self._prepare, department, raws)
        steps = plan(items, request=digest, known=self.known)
        waiting = self._send(department, steps, digest)
        if waiting:
            started = time.perf_counter()
            done, pending = await asyncio.wait(waiting, timeout=self._ack_timeout)
            failed = [f for f in done if f.exception() is not None]
            if pending or failed:
                why = str(failed[0].exception()) if failed else \
                    f"no acknowledgement within {self._ack_timeout:g}s"
                raise Unavailable(f"{len(pending) + len(failed)} of {len(waiting)} events "
                                  f"not acknowledged: {why}")
            self._metrics.publish_seconds.observe(time.perf_counter() - started)
        answers = [_answer(step) for step in steps.steps]
        for a in answers:
            self._metrics.events.labels(department, a.status, a.reason or "").inc()
        self._metrics.remembered.set(len(self.cache))
        return answers

    def _send(self, department: str, steps: Plan, digest: bytes
              ) -> list[asyncio.Future[None]]:
        """Queue the plan's sends (remembered in flight) and gather every future the
        answers wait for. No ``await`` here: see the module docstring."""
        topic = self._topics.input(department)
        waiting: list[asyncio.Future[None]] = []
        for step in steps.steps:
            if isinstance(step, Send):
                ready = step.ready
                future = self.publisher.send(topic, ready.record.key, ready.record.value)
                self._track(ready.key, Known(ready.fingerprint, digest, pending=True), future)
                waiting.append(future)
            elif isinstance(step, Wait):
                waiting.append(self._in_flight[step.key].future)
        self._metrics.in_flight.set(len(self._in_flight))
        return waiting


def _answer(step: Answer | Send | Wait) -> Answer:
    if isinstance(step, Answer):
        return step
    if isinstance(step, Send):
        r = step.ready
        return Answer(r.index, ACCEPTED, r.event_id, line=r.line)
    return Answer(step.index, step.status, step.key[2], line=step.line)
