"""Prometheus metrics of the materials worker (one registry per app, no globals).

Named after what they count (docs/operations.md, *Metric names*): ``onewindow_materials_*``
for the materials, their links and their index; as on the case-state worker,
``onewindow_stream_*`` for its batches, ``onewindow_table_*`` for its RocksDB tables and
``onewindow_consumer_lag`` for its lag.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from onewindow.observability import instrument
from onewindow.observability.lag import ConsumerLag
from stream_apps.materials_processor import IndexResult, RouteResult

_BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class MaterialsMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        instrument(r)  # onewindow_build_info, process_*, python_info
        self.lag = ConsumerLag(r)  # onewindow_consumer_lag{group,topic,partition}
        self.materials = Counter(
            "onewindow_materials_consumed_total",
            "Materials read from case-activity (MaterialSubmitted, CertificateIssued)",
            ["kind", "material_type"], registry=r)
        self.activity_other = Counter(
            "onewindow_materials_activity_skipped_total",
            "case-activity records that are not materials", registry=r)
        self.unreadable = Counter(
            "onewindow_materials_unreadable_total",
            "Records the materials worker could not read (never expected)", ["step", "reason"],
            registry=r)
        self.index_records = Counter(
            "onewindow_materials_index_records_total",
            "Index records processed, by index (sha, doc, hold) and outcome "
            "(new, replay, replaced, overflow)", ["index", "outcome"], registry=r)
        self.links = Counter(
            "onewindow_materials_links_total",
            "Links found, by verdict (each pair counted once)", ["verdict"], registry=r)
        self.links_reemitted = Counter(
            "onewindow_materials_links_reemitted_total",
            "Links sent again for a replayed material (identical; the read model upserts)",
            ["verdict"], registry=r)
        self.conflicts = Counter(
            "onewindow_materials_conflicts_total",
            "CONFLICT links (the same certificate told two ways), by material type and what "
            "differs (fields, holders, both)", ["material_type", "differs"], registry=r)
        self.avoidable = Counter(
            "onewindow_materials_avoidable_total",
            "Submissions found avoidable when they arrived (a document of the same holder was "
            "already on file), by department and material type; docs/materials.md says "
            "what it leaves out", ["department", "material_type"], registry=r)
        self.avoidable_links = Counter(
            "onewindow_materials_avoidable_links_total",
            "Links that make a submission avoidable (EXACT or SAME_DOCUMENT with an earlier "
            "document of the same holder), by the submission's department and material type",
            ["department", "material_type"], registry=r)
        self.bucket_entries = Histogram(
            "onewindow_materials_index_bucket_entries",
            "Materials held by the index key a new material was compared with",
            buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000), registry=r)
        # the batches of a stream worker: the same metrics as the case-state worker's
        self.batch_seconds = Histogram(
            "onewindow_stream_batch_processing_seconds",
            "Time to process one batch of input records, by step (route, index)", ["step"],
            buckets=_BATCH_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "onewindow_stream_batch_records", "Input records per processed batch, by step",
            ["step"], buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000), registry=r)
        self.store_bytes = Gauge(
            "onewindow_table_disk_bytes",
            "Bytes on disk of this worker's tables (RocksDB, every partition it holds)",
            registry=r)

    def count_route(self, res: RouteResult) -> None:
        for kind, mtype in res.materials:
            self.materials.labels(kind, mtype).inc()
        if res.other:
            self.activity_other.inc(res.other)
        for reason in res.unreadable:
            self.unreadable.labels("route", reason).inc()

    def count_index(self, res: IndexResult) -> None:
        for index, outcome in res.outcomes:
            self.index_records.labels(index, outcome).inc()
        if res.unreadable:
            self.unreadable.labels("index", "bad_index_record").inc(res.unreadable)
        for n in res.bucket_sizes:
            self.bucket_entries.observe(n)
        for f in res.links:
            verdict = str(f.verdict)
            if not f.new:
                self.links_reemitted.labels(verdict).inc()
                continue
            self.links.labels(verdict).inc()
            if verdict == "CONFLICT":
                differs = ("both" if f.holders_differ and f.has_differing_fields
                           else "holders" if f.holders_differ else "fields")
                self.conflicts.labels(f.material_type, differs).inc()
            if f.avoidable is not None:
                self.avoidable_links.labels(*f.avoidable).inc()
        for dept, mtype in res.avoidable_on_arrival:
            self.avoidable.labels(dept, mtype).inc()
