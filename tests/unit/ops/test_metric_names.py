"""Metric names follow one scheme (onewindow.observability.METRIC_CONCEPTS,
docs/operations.md "Metric names"): every family each process registers, and every
``onewindow_`` name the alert rules and the Grafana dashboard query, has a known concept;
one lag metric for every consumer; build info and process metrics on every registry.

The pages as the running processes serve them (and promtool's lint of each) are
tests/integration/test_metrics_pages.py."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from counter.metrics import CounterMetrics
from gateway.metrics import GatewayMetrics
from onewindow.calendar_source import load_calendar
from onewindow.observability import METRIC_CONCEPTS, concept_of, instrument
from onewindow.observability.health import ConsumerHealth
from onewindow.observability.supervisor import SupervisorCollector
from onewindow.read_model.engine import make_engine
from onewindow.read_model.tables import metadata
from sinks.metrics import SinkMetrics
from stream_apps import table_store
from stream_apps.materials_metrics import MaterialsMetrics
from stream_apps.metrics import WorkerMetrics
from tests.unit.ops.test_rules import _exprs

STANDARD = ("process_", "python_")


def _worker() -> CollectorRegistry:
    m = WorkerMetrics()
    table_store.register_metrics(m.registry)
    m.lag.watch(ConsumerHealth(stall=60, lag_every=10))
    return m.registry


def _materials() -> CollectorRegistry:
    m = MaterialsMetrics()
    table_store.register_metrics(m.registry)
    m.lag.watch(ConsumerHealth(stall=60, lag_every=10))
    return m.registry


def _sink() -> CollectorRegistry:
    m = SinkMetrics()
    m.registry.register(ConsumerHealth(stall=60, lag_every=5).collector())  # as `onewindow sink`
    return m.registry


def _counter() -> CollectorRegistry:
    m = CounterMetrics()
    instrument(m.registry)  # as counter.app.create_app
    engine = make_engine("sqlite://")
    metadata.create_all(engine)  # an empty read model: every supervisor gauge reports
    m.registry.register(SupervisorCollector(engine, load_calendar()))
    return m.registry


def _gateway() -> CollectorRegistry:
    m = GatewayMetrics()
    instrument(m.registry)  # as gateway.app.create_app
    return m.registry


PROCESSES: dict[str, Callable[[], CollectorRegistry]] = {
    "worker": _worker, "materials-worker": _materials, "sink": _sink, "counter": _counter,
    "gateway": _gateway}


def _names(registry: CollectorRegistry) -> set[str]:
    """The names a page shows for ``registry``'s families (a counter's with ``_total``, an
    info's with ``_info``), with or without samples yet."""
    if table_store.table_memory() is None:
        table_store.configure(64 << 20)  # the table collector reports once configured
    suffix = {"counter": "_total", "info": "_info"}
    return {family.name + suffix.get(family.type, "") for family in registry.collect()}


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_every_family_of_every_process_has_a_concept(process: str) -> None:
    names = _names(PROCESSES[process]())
    outside = sorted(n for n in names if not n.startswith(STANDARD) and concept_of(n) is None)
    assert not outside, f"{process}: names outside the scheme: {outside}"
    # build info and process metrics everywhere
    assert {"onewindow_build_info", "process_resident_memory_bytes",
            "process_cpu_seconds_total"} <= names, process
    # one lag metric, on every consumer and only there
    lags = sorted(n for n in names if "lag" in n)
    consumer = process in ("worker", "materials-worker", "sink")
    assert lags == (["onewindow_consumer_lag"] if consumer else []), (process, lags)
    assert ("onewindow_consumer_healthy" in names) == consumer


def test_the_consumers_lag_has_one_shape() -> None:
    for process in ("worker", "materials-worker", "sink"):
        registry = PROCESSES[process]()
        [lag] = [f for f in registry.collect() if f.name == "onewindow_consumer_lag"]
        assert lag.type == "gauge"
    sink = SinkMetrics()
    sink.lag.update("p.onewindow-sink", {("p.case-state", 2): 7})
    assert sink.registry.get_sample_value(
        "onewindow_consumer_lag",
        {"group": "p.onewindow-sink", "topic": "p.case-state", "partition": "2"}) == 7


def test_the_same_measure_has_one_name_on_both_workers() -> None:
    worker, materials = _names(_worker()), _names(_materials())
    for shared in ("onewindow_stream_batch_processing_seconds", "onewindow_stream_batch_records",
                   "onewindow_table_memory_bytes", "onewindow_consumer_lag"):
        assert shared in worker and shared in materials, shared


def test_ops_queries_use_names_of_the_scheme() -> None:
    """The alert rules and the dashboard: every ``onewindow_`` name has a concept (and
    tests/unit/ops/test_rules.py checks it exists in the code)."""
    bad = sorted({(where, m) for where, expr in _exprs()
                  for m in re.findall(r"\b(onewindow_[a-z0-9_]+)\b", expr)
                  if concept_of(m) is None})
    assert not bad, bad


def test_one_prefix_per_concept() -> None:
    """No concept is another's singular or plural (``material_`` beside ``materials_``),
    and the longest concept wins (``read_model`` is not ``read``)."""
    for a in METRIC_CONCEPTS:
        for b in METRIC_CONCEPTS:
            assert a == b or a.rstrip("s") != b.rstrip("s"), (a, b)
    assert concept_of("onewindow_materials_links_total") == "materials"
    assert concept_of("onewindow_material_links_total") is None
    assert concept_of("onewindow_read_model_up") == "read_model"
    assert concept_of("onewindow_sink_consumer_lag") == "sink"  # a prefix, not a judgement
    assert concept_of("onewindow_materials") is None
    assert concept_of("process_cpu_seconds_total") is None
