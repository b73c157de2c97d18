"""What every onewindow Faust app shares: its settings and how a worker is run.

One place for the choices that keep Faust safe and fast here (docs/architecture.md):
RocksDB tables, at-least-once with `acks=all`, offsets committed every second, a
15-second session timeout so a killed worker's partitions move quickly, no standby
replicas on one machine, onewindow's own logging instead of Faust's, and a web server on
the metrics host serving `/metrics` and no Faust view (`WEB_SETTINGS`).
"""

from __future__ import annotations

from typing import Any

import faust
from aiokafka.helpers import create_ssl_context

from onewindow.config import Settings
from onewindow.security.kafka_auth import MECHANISM, STREAM, credential_for
from stream_apps.faust_transport import SCHEME

#: A worker's web server serves what operations reads and nothing else (docs/privacy.md):
#: its `/metrics` page (`app.page`) and Faust's production index, `/` answering
#: `{"status": "OK"}` (no data: a liveness answer). Faust's own views are off: `/table/...`
#: would serve the tables' keys and values (case states, material index entries),
#: `/router/...` the cluster's worker URLs and which worker owns a key (onewindow routes
#: no request between workers: no `table_route`), `/graph/` the service tree, the
#: statistics at `/` and `/assignment/` the sensors and partitions, `/performance/` the
#: monitor. Faust's own settings, not a patched server.
WEB_SETTINGS: dict[str, Any] = {
    "web_enabled": True,
    "web_in_thread": False,
    "web_tables_enabled": False,
    "web_router_enabled": False,
    "web_graph_enabled": False,
    "web_stats_enabled": False,
    "web_metrics_enabled": False,
}


def broker_credentials(settings: Settings) -> faust.SASLCredentials | None:
    """The stream apps' sign-in (principal `svc-stream`, SASL/SCRAM-SHA-512; with SASL_SSL
    trusting the configured CA); None on a PLAINTEXT cluster."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    cred = credential_for(settings, STREAM)
    ssl_context = None
    if settings.kafka_security_protocol == "SASL_SSL":
        ssl_context = create_ssl_context(
            cafile=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None)
    return faust.SASLCredentials(username=cred.principal, password=cred.password,
                                 mechanism=MECHANISM, ssl_context=ssl_context)


def new_app(settings: Settings, *, app_id: str, worker_name: str, web_port: int,
            batch_max: int, **overrides: Any) -> faust.App:
    """A Faust app with onewindow's settings; `batch_max` is the app's `take_events`
    batch size (the stream buffer holds four batches)."""
    datadir = settings.data_dir / "stream" / worker_name
    datadir.mkdir(parents=True, exist_ok=True)
    conf: dict[str, Any] = {
        # onewindow://: Faust's aiokafka transport reading read_committed
        # (stream_apps/faust_transport.py)
        "broker": f"{SCHEME}://{settings.kafka_bootstrap}",
        "broker_credentials": broker_credentials(settings),
        "store": "rocksdb://",
        "datadir": str(datadir),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "consumer_auto_offset_reset": "earliest",
        # Faust's environment variables (WEB_BIND, WEB_PORT, APP_WEB_TABLES_ENABLED, ...)
        # would override every setting here: only ONEWINDOW_* settings configure a worker.
        "env": {},
        **WEB_SETTINGS,
        "web_host": settings.metrics_host,
        # the address the page listens on (web_host is only the advertised name; Faust
        # binds 0.0.0.0 unless told)
        "web_bind": settings.metrics_host,
        "web_port": web_port,
        "producer_acks": -1,
        "producer_linger_ms": 5,
        "broker_commit_interval": 1.0,
        # A killed worker's partitions move after 15 s instead of Faust's 60 s. Batches
        # are bounded, so the loop never stalls near that long and heartbeats flow.
        "broker_session_timeout": 15.0,
        "stream_buffer_maxsize": 4 * batch_max,
        "table_standby_replicas": 0,
        "logging_config": None,
    }
    conf.update(overrides)
    return faust.App(app_id, **conf)


def run(app: faust.App, settings: Settings, loglevel: str | None) -> None:
    """Run `app` in the foreground until SIGTERM/SIGINT: Faust stops the agents, commits
    the offsets of the batches they acked and exits 0. Logs go through
    `onewindow.logs` (ONEWINDOW_LOG_JSON, ONEWINDOW_LOG_LEVEL), not Faust's handlers."""
    worker = faust.Worker(app, loglevel=loglevel or settings.log_level, quiet=True,
                          override_logging=False)
    worker.execute_from_commandline()

