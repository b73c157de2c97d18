"""Consumer lag of a Faust worker: ``onewindow_consumer_lag{group,topic,partition}``.

Measured from a timer (every 10 s): the broker's high watermark of each input partition
this worker owns minus the group's committed offset there (Faust's monitor records every
commit; before the first commit of a partition, the consumer's position). Changelog and
other internal topics are left out: only the agent's input topics count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from onewindow.observability.lag import ConsumerLag, faust_lags

__all__ = ["measure_lag"]

log = logging.getLogger(__name__)


async def measure_lag(app: Any, lag: ConsumerLag, topics: Iterable[str]) -> None:
    """Update ``lag`` for ``app``'s consumer group; never raises (a metric is not worth
    stopping a worker for)."""
    wanted = set(topics)
    try:
        consumer = app.consumer
        tps = [tp for tp in consumer.assignment() if tp.topic in wanted]
        if not tps:
            lag.update(app.conf.id, {})
            return
        highwaters = await consumer.highwaters(*tps)
        committed = dict(app.monitor.tp_committed_offsets or {})
        positions: dict[Any, int | None] = {}
        for tp in tps:
            off = committed.get(tp)
            positions[tp] = off if off is not None else await consumer.position(tp)
        lag.update(app.conf.id, faust_lags(highwaters, positions, wanted))
    except Exception as exc:  # noqa: BLE001 - rebalancing, broker away: try next tick
        log.debug("consumer lag not measured: %r", exc)
