"""What every onewindow Faust app shares: its settings and how a worker is run.

One place for the choices that keep Faust safe and fast here (docs/architecture.md):
RocksDB tables within one memory budget (`stream_apps.table_store`; what RocksDB's threads
free given back to the system every 15 s, `release_memory`), at-least-once with
`acks=all`, offsets committed every second, static group membership so a restarted worker
takes its own partitions back at once (`group_instance_id`), a 15-second session timeout
so a killed worker's partitions move quickly, standby replicas as configured
(`ONEWINDOW_TABLE_STANDBY_REPLICAS`: none with one worker, where there is nobody to keep
a copy for; one with several, so the worker that takes a partition over has it warm),
onewindow's own logging instead of Faust's, a web server on
the metrics host, in a thread of its own, serving `/metrics`, `/healthz`, `/readyz` and
no Faust view (`WEB_SETTINGS`, `stream_apps.health`), an agent that raises stopping the
worker (`CrashingSupervisor`), no record dropped when Faust resumes the flow after a
rebalance (`KeepCurrentFlowControl`), and a stop that ends within
`ONEWINDOW_STOP_TIMEOUT_SECONDS` (`run`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import faust
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from aiokafka.helpers import create_ssl_context
from faust.assignor import PartitionAssignor
from faust.assignor.client_assignment import ClientMetadata
from faust.tables import TableManager
from mode import CrashingSupervisor
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from onewindow.config import Settings
from onewindow.security.kafka_auth import MECHANISM, STREAM, credential_for
from stream_apps.faust_transport import SCHEME
from stream_apps.health import add_health, health_of
from stream_apps.table_store import (
    RELEASE_INTERVAL_SECONDS,
    STORE_URL,
    configure,
    release_free_memory,
)

log = logging.getLogger(__name__)

#: Exit status of a worker whose graceful stop did not end in time (`run`).
EXIT_STOP_TIMEOUT = 1

#: A worker's web server serves what operations reads and nothing else (docs/privacy.md):
#: its `/metrics` page (`app.page`), `/healthz` and `/readyz` (`stream_apps.health`) and
#: Faust's production index, `/` answering `{"status": "OK"}` (no data, and no judgement:
#: `/healthz` is the liveness answer). It runs in a thread with its own event loop
#: (`web_in_thread`), so a blocked worker loop still answers, 503. Faust's own views are
#: off: `/table/...` would serve the tables' keys and values (case states, material index
#: entries), `/router/...` the cluster's worker URLs and which worker owns a key
#: (onewindow routes no request between workers: no `table_route`), `/graph/` the service
#: tree, the statistics at `/` and `/assignment/` the sensors and partitions,
#: `/performance/` the monitor. Faust's own settings, not a patched server.
WEB_SETTINGS: dict[str, Any] = {
    "web_enabled": True,
    "web_in_thread": True,
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


class KeepCurrentFlowControl(FlowControlEvent):
    """Faust's flow control of the stream queues (`app.flow_control`), except that resuming
    the flow keeps the events of the current generation waiting in the queues.

    Faust's `resume` empties every stream queue, to drop what was fetched before a
    rebalance. But its table recovery resumes the flow only after it has resumed the
    stream partitions and sought them to their committed offsets, while the fetcher
    already runs (`Recovery.on_recovery_completed`): a record fetched in between and
    waiting in the agent's queue was dropped, neither processed nor acked, and the offsets
    of the records after it were committed past it, a lost record (issue 13; Faust
    commits past a hole of one offset, and past any hole while nothing is committed).
    Here resuming drops only what Faust's stream would skip anyway: events of an earlier
    generation, and the tables' changelog events (the recovery seeks those itself); the
    others are processed (a record that the seek fetches again too is a duplicate).
    Suspending and `clear` (a rebalance's revocation) are Faust's."""

    def __init__(self, app: faust.App, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app

    def resume(self) -> None:
        generation = self.app.consumer_generation_id
        changelogs = self.app.tables.changelog_topics
        kept = {queue: [item for item in queue._queue  # noqa: SLF001 - asyncio.Queue's
                        if _kept_on_resume(item, generation, changelogs)]
                for queue in self._queues}
        super().resume()  # Faust's: resumes, and empties every queue
        for queue, items in kept.items():
            queue._queue.extend(items)  # noqa: SLF001 - back, in their order


def _kept_on_resume(item: Any, generation: int, changelogs: set[str]) -> bool:
    message = getattr(item, "message", None)
    return (message is not None and message.generation_id == generation
            and message.topic not in changelogs)


def group_instance_id(worker_name: str, datadir: Path, host: str | None = None) -> str:
    """The worker's static consumer-group membership id (``group.instance.id``, KIP-345):
    ``<host>-<worker name>-<8 hex of the state directory's path>``.

    It names the one thing a member's identity rests on, its local state: the host's name
    (``socket.gethostname()``: a container's id, a pod's or a server's name), the worker's
    ``--name`` and its RocksDB directory (``<data dir>/stream/<name>``, resolved). So a
    worker restarted on the same state directory rejoins as the same member and gets its
    own partitions back at once, with no rebalance and without waiting for the broker to
    time the old process out; two workers of one group differ in at least one of the
    three (two processes on one directory would also share one RocksDB), and a broker
    fences the older of two members that claim one id. Distinct per app: the materials
    worker's group is another group. docs/operations.md, "Static group membership"."""
    host = host or socket.gethostname()
    where = hashlib.blake2b(str(datadir.resolve()).encode(), digest_size=4).hexdigest()
    return f"{host}-{worker_name}-{where}"


class StaticMemberAssignor(PartitionAssignor):
    """Faust's partition assignor, taking back an assignment made under another URL.

    With static membership (`group_instance_id`) a restarted worker rejoins a stable
    group without a rebalance, and the broker hands it the assignment its previous process
    was given, with the metadata Faust's leader put in it: that process's web URL. Faust's
    `on_assignment` asserts the URL is this process's, but a restarted worker's web port
    may differ (a free port each start, as the tests and the bench take), and the
    assertion stopped the consumer. onewindow routes no request between workers (no
    `table_route`; Faust's router views are off: `WEB_SETTINGS`), so the URL is not used;
    everything else Faust checks and keeps is unchanged (this is its `on_assignment`
    without the URL assertion)."""

    def on_assignment(self, assignment: ConsumerProtocolMemberMetadata) -> None:
        metadata = ClientMetadata.loads(self._decompress(assignment.user_data))
        self._assignment = metadata.assignment
        self._topic_groups = dict(metadata.topic_groups)
        self._active_tps = self._assignment.active_tps
        self._standby_tps = self._assignment.standby_tps
        self.changelog_distribution = metadata.changelog_distribution
        self.external_topic_distribution = metadata.external_topic_distribution
        given = sorted(assignment.assignment)
        expected = sorted(self._assignment.kafka_protocol_assignment(self._table_manager))
        if given != expected:
            raise RuntimeError(f"partition assignment {given!r} != {expected!r}")


class PromptTableManager(TableManager):
    """Faust's table manager without the one-second pause its start takes before it
    registers the tables' changelog channels and starts their recovery
    (`faust.tables.TableManager.on_start`). The conductor subscribes only after that
    registration, so the pause delayed every start and restart by a second. onewindow's
    apps create their tables with the app (`app.Table` in `create_app`), before the worker
    starts: there is nothing to wait for."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class _App(faust.App):
    """A Faust app with `KeepCurrentFlowControl`."""

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return KeepCurrentFlowControl(self, loop=self.loop)


def new_app(settings: Settings, *, app_id: str, worker_name: str, web_port: int,
            batch_max: int, **overrides: Any) -> faust.App:
    """A Faust app with onewindow's settings; `batch_max` is the app's `take_events`
    batch size (the stream buffer holds four batches)."""
    datadir = settings.data_dir / "stream" / worker_name
    datadir.mkdir(parents=True, exist_ok=True)
    configure(settings.table_memory_mib * 1024 * 1024)
    conf: dict[str, Any] = {
        # onewindow://: Faust's aiokafka transport reading read_committed
        # (stream_apps/faust_transport.py)
        "broker": f"{SCHEME}://{settings.kafka_bootstrap}",
        "broker_credentials": broker_credentials(settings),
        # RocksDB tables within one memory budget per process (stream_apps/table_store.py)
        "store": STORE_URL,
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
        # Static membership: a restarted worker (same host, name and state directory)
        # rejoins as the member it was and keeps its partitions without a rebalance
        # (`group_instance_id`). A static member does not leave the group when it stops:
        # a worker gone for good hands its partitions on after the session timeout.
        "consumer_group_instance_id": group_instance_id(worker_name, datadir),
        # A killed worker's partitions move after 15 s instead of Faust's 60 s. Batches
        # are bounded, so the loop never stalls near that long and heartbeats flow.
        "broker_session_timeout": 15.0,
        "stream_buffer_maxsize": 4 * batch_max,
        "TableManager": PromptTableManager,
        "PartitionAssignor": StaticMemberAssignor,
        # Standby replicas: each other worker of the group keeps a table partition's copy
        # warm by reading its changelog, so the one that takes the partition over (after a
        # worker died, once its session timed out) restores only the last few records
        # instead of the whole changelog. Faust gives a worker standbys of partitions it
        # does not own only (at most workers - 1 copies). The assignment is Faust's,
        # carried unchanged by StaticMemberAssignor: a static member that rejoins gets
        # its actives and its standbys back.
        "table_standby_replicas": settings.table_standby_replicas,
        "logging_config": None,
        # An agent that raises crashes the worker (it exits 1, the supervisor restarts it
        # from the committed offsets). Faust's default restarts the agent in the same
        # process, after `take_events` has acked the failed batch: its records would be
        # committed unprocessed and the worker would go on as if healthy.
        "agent_supervisor": CrashingSupervisor,
    }
    conf.update(overrides)
    app = _App(app_id, **conf)
    add_health(app, settings)

    @app.timer(RELEASE_INTERVAL_SECONDS)
    async def release_memory() -> None:
        # what RocksDB's threads freed back to the system (table_store); off the loop:
        # it walks every heap, milliseconds
        await asyncio.to_thread(release_free_memory)

    return app


class StopWatchdog:
    """Ends the process `timeout` seconds after a stop began, if it has not ended.

    A thread started with the worker waits for the stop; the stop is announced by the
    signal handler (which runs between two bytecodes of the main thread, even while the
    event loop is blocked in a call that checks for signals, such as librdkafka's
    flush) and by the worker's own stop (a crash). It then logs one line, waits
    `timeout` seconds for `done`, and otherwise logs where the stop hangs and exits with
    `EXIT_STOP_TIMEOUT` (os._exit: the interpreter's shutdown would wait for the very
    threads that hang). A second SIGTERM/SIGINT exits at once."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.begun = threading.Event()
        self.done = threading.Event()
        self.why = "stop"
        self.signals = 0
        threading.Thread(target=self._watch, name="stop-watchdog", daemon=True).start()

    def begin(self, why: str) -> None:
        if not self.begun.is_set():
            self.why = why
            self.begun.set()

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals > 1:
            self._exit(f"second {signal.Signals(signum).name}: exiting now, without "
                       "waiting for the graceful stop")
        self.begin(f"signal {signal.Signals(signum).name}")

    def _watch(self) -> None:
        self.begun.wait()
        log.info("stopping (%s); a stop that takes over %gs is cut short "
                 "(ONEWINDOW_STOP_TIMEOUT_SECONDS)", self.why, self.timeout)
        if not self.done.wait(self.timeout):
            self._exit(f"the graceful stop ({self.why}) did not end within {self.timeout:g}s "
                       "(ONEWINDOW_STOP_TIMEOUT_SECONDS); exiting without it: the batches in "
                       "hand are not committed and are processed again on restart")

    def _exit(self, line: str) -> None:
        try:
            log.error("%s", line)
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
        finally:
            os._exit(EXIT_STOP_TIMEOUT)


class _Worker(faust.Worker):
    """Faust's worker with onewindow's stop: the watchdog, and the health's stamps."""

    def __init__(self, app: faust.App, *, watchdog: StopWatchdog, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.watchdog = watchdog

    def install_signal_handlers(self) -> None:
        # Faust's handlers run on the event loop (loop.add_signal_handler: the signal
        # wakes the loop through its wakeup fd). Replacing the Python-level handler, which
        # asyncio sets to a no-op, keeps that path and also arms the watchdog when the loop
        # is blocked and cannot run Faust's handler.
        super().install_signal_handlers()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.watchdog.on_signal)

    async def on_startup_finished(self) -> None:
        health = health_of(self.app)
        if health is not None:
            health.ready()
        await super().on_startup_finished()

    async def on_stop(self) -> None:
        health = health_of(self.app)
        if health is not None:
            health.stopping()
        self.watchdog.begin("crash" if self.app.crashed else "stop")
        await super().on_stop()


def run(app: faust.App, settings: Settings, loglevel: str | None) -> None:
    """Run `app` in the foreground until SIGTERM/SIGINT: Faust stops the agents, commits
    the offsets of the batches they acked and exits 0. If that stop has not ended within
    `settings.stop_timeout_seconds` (the broker gone: aiokafka and Faust's producer wait
    for it), the process logs so and exits `EXIT_STOP_TIMEOUT` (1) without committing
    (docs/operations.md); a second signal exits at once. An agent that crashed stops the
    worker too, with exit status 1. Logs go through `onewindow.logs`
    (ONEWINDOW_LOG_JSON, ONEWINDOW_LOG_LEVEL), not Faust's handlers."""
    watchdog = StopWatchdog(settings.stop_timeout_seconds)
    worker = _Worker(app, watchdog=watchdog, loglevel=loglevel or settings.log_level,
                     quiet=True, override_logging=False)
    try:
        worker.execute_from_commandline()
    finally:
        watchdog.done.set()

