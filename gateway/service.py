"""The ingestion of a batch of events: rules, answers, publishing, in that order.

:class:`IngestService` holds what lives across requests (the answer cache, the events in
flight, the producer) and drives the pure steps of ``gateway.answers``:

1. every event is read and checked (``gateway.checking``: in a worker process of the
   gateway's, so that the CPU work of a 500-event batch neither holds up the event loop,
   which serves every other request, nor shares its core; a request of at most
   :data:`INLINE_EVENTS` events is checked on the loop, where the hop would cost more
   than the work);
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

A request's records are sent together (``KafkaPublisher.send_many``: one
:class:`~gateway.publish.Sent`, each record settled on the loop as its acknowledgement
comes, one future for the whole request). A request that waits for another's event in
flight waits for that request's records to settle (at most ``ack_timeout``), then looks
at its event's own outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
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
    Send,
    Wait,
    plan,
)
from gateway.checking import Checker, check
from gateway.metrics import GatewayMetrics
from gateway.parsing import Batch, RawEvent
from gateway.publish import KafkaPublisher, Sent, Unavailable
from onewindow.codec import Codec
from onewindow.departments import Registry
from onewindow.topics import Topics

__all__ = ["INLINE_EVENTS", "IngestService"]

#: a request of at most this many events is checked on the event loop (well under a
#: millisecond of work); a larger one in a worker thread
INLINE_EVENTS = 16


@dataclass(frozen=True, slots=True)
class _InFlight:
    """An event sent and not settled yet: what is known of it, and its record (the
    ``index``-th of ``sent``)."""

    known: Known
    sent: Sent
    index: int


class IngestService:
    """One per gateway process (``app.state.ingest``)."""

    def __init__(self, *, publisher: KafkaPublisher, topics: Topics, registry: Registry,
                 codec: Codec, cache: AnswerCache, ack_timeout: float,
                 clock: Callable[[], datetime], metrics: GatewayMetrics,
                 uscc_exceptions: Collection[str] = frozenset(),
                 check_processes: int = 0) -> None:
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
        #: where the events of the large requests are checked (``check_processes`` worker
        #: processes; a thread when 0)
        self.checker = Checker(check_processes, departments=self._departments,
                               counters=self._counters, uscc_exceptions=self._uscc_exceptions,
                               codec=codec)

    def known(self, key: EventKey) -> Known | None:
        """An event in flight, or published recently (the answer cache)."""
        flying = self._in_flight.get(key)
        return flying.known if flying is not None else self.cache.get(key)

    async def ingest(self, department: str, events: Batch | list[RawEvent]) -> list[Answer]:
        """The answer for each event of a request from ``department`` (authenticated), in
        request order; :class:`Unavailable` when the broker did not acknowledge every event
        the answers depend on within the bound (then answer 503). ``events``: the body as
        read (a :class:`~gateway.parsing.Batch`, split where it is checked) or its
        events."""
        if isinstance(events, Batch) and events.count <= INLINE_EVENTS:
            events = events.split()
        if isinstance(events, list) and len(events) <= INLINE_EVENTS:
            items, digest = check(department, events, departments=self._departments,
                                  counters=self._counters, now=self._clock(),
                                  codec=self._codec, uscc_exceptions=self._uscc_exceptions)
        else:
            items, digest = await self.checker.check(department, events, self._clock())
        steps = plan(items, request=digest, known=self.known)
        own, others = self._send(department, steps, digest)
        if own is not None or others:
            started = time.perf_counter()
            futures = {sent.done for sent, _i in others}
            if own is not None:
                futures.add(own.done)
            await asyncio.wait(futures, timeout=self._ack_timeout)
            failed = [(sent, i) for sent, i in others if not sent.acknowledged(i)]
            if own is not None:
                failed += [(own, i) for i in own.unacknowledged()]
            if failed:
                errors = [e for sent, i in failed if (e := sent.error(i)) is not None]
                why = str(errors[0]) if errors else \
                    f"no acknowledgement within {self._ack_timeout:g}s"
                waited = len(others) + (len(own) if own is not None else 0)
                raise Unavailable(f"{len(failed)} of {waited} events not "
                                  f"acknowledged: {why}")
            self._metrics.publish_seconds.observe(time.perf_counter() - started)
        answers = [_answer(step) for step in steps.steps]
        outcomes = Counter((a.status, a.reason or "") for a in answers)
        for (status, reason), n in outcomes.items():
            self._metrics.events.labels(department, status, reason).inc(n)
        self._metrics.remembered.set(len(self.cache))
        self._metrics.in_flight.set(len(self._in_flight))  # per request, not per event
        return answers

    def _send(self, department: str, steps: Plan, digest: bytes
              ) -> tuple[Sent | None, list[tuple[Sent, int]]]:
        """Queue the plan's sends (remembered in flight): their :class:`Sent` (None when
        nothing is sent), and the records of other requests the answers wait for, as (their
        request's records, the index). No ``await`` here: see the module docstring."""
        sent: Sent | None = None
        sends = steps.sends
        if sends:
            keys = [r.key for r in sends]
            fingerprints = [r.fingerprint for r in sends]
            in_flight, cache = self._in_flight, self.cache

            def on_record(index: int, error: BaseException | None) -> None:
                # in flight -> the answer cache (acknowledged) or forgotten (failed)
                key = keys[index]
                entry = in_flight.get(key)
                if entry is not None and entry.sent is sent and entry.index == index:
                    del in_flight[key]
                if error is None:
                    cache.put(key, Known(fingerprints[index], digest))

            sent = self.publisher.send_many(
                self._topics.input(department),
                [(r.record.key, r.record.value) for r in sends], on_record)
            for index, key in enumerate(keys):
                in_flight[key] = _InFlight(Known(fingerprints[index], digest, pending=True),
                                           sent, index)
        others = [(entry.sent, entry.index) for entry in
                  (self._in_flight[w.key] for w in steps.waits)]
        self._metrics.in_flight.set(len(self._in_flight))
        return sent, others


def _answer(step: Answer | Send | Wait) -> Answer:
    if isinstance(step, Answer):
        return step
    if isinstance(step, Send):
        r = step.ready
        return Answer(r.index, ACCEPTED, r.event_id, line=r.line)
    return Answer(step.index, step.status, step.key[2], line=step.line)
