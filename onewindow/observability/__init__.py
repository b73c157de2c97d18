"""Observability shared by every long-running process: build info, process metrics,
consumer lag (``onewindow.observability.lag``) and the supervisor's SLA gauges read from
the read model (``onewindow.observability.supervisor``).

Every process keeps its own :class:`~prometheus_client.CollectorRegistry` (no globals);
:func:`instrument` adds what every ``/metrics`` page must show besides its own metrics::

    onewindow_build_info{version="0.1.0",python="3.11.2"} 1
    process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
    python_info{implementation,major,minor,patchlevel,version} 1
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Gauge, PlatformCollector, ProcessCollector

from onewindow import __version__
from onewindow.observability.lag import ConsumerLag, confluent_lag

__all__ = ["TEXT_CONTENT_TYPE", "ConsumerLag", "build_info", "confluent_lag", "instrument",
           "register_process_metrics"]

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
