"""The health of a Faust worker: `/healthz` and `/readyz` on its web port
(docs/operations.md, *Health*; the rule: ``onewindow.domain.health``).

Faust's web server runs in a thread of its own (``web_in_thread``,
``stream_apps.faust_base.WEB_SETTINGS``), so the pages answer while the worker's event
loop is blocked, from the times the loop last stamped:

* the loop's turns: a one-second timer of :class:`HealthSensor` (a Faust sensor is a
  service of the app, started with it, before the partitions are assigned);
* records in hand: taken into a stream (``on_stream_event_in``) until acked after the
  agent's batch (``on_stream_event_out``); a rebalance or a measured lag of zero clears
  the count, so a record Faust drops without an ack cannot leave it busy for ever;
* progress: a commit after which Faust's committed offsets differ;
* the lag: ``stream_apps.lag.measure_lag`` reports every measurement, or its failure;
* ready: Faust's "startup finished" (partitions assigned, tables restored); stopping:
  the worker's stop (``stream_apps.faust_base.run``).
"""

from __future__ import annotations

import weakref
from typing import Any

import faust
from faust.sensors import Sensor
from mode import Service

from onewindow.config import Settings
from onewindow.observability.health import ConsumerHealth

__all__ = ["LAG_EVERY", "HealthSensor", "add_health", "health_of"]

#: Seconds between two lag measurements of a worker (the apps' lag timers).
LAG_EVERY = 10.0

_HEALTH: weakref.WeakKeyDictionary[faust.App, ConsumerHealth] = weakref.WeakKeyDictionary()


class HealthSensor(Sensor):
    """Stamps ``health`` from Faust's sensor hooks and a one-second timer on the loop."""

    def __init__(self, app: faust.App, health: ConsumerHealth, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.health = health
        self._committed: dict[Any, int] = {}

    @Service.timer(1.0)
    async def _beat(self) -> None:
        self.health.beat()

    async def on_start(self) -> None:
        self.health.beat()

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        self.health.taken()
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        self.health.finished()

    def on_rebalance_start(self, app: Any) -> dict[Any, Any]:
        self.health.clear_hands()
        return {}

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        committed = self.app.monitor.tp_committed_offsets
        if committed and committed != self._committed:
            self._committed = dict(committed)
            self.health.progressed()


def add_health(app: faust.App, settings: Settings) -> ConsumerHealth:
    """Give ``app`` its health: the sensor, and the pages `/healthz` and `/readyz` (200
    or 503 with a JSON reason). Returns the :class:`ConsumerHealth`."""
    health = ConsumerHealth(stall=settings.stall_seconds, lag_every=LAG_EVERY)
    _HEALTH[app] = health
    app.sensors.add(HealthSensor(app, health))

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        verdict = health.liveness()
        return web.json(verdict.body(), status=200 if verdict.ok else 503)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        verdict = health.readiness()
        return web.json(verdict.body(), status=200 if verdict.ok else 503)

    return health


def health_of(app: Any) -> ConsumerHealth | None:
    """The health :func:`add_health` gave ``app`` (None: an app made without it)."""
    try:
        return _HEALTH.get(app)
    except TypeError:  # not weakly referenceable: not a Faust app
        return None
