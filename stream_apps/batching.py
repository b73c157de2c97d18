"""Batches of a Faust stream that grow with the backlog: `take_batches`.

Faust's `Stream.take_events(max_, within)` gives a batch when `max_` events are in it or
`within` seconds after the previous batch, whichever comes first. In a worker that is
busy, the stream fills the next batch only between batches (while the agent works on one,
the stream waits for it), one event at a time through Faust's per-event machinery; so
within the 50 ms of `BATCH_WITHIN` a batch got some 80 to 300 events while thousands
waited (docs/benchmarks.md, "Case state"). Each batch writes each of its cases' state
once: small batches wrote a case's state about twice as often as batches of 1,000.

`take_batches` is `take_events` (faust-streaming 0.15.3, `faust.streams.Stream
.take_events`: the same buffer, the same processor, the same acks after the agent's loop
body, the same `max_` as a hard limit) with one change: when `within` has passed and a
backlog waits in the stream's own queue (at least a quarter of a batch: fetched,
delivered, not yet in the batch), the batch goes on taking it, `DRAIN_STEP` at a time,
until it is full or the backlog is gone. A stream that keeps up is unchanged: an event
waits at most `within` for its batch (a smaller threshold let batches at 1,000 events/s
run to a second while a few events kept arriving). Offsets are committed exactly as
before: an event is acked only after the loop body that got it has finished.

With ``manual_acks`` (the case-state worker, `stream_apps.app`) the caller acks, and the
next batch fills while the caller still holds one: the caller can hand batch N+1 to the
step process before it has written batch N (`stream_apps.step_process`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from mode.utils.futures import notify

__all__ = ["DRAIN_STEP", "take_batches", "waiting"]

#: How long a batch whose time is up waits at a time for the events already waiting in
#: its stream's queue (seconds).
DRAIN_STEP = 0.005


def _waiting(stream: Any) -> Callable[[], int]:
    """The number of events waiting in ``stream``'s channel queue (0 when it has none)."""
    queue = getattr(stream.channel, "queue", None)
    size = getattr(queue, "qsize", None)
    return size if callable(size) else (lambda: 0)


def waiting(stream: Any) -> int:
    """Events delivered to ``stream`` and waiting in its queue for a batch: a backlog."""
    return _waiting(stream)()


async def take_batches(stream: Any, max_: int, within: float, *,
                       manual_acks: bool = False, backlog: int | None = None
                       ) -> AsyncIterator[list[Any]]:
    """Batches (lists of Faust events) of ``stream``: at most ``max_`` events (> 0), given
    ``within`` seconds (> 0) after the previous batch, or later while at least ``backlog``
    events (default a quarter of ``max_``) wait in the stream's queue (module docstring).
    The events of a batch are acked when the loop body that got it has finished; the
    generator must be the stream's only reader.

    With ``manual_acks``, the caller acks each event itself (``await stream.ack(event)``)
    once it is done with it, possibly batches later; the next batch is collected while the
    caller holds one (whenever it awaits), and a window with no event gives an empty
    batch, so that a caller holding batches gets the turn to finish them."""
    events: list[Any] = []
    buffer_full = asyncio.Event()
    buffer_consumed = asyncio.Event()
    buffer_consuming: asyncio.Future[Any] | None = None
    queued = _waiting(stream)
    least = max(1, max_ // 4 if backlog is None else backlog)
    stream_enable_acks = stream.enable_acks
    channel_it = aiter(stream.channel)

    async def add_to_buffer(value: Any) -> Any:
        # Faust's take_events processor: one event into the batch, then wait while full
        nonlocal buffer_consuming
        try:
            if buffer_consuming is not None:
                try:
                    await buffer_consuming
                finally:
                    buffer_consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("take_batches found current_event is None")
            events.append(event)
            if len(events) >= max_:
                buffer_full.set()
                buffer_consumed.clear()
                await stream.wait(buffer_consumed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream.log.exception("Error adding to take buffer: %r", exc)
            await stream.crash(exc)
        return value

    # acks are ours: an event is acked once the batch that holds it was processed
    stream.enable_acks = False
    stream.add_processor(add_to_buffer)
    stream._enable_passive(channel_it)  # noqa: SLF001 - as take_events does
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(buffer_full, timeout=within)
            # a batch takes the events that already wait for it, when they are a backlog
            while (events and not buffer_full.is_set() and queued() >= least
                   and not stream.should_stop):
                await stream.wait_for_stopped(buffer_full, timeout=DRAIN_STEP)
            if manual_acks:
                batch, events = events, []  # the next batch fills while the caller works
                buffer_full.clear()
                buffer_consumed.set()
                yield batch
            elif events:
                buffer_consuming = stream.loop.create_future()
                try:
                    yield list(events)
                finally:
                    for event in events:
                        await stream.ack(event)
                    events.clear()
                    notify(buffer_consuming)
                    buffer_full.clear()
                    buffer_consumed.set()
    finally:
        stream.enable_acks = stream_enable_acks
        stream._processors.remove(add_to_buffer)  # noqa: SLF001 - as take_events does
