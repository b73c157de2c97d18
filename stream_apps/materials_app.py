"""The materials Faust app: duplicate-material detection (domain.md section 5).

Two agents, both at concurrency 1 and batched with `take_events`:

* `route_materials` over `onewindow.case-activity`: every applied MaterialSubmitted /
  CertificateIssued becomes one index entry per candidate key; a batch's entries go to
  `<prefix>onewindow.material-index` packed, one record per partition of their keys
  (`MaterialRouter` with ``partitions``), so Faust hands the next agent one event for up
  to 250 entries instead of one each;
* `detect_links` over that topic: a RocksDB table maps an index key to its buckets, the
  materials it holds; each new material is compared with the ones that can still link
  with it by the pure rules and the links go to `onewindow.material-links`
  (`MaterialIndexer`).

Outputs go through the confluent-kafka `OutputProducer`, flushed before Faust commits any
input offset (`stream_apps/output.py`): every output of a committed input is on the
broker (at least once; links are identical when repeated, the read model upserts).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.provision import material_index_topic
from onewindow.security.id_protection import IdProtector
from onewindow.security.kafka_auth import STREAM, producer_config
from onewindow.topics import Topics
from stream_apps import table_store
from stream_apps.faust_base import new_app
from stream_apps.faust_context import TableAccess, records
from stream_apps.lag import measure_lag
from stream_apps.materials_metrics import MaterialsMetrics
from stream_apps.materials_processor import MaterialIndexer, MaterialRouter
from stream_apps.output import OutputProducer

BATCH_MAX = 2000
BATCH_WITHIN = 0.05  # seconds: a lone record waits at most this long for company
#: Index records a batch of `detect_links`: packed ones hold up to 250 entries each
#: (`stream_apps.materials_processor.MAX_PACKED_ENTRIES`), so a batch holds up to 4,000,
#: as long as 2,000 unpacked records (those of a worker before packing) took.
INDEX_BATCH_MAX = 16


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue  # compaction removed it meanwhile
    return total


def create_app(settings: Settings, *, app_id: str | None = None,
               worker_name: str = "materials", max_per_key: int | None = None,
               ids: IdProtector | None = None) -> faust.App:
    """The materials app. ``ids``: the keyed hash of ID numbers (default: from
    ``settings.id_hash_key``, which must be the case-state app's); ``max_per_key``: most
    materials an index key holds (default ``settings.materials_max_per_key``)."""
    ids = ids or IdProtector.from_settings(settings)
    topics = Topics(settings.topic_prefix)
    index_name = material_index_topic(topics)
    metrics = MaterialsMetrics()
    table_store.register_metrics(metrics.registry)
    codec = get_codec()
    # packed index records: one per partition and batch (docs/materials.md)
    router = MaterialRouter(codec=codec, index_topic=index_name, ids=ids,
                            partitions=settings.partitions)
    indexer = MaterialIndexer(codec=codec, links_topic=topics.material_links,
                              max_per_key=max_per_key or settings.materials_max_per_key)
    app = new_app(
        settings, app_id=app_id or topics.materials_app,
        worker_name=worker_name, batch_max=BATCH_MAX, web_port=settings.materials_web_port,
        producer_compression_type="lz4",
        # A bucket is one changelog record: up to MAX_PER_BUCKET entries and
        # MAX_BUCKET_BYTES (docs/materials.md "Bounds").
        producer_max_request_size=1_000_000)
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}
    activity = app.topic(topics.case_activity, **raw)
    index_topic = app.topic(index_name, partitions=settings.partitions, **raw)
    # murmur2 is Kafka's Java default: any producer of this topic puts a key where we do.
    output = OutputProducer(settings.kafka_bootstrap, client_id=f"{app.conf.id}-output",
                            config={**producer_config(settings, STREAM),
                                    "partitioner": "murmur2_random"})
    output.guard_commits(app)
    table = app.Table("material-index", default=None, partitions=settings.partitions,
                      key_type=bytes, value_type=bytes)  # bytes: Faust's raw codec
    access = TableAccess(table)

    @app.agent(activity, concurrency=1)
    async def route_materials(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            started = time.perf_counter()
            recs = records(batch)
            result = router.route(recs)
            output.send_batch(result.outputs)
            metrics.count_route(result)
            metrics.batch_size.labels("route").observe(len(recs))
            metrics.batch_seconds.labels("route").observe(time.perf_counter() - started)

    @app.agent(index_topic, concurrency=1)
    async def detect_links(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take_events(INDEX_BATCH_MAX, within=BATCH_WITHIN):
            started = time.perf_counter()
            recs = records(batch)
            result = indexer.process(recs, access.load)
            access.store(result.buckets)
            output.send_batch(result.outputs)
            metrics.count_index(result)
            metrics.batch_size.labels("index").observe(len(recs))
            metrics.batch_seconds.labels("index").observe(time.perf_counter() - started)

    @app.timer(15.0)
    async def measure_store() -> None:
        metrics.store_bytes.set(dir_bytes(Path(app.conf.datadir)))

    @app.timer(10.0)
    async def measure_consumer_lag() -> None:
        await measure_lag(app, metrics.lag, [topics.case_activity, index_name])

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; the header itself is fine.
        return web.bytes(generate_latest(metrics.registry),
                         headers={"Content-Type": CONTENT_TYPE_LATEST})

    return app
