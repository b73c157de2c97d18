"""A consumer's health signals (onewindow.observability.health) and the server the sink
uses for them: stamps, verdicts, the gauge, `/healthz` and `/readyz` over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from onewindow.kafka_local import free_port
from onewindow.observability.health import HEALTHY_METRIC, ConsumerHealth, serve_http
from onewindow.observability.lag import ConsumerLag


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ready_health(clock: Clock, stall: float = 3.0) -> ConsumerHealth:
    h = ConsumerHealth(stall=stall, lag_every=1.0, clock=clock)
    h.beat()
    h.ready()
    h.lag_measured(0)
    return h


def test_records_in_hand_and_a_turning_loop() -> None:
    clock = Clock()
    h = ready_health(clock)
    h.taken(10)
    clock.now += 2
    h.beat()
    h.finished(4)  # six still in hand: busy counts from this finish
    clock.now += 2.5
    h.beat()
    h.lag_measured(6)
    assert h.liveness().ok
    clock.now += 1
    h.beat()
    h.lag_measured(6)
    assert (h.liveness().reason, h.liveness().detail) == (
        "busy", "records in hand for 4s without one finished")
    h.finished(6)
    assert h.liveness().ok and h.busy_since is None


def test_a_lag_of_zero_or_a_rebalance_empties_the_hands() -> None:
    clock = Clock()
    h = ready_health(clock)
    h.taken(3)  # e.g. dropped by a rebalance without an ack
    h.lag_measured(0)  # every record read is committed: none can be in hand
    assert h.busy_since is None
    h.taken(2)
    h.clear_hands()
    h.finished(1)  # an ack after the reset does not go below zero
    assert h.busy_since is None


def test_stalled_until_committed_offsets_advance() -> None:
    clock = Clock()
    h = ready_health(clock)
    h.lag_measured(5)  # lag appears at 100
    for _ in range(4):
        clock.now += 1
        h.beat()
        h.lag_measured(5)
    assert h.liveness().reason == "stalled"
    assert h.readiness().reason == "stalled"
    h.progressed()
    assert h.liveness().ok
    h.lag_measured(0)
    clock.now += 60
    h.beat()
    h.lag_measured(0)
    assert h.liveness().ok  # idle for a minute, nothing waiting


def test_a_failing_lag_measurement_shows_and_then_drops_the_gauge() -> None:
    clock = Clock()
    h = ready_health(clock)
    registry = CollectorRegistry()
    lag = ConsumerLag(registry)
    lag.watch(h)
    lag.watch(h)  # once only
    lag.update("g", {("t", 0): 7})
    clock.now += 4.5
    h.beat()
    h.lag_failed("KafkaConnectionError: broker gone")
    assert h.liveness().ok and not h.lag_stale()  # within stall + 2 measurements
    clock.now += 1
    h.beat()
    assert h.lag_stale()
    assert h.liveness().reason == "lag_unknown"
    assert "broker gone" in h.liveness().detail
    assert registry.get_sample_value(HEALTHY_METRIC) == 0
    lag.forget("g")
    assert registry.get_sample_value("onewindow_consumer_lag",
                                     {"group": "g", "topic": "t", "partition": "0"}) is None
    h.lag_measured(0)
    assert registry.get_sample_value(HEALTHY_METRIC) == 1


def test_answers_and_a_stop() -> None:
    clock = Clock()
    h = ConsumerHealth(stall=3.0, lag_every=1.0, clock=clock)
    assert h.answer("/healthz") == (200, b'{"status": "ok"}')
    status, body = h.answer("/readyz")  # type: ignore[misc]
    assert status == 503 and json.loads(body)["reason"] == "starting"
    assert h.answer("/metrics") is None
    h.beat()
    h.ready()
    h.lag_measured(0)
    assert h.answer("/readyz") == (200, b'{"status": "ok"}')
    h.stopping()
    assert h.answer("/readyz")[0] == 503  # type: ignore[index]
    clock.now += 3.5
    assert json.loads(h.answer("/healthz")[1])["reason"] == "stopping"  # type: ignore[index]
    with pytest.raises(ValueError, match="stall"):
        ConsumerHealth(stall=0, lag_every=1.0)


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers["Content-Type"]


def test_the_sink_server_answers_health_from_its_thread_and_metrics_elsewhere() -> None:
    clock = Clock()
    h = ready_health(clock)
    registry = CollectorRegistry()
    Counter("onewindow_sink_batches_total", "batches", registry=registry).inc()
    registry.register(h.collector())
    port = free_port()
    server = serve_http("127.0.0.1", port, registry, h)
    try:
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/healthz") == (200, b'{"status": "ok"}', "application/json")
        assert _get(f"{base}/readyz")[0] == 200
        for path in ("/metrics", "/"):
            status, body, _ = _get(base + path)
            assert status == 200 and b"onewindow_sink_batches_total 1.0" in body
            assert f"{HEALTHY_METRIC} 1.0".encode() in body
        clock.now += 10  # the poll loop stopped turning (nobody stamps any more)
        status, body, _ = _get(f"{base}/healthz")
        assert status == 503
        assert json.loads(body) == {"status": "unavailable", "reason": "loop_blocked",
                                    "detail": "the loop has not turned for 10s"}
        assert _get(f"{base}/readyz")[0] == 503
        assert f"{HEALTHY_METRIC} 0.0".encode() in generate_latest(registry)
    finally:
        server.shutdown()
        server.server_close()
