"""Consumer lag of a Faust worker: ``onewindow_consumer_lag{group,topic,partition}``.

Measured from a timer (every 10 s): the broker's high watermark of each input partition
this worker owns minus the group's committed offset there (Faust's monitor records every
commit; before the first commit of a partition, the consumer's position). Changelog and
other internal topics are left out: only the agent's input topics count.

Each measurement, or its failure, is reported to the worker's health
(``stream_apps.health``): a lag that cannot be read for longer than the stall limit makes
`/healthz` answer 503 (``lag_unknown``), and the gauge is dropped then instead of showing
its last value for ever (docs/operations.md, *Health*).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from onewindow.observability.lag import ConsumerLag, faust_lags
from stream_apps.health import health_of

__all__ = ["measure_lag"]

log = logging.getLogger(__name__)


def done_up_to(committed: int | None, position: int | None, high: int | None,
               last_read: int | None) -> int | None:
    """The offset up to which a partition counts as processed, for its lag.

    The committed offset, normally. But a transaction's commit or abort marker takes an
    offset that no consumer ever receives: after the last record of a transaction is
    processed and committed, the high watermark stays one (or more) past the committed
    offset for ever. When every record the consumer has read is committed (`committed`
    past `last_read`) and its fetch position has reached the high watermark, only such
    markers remain: the partition is caught up (interfaces.md, Kafka: transaction markers
    never show as lag)."""
    if committed is None:
        return position
    if (position is not None and high is not None and position >= high
            and (last_read is None or committed > last_read)):
        return max(committed, position)
    return committed


async def measure_lag(app: Any, lag: ConsumerLag, topics: Iterable[str]) -> None:
    """Update ``lag`` for ``app``'s consumer group, and report it to the app's health
    (whose ``onewindow_consumer_healthy`` joins ``lag``'s registry); never raises (a
    metric is not worth stopping a worker for)."""
    wanted = set(topics)
    health = health_of(app)
    if health is not None:
        lag.watch(health)
    try:
        consumer = app.consumer
        tps = [tp for tp in consumer.assignment() if tp.topic in wanted]
        if not tps:
            lag.update(app.conf.id, {})
            if health is not None:
                health.lag_measured(0)
            return
        highwaters = await consumer.highwaters(*tps)
        committed = dict(app.monitor.tp_committed_offsets or {})
        # Faust's own record of the last offset its fetcher handed to the streams
        read = getattr(consumer, "_read_offset", {})
        positions: dict[Any, int | None] = {}
        for tp in tps:
            positions[tp] = done_up_to(committed.get(tp), await consumer.position(tp),
                                       highwaters.get(tp), read.get(tp))
        lags = faust_lags(highwaters, positions, wanted)
        lag.update(app.conf.id, lags)
        if health is not None:
            health.lag_measured(sum(lags.values()))
    except Exception as exc:  # noqa: BLE001 - rebalancing, broker away: try next tick
        log.debug("consumer lag not measured: %r", exc)
        if health is not None:
            health.lag_failed(f"{type(exc).__name__}: {exc}"[:200])
            if health.lag_stale():
                lag.forget(app.conf.id)
