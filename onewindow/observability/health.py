"""The health of a long-running consumer, stamped by the process and served over HTTP.

:class:`ConsumerHealth` keeps the times the rule of :mod:`onewindow.domain.health` judges
(the loop's turns, records in hand, committed progress, the last lag measurement, the
start and the stop), stamped by the process's own loop, and answers `/healthz` and
`/readyz` from another thread: a loop that is blocked cannot answer for itself, so the
answer is computed from how long ago the loop last stamped. Its collector adds
``onewindow_consumer_healthy`` (1 when `/healthz` would answer 200) to a registry, so
Prometheus sees a stuck consumer on the same scrape as its lag.

Stamping is a few attribute writes (the floats are replaced whole, which is atomic in
CPython): the stream workers stamp from their event loop, the sink from its poll loop,
and the HTTP thread only reads. :func:`serve_http` is the sink's server (`/metrics`,
`/healthz`, `/readyz` in a thread); the Faust workers serve the same pages from Faust's
web server, run in its own thread (``stream_apps.faust_base``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from onewindow.domain.health import Signals, Verdict, liveness, readiness

__all__ = ["HEALTHY_METRIC", "ConsumerHealth", "serve_http"]

HEALTHY_METRIC = "onewindow_consumer_healthy"


class ConsumerHealth:
    """The health signals of one consumer process.

    ``stall``: ``ONEWINDOW_STALL_SECONDS``; ``lag_every``: seconds between the
    process's lag measurements; ``clock``: the monotonic clock (tests pass their own).
    """

    def __init__(self, *, stall: float, lag_every: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if stall <= 0:
            raise ValueError(f"stall must be positive, not {stall}")
        self.stall = stall
        self.lag_every = lag_every
        self.clock = clock
        self.started_at = clock()
        self.ready_at: float | None = None
        self.loop_at: float | None = None
        self.busy_since: float | None = None
        self.progress_at: float | None = None
        self.lag: int | None = None
        self.lag_at: float | None = None
        self.lag_since: float | None = None
        self.lag_error: str | None = None
        self.stopping_since: float | None = None
        self._in_hand = 0

    # ------------------------------------------------------------------ stamps

    def beat(self) -> None:
        """The loop turned."""
        self.loop_at = self.clock()

    def ready(self) -> None:
        """Partitions assigned and state restored: from now on the lag must be measured."""
        if self.ready_at is None:
            self.ready_at = self.clock()

    def taken(self, n: int = 1) -> None:
        """``n`` records taken from the broker into the consumer's hands."""
        if self._in_hand <= 0:
            self.busy_since = self.clock()
        self._in_hand += n

    def finished(self, n: int = 1) -> None:
        """``n`` records of those in hand finished (processed, or written)."""
        self._in_hand = max(0, self._in_hand - n)
        self.busy_since = self.clock() if self._in_hand else None

    def clear_hands(self) -> None:
        """Nothing is in hand any more (a rebalance dropped the buffers, or every record
        read is committed)."""
        self._in_hand = 0
        self.busy_since = None

    def progressed(self) -> None:
        """Committed offsets advanced."""
        self.progress_at = self.clock()

    def lag_measured(self, total: int) -> None:
        """A lag measurement succeeded: ``total`` records waiting over the partitions this
        process owns. Zero means every record read is committed: none is in hand."""
        now = self.clock()
        if total > 0 and not self.lag:
            self.lag_since = now
        elif total <= 0:
            self.lag_since = None
            self.clear_hands()
        self.lag, self.lag_at, self.lag_error = total, now, None

    def lag_failed(self, error: str) -> None:
        """A lag measurement failed (the broker away, a rebalance): the last value ages."""
        self.lag_error = error

    def lag_stale(self) -> bool:
        """Whether the last lag measurement is too old to show (the limit of
        ``lag_unknown``): the process then drops its lag gauge rather than freeze it."""
        last = self.lag_at if self.lag_at is not None else self.ready_at
        return last is not None and self.clock() - last > self.stall + 2 * self.lag_every

    def stopping(self) -> None:
        """Asked to stop."""
        if self.stopping_since is None:
            self.stopping_since = self.clock()

    # ------------------------------------------------------------------ verdicts

    def signals(self) -> Signals:
        return Signals(started_at=self.started_at, ready_at=self.ready_at,
                       loop_at=self.loop_at, busy_since=self.busy_since,
                       progress_at=self.progress_at, lag=self.lag, lag_at=self.lag_at,
                       lag_since=self.lag_since, lag_error=self.lag_error,
                       stopping_since=self.stopping_since)

    def liveness(self) -> Verdict:
        return liveness(self.signals(), self.clock(), stall=self.stall,
                        lag_every=self.lag_every)

    def readiness(self) -> Verdict:
        return readiness(self.signals(), self.clock(), stall=self.stall,
                         lag_every=self.lag_every)

    def answer(self, path: str) -> tuple[int, bytes] | None:
        """`/healthz` or `/readyz`: (HTTP status, JSON body); None for another path."""
        if path == "/healthz":
            verdict = self.liveness()
        elif path == "/readyz":
            verdict = self.readiness()
        else:
            return None
        return (200 if verdict.ok else 503), json.dumps(verdict.body()).encode()

    def collector(self) -> Collector:
        """``onewindow_consumer_healthy``: 1 when `/healthz` answers 200, else 0."""
        return _HealthCollector(self)


class _HealthCollector(Collector):
    def __init__(self, health: ConsumerHealth) -> None:
        self.health = health

    def describe(self) -> Iterator[Any]:
        return iter(())

    def collect(self) -> Iterator[Any]:
        yield GaugeMetricFamily(HEALTHY_METRIC,
                                "1 when the consumer is alive and progressing (its /healthz "
                                "answers 200), 0 when stuck, stalled with lag, or its lag "
                                "cannot be measured (docs/operations.md, Health)",
                                value=1 if self.health.liveness().ok else 0)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


def serve_http(host: str, port: int, registry: CollectorRegistry,
               health: ConsumerHealth) -> WSGIServer:
    """`/healthz` and `/readyz` from ``health``, the metrics of ``registry`` at every other
    path (as prometheus_client's own server), on ``host:port``, served by a daemon thread
    (so a stuck consumer still answers). Returns the server (``shutdown()`` stops it).
    Raises ``OSError`` when the port is taken."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = health.answer(environ.get("PATH_INFO", ""))
        if answer is None:
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        status, body = answer
        start_response(f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                       [("Content-Type", "application/json"),
                        ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
        return [body]

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server
