"""Prometheus metrics of the counter app (one registry per app, no globals): HTTP requests
by route template. ``create_app`` adds build info, process metrics and the supervisor's
gauges to the same registry; ``GET /metrics`` serves it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["CounterMetrics"]


class CounterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("onewindow_http_requests_total", "HTTP requests by route",
                                ["method", "route", "status"], registry=self.registry)
        self.seconds = Histogram("onewindow_http_request_seconds", "HTTP request duration",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5, 1, 2.5))
