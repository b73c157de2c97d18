"""Consumer lag per group, topic and partition: ``onewindow_consumer_lag``.

Lag is the high watermark of a partition minus the consumer's position in it: the
records already on the broker that the group has not yet processed. A Faust worker
measures it from its consumer (``stream_apps/lag.py``); a confluent-kafka process calls
:func:`confluent_lag` from its poll loop (it blocks on the broker: call it every few
seconds, not per message).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import TopicPartition
from prometheus_client import CollectorRegistry, Gauge

__all__ = ["ConsumerLag", "Every", "confluent_lag", "faust_lags", "lag_of"]

LAG_METRIC = "onewindow_consumer_lag"


class ConsumerLag:
    """The ``onewindow_consumer_lag{group,topic,partition}`` gauge of one registry.

    :meth:`update` replaces the partitions of a group: a partition this process no longer
    owns (after a rebalance) stops being reported instead of freezing at its last value;
    :meth:`forget` drops a group whose lag can no longer be measured.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._watched: set[int] = set()
        self.gauge = Gauge(LAG_METRIC,
                           "Records on the broker not yet processed by the consumer group "
                           "(high watermark - position), per partition this process owns",
                           ["group", "topic", "partition"], registry=registry)
        self._owned: dict[str, set[tuple[str, int]]] = {}

    def update(self, group: str, lags: Mapping[tuple[str, int], int]) -> None:
        now = set(lags)
        for topic, partition in self._owned.get(group, set()) - now:
            try:
                self.gauge.remove(group, topic, str(partition))
            except KeyError:
                pass
        for (topic, partition), lag in lags.items():
            self.gauge.labels(group, topic, str(partition)).set(max(0, int(lag)))
        self._owned[group] = now

    def forget(self, group: str) -> None:
        """Stop reporting ``group`` (its lag is unknown: a gap, not a frozen value)."""
        self.update(group, {})

    def watch(self, health: Any) -> None:
        """Add ``health``'s collector (``onewindow_consumer_healthy``,
        ``onewindow.observability.health``) to this gauge's registry, once."""
        if id(health) not in self._watched:
            self._watched.add(id(health))
            self.registry.register(health.collector())


def lag_of(high: int, position: int | None, low: int = 0) -> int:
    """``high - position``; a consumer with no position yet (-1001, None) will start at
    the low watermark (``auto.offset.reset=earliest``), so everything after it is lag."""
    if position is None or position < 0:
        position = low
    return max(0, high - position)


def confluent_lag(consumer: Any, *, use_committed: bool = False,
                  timeout: float = 5.0) -> dict[tuple[str, int], int]:
    """Lag of every partition assigned to a confluent-kafka ``Consumer``.

    ``use_committed``: measure from the group's committed offsets instead of the local
    position (for processes that commit to Kafka; the sink keeps its offsets in SQL and
    measures from its position)."""
    parts = [TopicPartition(tp.topic, tp.partition) for tp in consumer.assignment()]
    if not parts:
        return {}
    where = consumer.committed(parts, timeout=timeout) if use_committed \
        else consumer.position(parts)
    out: dict[tuple[str, int], int] = {}
    for tp in where:
        low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition),
                                                   timeout=timeout, cached=False)
        out[(tp.topic, tp.partition)] = lag_of(high, tp.offset, low)
    return out


class Every:
    """True at most once per ``seconds`` (rate-limits a lag query inside a poll loop)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = float("-inf")

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.seconds:
            self._last = now
            return True
        return False


def faust_lags(highwaters: Mapping[Any, int | None], positions: Mapping[Any, int | None],
               topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """Lag per (topic, partition) from Faust-style TP-keyed maps, only for ``topics``."""
    wanted = set(topics)
    out: dict[tuple[str, int], int] = {}
    for tp, high in highwaters.items():
        if tp.topic not in wanted or high is None:
            continue
        out[(tp.topic, tp.partition)] = lag_of(high, positions.get(tp))
    return out
