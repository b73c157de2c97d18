"""Observability shared by every long-running process: build info, process metrics,
consumer lag (``onewindow.observability.lag``) and the supervisor's SLA gauges read from
the read model (``onewindow.observability.supervisor``).

Every process keeps its own :class:`~prometheus_client.CollectorRegistry` (no globals);
:func:`instrument` adds what every ``/metrics`` page must show besides its own metrics::

    onewindow_build_info{version="0.1.0",python="3.11.2"} 1
    process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
    python_info{implementation,major,minor,patchlevel,version} 1

Metric names follow one scheme (docs/operations.md, *Metric names*):
``onewindow_<concept>_<what>[_<unit>][_total]``, base units, one prefix per concept
(:data:`METRIC_CONCEPTS`); the same thing measured by several processes has one name and
is told apart by Prometheus's ``job`` label (``onewindow_consumer_lag`` of both workers
and the sink, ``onewindow_stream_batch_*`` of both workers).
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Gauge, PlatformCollector, ProcessCollector

from onewindow import __version__
from onewindow.observability.lag import ConsumerLag, confluent_lag

__all__ = ["METRIC_CONCEPTS", "TEXT_CONTENT_TYPE", "ConsumerLag", "build_info",
           "concept_of", "confluent_lag", "instrument", "register_process_metrics"]

#: The concepts a metric name says after ``onewindow_``, each with its one prefix, and
#: what falls under it. A new metric takes one of these or adds a concept here (and in
#: docs/operations.md); ``tests/unit/ops/test_metric_names.py`` and
#: ``tests/integration/test_metrics_pages.py`` hold every page to it.
METRIC_CONCEPTS: dict[str, str] = {
    "build": "the build a process runs (every process)",
    "consumer": "a Kafka consumer: its lag by group, topic, partition; its health "
                "(both workers, the sink)",
    "events": "the case-state worker's input events by outcome",
    "task_updates": "TaskUpdated events applied from outside their task's department",
    "uscc_exceptions": "events applied through the list of known USCC exceptions",
    "deadlines": "deadlines computed provisionally or re-published by calendar checks",
    "calendar": "the working-day calendar a worker computes with, and its checks",
    "stream": "a stream worker's batches (both workers, by step) and the age of what it "
              "applies",
    "table": "a stream worker's RocksDB tables: keys, memory, bytes on disk",
    "materials": "materials: read, linked, indexed, avoidable (the materials worker; "
                 "today's avoidable submissions from the read model)",
    "cases": "open, overdue and due-soon cases, from the read model",
    "sink": "the sink's records, rows, batches and commits",
    "read_model": "the read model: freshness at commit (the sink), reachability (the "
                  "counter)",
    "http": "the counter app's HTTP requests",
    "gateway": "the ingestion gateway's requests, events, uploads and publishing",
}


def concept_of(name: str) -> str | None:
    """The concept (a key of :data:`METRIC_CONCEPTS`) of the metric ``name``
    (``onewindow_materials_links_total`` -> ``materials``); None for a name outside the
    scheme (another prefix, an unknown concept, a bare ``onewindow_<concept>``)."""
    if not name.startswith("onewindow_"):
        return None
    rest = name[len("onewindow_"):]
    found = [c for c in METRIC_CONCEPTS if rest.startswith(c + "_")]
    return max(found, key=len) if found else None

#: Content-Type of the text exposition ``generate_latest`` writes (format 0.0.4). Pass it
#: as a header: aiohttp (Faust's web server) refuses a ``content_type`` that names a
#: charset, which is why ``web.bytes(..., content_type=CONTENT_TYPE_LATEST)`` fails.
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def build_info(registry: CollectorRegistry) -> Gauge:
    """``onewindow_build_info{version,python} 1``: which build a process runs."""
    g = Gauge("onewindow_build_info", "Build of this process (always 1)",
              ["version", "python"], registry=registry)
    g.labels(__version__, platform.python_version()).set(1)
    return g


def register_process_metrics(registry: CollectorRegistry) -> None:
    """The standard ``process_*`` (CPU, memory, file descriptors, start time; Linux
    /proc) and ``python_info`` collectors, on ``registry`` instead of the global one."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)


def instrument(registry: CollectorRegistry) -> CollectorRegistry:
    """Build info and process metrics on ``registry``; returns it."""
    build_info(registry)
    register_process_metrics(registry)
    return registry
