"""Prometheus metrics of the gateway (one registry per app, no globals), served at
``GET /metrics``. Label values are bounded: ``department`` is a registered code or ``-``
(a request that did not authenticate), ``outcome`` an HTTP status or an event answer,
``reason`` a reason code of domain.md section 2 (empty unless rejected)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["GatewayMetrics"]

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "onewindow_gateway_requests_total",
            "Ingestion requests by department and outcome (the HTTP status)",
            ["department", "outcome"], registry=r)
        self.uploads = Counter(
            "onewindow_gateway_uploads_total",
            "Material uploads by department and outcome (the HTTP status)",
            ["department", "outcome"], registry=r)
        self.events = Counter(
            "onewindow_gateway_events_total",
            "Events answered, by department, outcome (accepted, duplicate, rejected) and "
            "reason", ["department", "outcome", "reason"], registry=r)
        self.request_seconds = Histogram(
            "onewindow_gateway_request_seconds", "Time to answer a request, by route",
            ["route"], buckets=_SECONDS, registry=r)
        self.received_bytes = Counter(
            "onewindow_gateway_received_bytes_total",
            "Request body bytes read, by department", ["department"], registry=r)
        self.publish_seconds = Histogram(
            "onewindow_gateway_publish_seconds",
            "From sending a request's events to the broker's last acknowledgement",
            buckets=_SECONDS, registry=r)
        self.unavailable = Counter(
            "onewindow_gateway_unavailable_total",
            "Requests answered 503: the broker did not acknowledge in time",
            ["department"], registry=r)
        self.remembered = Gauge(
            "onewindow_gateway_remembered_events",
            "Accepted events remembered for retries (the answer cache)", registry=r)
        self.in_flight = Gauge(
            "onewindow_gateway_in_flight_events",
            "Events sent and not yet acknowledged", registry=r)
