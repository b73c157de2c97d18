"""`onewindow up`: the whole local stack in the foreground, on the embedded default.

Local Kafka from the jars, the topics, the stream workers, the sinks, the counter web
app, the ingestion gateway and (with --simulate) department traffic, each a child
process with its log under
`var/logs/`. Ctrl-C or SIGTERM stops them in reverse order (each finishes its batch and
commits), then the broker.

`up` supervises them (docs/operations.md, "Supervision"): a process that exits (the
broker included) is started again after a backoff, with one line on the terminal, as
`onewindow.backoff.RestartPolicy` decides; after repeated failures right after the start
it gives up, stops the stack, names the process and prints the end of its log. The
children are direct subprocesses of `up` (`python -m onewindow_cli <name>`; the broker
is a `java ... kafka.Kafka` child), each in its own session, and `up` keeps each one's
pid in `<data dir>/run/<name>.pid` (`up.pid` its own, `kafka.pid` the broker's) while it
runs. With `--brokers 3` Kafka is a cluster of three combined nodes (`local_kafka`), each
supervised alone (`kafka-1` ... `kafka-3`, their pid files likewise). With `--workers N`
it runs N case-state and N materials workers (`worker_commands`), with one standby
replica of each table partition from N = 2 on (`standby_for`).

The secret of the keyed hash of ID numbers is generated on the first start into
`<data dir>/secrets/id-hash.key` (32 random bytes, mode 0600) and reused after; the
children get its path (ONEWINDOW_ID_HASH_KEY_FILE). An operator's own
ONEWINDOW_ID_HASH_KEY or ONEWINDOW_ID_HASH_KEY_FILE wins.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from counter import staff_migrations
from onewindow.backoff import RestartPolicy, RestartState, Verdict, decide
from onewindow.broker_wait import wait_for_broker
from onewindow.cli_options import (
    MAX_COMPRESSION,
    MAX_LOCAL_WORKERS,
    add_common,
    at_most,
    positive_float,
    positive_int,
    settings_from,
)
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import KafkaLocalError, LocalKafka, LocalKafkaCluster, cluster_ports
from onewindow.provision import provision
from onewindow.read_model.engine import make_engine, shown_url, wait_for_database
from onewindow.security.id_key import ensure_key_file, resolve_id_hash_key, stack_key_file
from onewindow.security.kafka_auth import ADMIN, credentials_dir, kafka_env, producer_config
from onewindow.staff import users
from onewindow.topics import replication_for
from producers.service_hours import describe, session_seconds

#: how `up` restarts a process that exits: 1 s doubling to 30 s (reset by a run of 2
#: minutes); it gives up after 5 exits in a row each within 30 s of the start
POLICY = RestartPolicy()
#: how many of the last lines of a process's log `up` prints when it gives up on it
LOG_TAIL = 20
#: seconds between two looks at the processes
TICK = 0.5


def describe_exit(status: int) -> str:
    """``exited with status 1``, or ``was killed by SIGKILL`` for a negative status
    (subprocess's way of saying: ended by that signal)."""
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


def log_tail(path: Path, lines: int = LOG_TAIL) -> list[str]:
    """The last ``lines`` lines of the file at ``path`` (its last 64 KiB at most, decoded
    as UTF-8 with replacement); empty if it cannot be read."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]


@dataclass
class Supervised:
    """One process `up` runs and restarts: its name, its log, and what the restart
    policy remembers of it."""

    name: str
    log: Path
    one_shot: bool = False
    state: RestartState = field(default_factory=RestartState)
    #: monotonic time of the last start
    started: float = 0.0
    #: monotonic time of a pending restart (None: running, or finished)
    restart_at: float | None = None
    #: a one-shot process that finished cleanly
    finished: bool = False

    @property
    def pid(self) -> int | None:
        raise NotImplementedError

    def launch(self) -> None:
        raise NotImplementedError

    def poll(self) -> int | None:
        """None while it runs, else its exit status."""
        raise NotImplementedError

    def why(self) -> str:
        """What ended it, beyond the exit status (empty if nothing more is known)."""
        return ""


@dataclass
class Child(Supervised):
    """A `python -m onewindow_cli <command>` child, in its own session (Ctrl-C on the
    terminal reaches `up` only), output appended to its log."""

    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def launch(self) -> None:
        with self.log.open("ab") as out:  # the child has its own copy of the descriptor
            out.write(f"--- {datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z onewindow up starts "
                      f"{self.name}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def poll(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None


@dataclass
class Broker(Supervised):
    """The local Kafka broker `up` runs from the jars, started again on the same data
    directory and ports (its clients reconnect by themselves)."""

    kafka: LocalKafka | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    #: why the last start failed (None: it did not)
    failure: str | None = None
    failed_status: int = 1

    @property
    def pid(self) -> int | None:
        assert self.kafka is not None
        return self.kafka.proc.pid if self.kafka.proc is not None else None

    def launch(self) -> None:
        """Start it and wait until it answers (up to 90 s, or until `stop`)."""
        assert self.kafka is not None
        before = self.kafka.proc
        self.failure = None
        try:
            self.kafka.start(stop=self.stop)
        except KafkaLocalError as exc:
            self.failure = str(exc)
            proc = self.kafka.proc
            # it exited while starting: its status; it never ran, or was stopped: 1
            self.failed_status = proc.returncode if proc is not None and proc is not before \
                and proc.poll() is not None else 1

    def poll(self) -> int | None:
        assert self.kafka is not None
        if self.failure is not None:
            return self.failed_status
        proc = self.kafka.proc
        return proc.poll() if proc is not None else None

    def why(self) -> str:
        return self.failure or ""


def local_kafka(settings: Settings, brokers: int) -> LocalKafka | LocalKafkaCluster:
    """The Kafka `up` runs from the jars: one node in `<data dir>/kafka` on
    ONEWINDOW_KAFKA_PORT and ONEWINDOW_KAFKA_CONTROLLER_PORT, or `brokers` combined nodes
    in `<data dir>/kafka-cluster` on the port pairs `kafka_local.cluster_ports` counts up
    from those (docs/operations.md, "A three-broker cluster"). Raises KafkaLocalError
    when the data directory holds the other kind: its read model, offsets and workers'
    state belong to that Kafka's topics."""
    common: dict[str, Any] = {"version": settings.kafka_version, "cache_dir": settings.cache_dir,
                              "security": settings.kafka_security_protocol,
                              "credentials_dir": credentials_dir(settings)}
    single, cluster = settings.data_dir / "kafka", settings.data_dir / "kafka-cluster"
    other = cluster if brokers == 1 else single
    if other.exists():
        raise KafkaLocalError(
            f"{settings.data_dir} holds the data of a {'cluster' if brokers == 1 else 'single'}"
            f" Kafka ({other}); run with {'--brokers 3' if brokers == 1 else '--brokers 1'}, "
            "or give this one its own ONEWINDOW_DATA_DIR")
    if brokers == 1:
        return LocalKafka(data_dir=single, port=settings.kafka_port,
                          controller_port=settings.kafka_controller_port, **common)
    return LocalKafkaCluster(
        data_dir=cluster, ports=cluster_ports(settings.kafka_port,
                                              settings.kafka_controller_port, brokers),
        **common)


def broker_processes(kafka: LocalKafka | LocalKafkaCluster,
                     stop: threading.Event) -> list[Broker]:
    """What `up` supervises of `kafka`: the broker (`kafka`), or each node of a cluster
    (`kafka-<i>`, started again alone when it exits: the other two keep the quorum)."""
    nodes = kafka.nodes if isinstance(kafka, LocalKafkaCluster) else [kafka]
    return [Broker("kafka" if node is kafka else f"kafka-{node.node_id}",
                   Path(node.data_dir).resolve() / "server.log", kafka=node, stop=stop)
            for node in nodes]


class Supervisor:
    """Runs `up`'s processes and restarts each one that exits, as ``policy`` decides;
    prints one line per exit on ``out``. `tick()` returns the process it gave up on."""

    def __init__(self, processes: list[Supervised], *, run_dir: Path,
                 policy: RestartPolicy = POLICY, out: TextIO = sys.stderr) -> None:
        self.processes = processes
        self.run_dir = run_dir
        self.policy = policy
        self.out = out

    def say(self, line: str) -> None:
        print(f"up: {line}", file=self.out, flush=True)  # noqa: T201

    def _pidfile(self, p: Supervised) -> Path:
        return self.run_dir / f"{p.name}.pid"

    def start(self, p: Supervised) -> None:
        p.restart_at = None
        p.started = time.monotonic()
        p.launch()
        if p.pid is not None and p.poll() is None:
            tmp = self._pidfile(p).with_suffix(".tmp")
            tmp.write_text(f"{p.pid}\n")
            tmp.replace(self._pidfile(p))

    def tick(self) -> Supervised | None:
        """Look at every process once: note exits, start what is due."""
        for p in self.processes:
            if p.finished:
                continue
            now = time.monotonic()
            if p.restart_at is not None:
                if now >= p.restart_at:
                    self.start(p)
                    if isinstance(p, Broker) and p.poll() is None and not p.stop.is_set():
                        self.say(f"{p.name} is back (pid {p.pid}, "
                                 f"{time.monotonic() - now:.0f}s to answer)")
                continue
            status = p.poll()
            if status is None:
                continue
            if self._exited(p, status, now - p.started):
                return p
        return None

    def _exited(self, p: Supervised, status: int, ran_for: float) -> bool:
        """Decide about an exit and say so in one line; True to give up."""
        self._pidfile(p).unlink(missing_ok=True)
        d = decide(self.policy, p.state, ran_for=ran_for, status=status, one_shot=p.one_shot)
        p.state = d.state
        why = f" ({p.why()})" if p.why() else ""
        what = f"{p.name} {describe_exit(status)} after {ran_for:.0f}s{why}"
        if d.verdict is Verdict.DONE:
            p.finished = True
            self.say(f"{what}: finished, not restarted")
            return False
        if d.verdict is Verdict.GIVE_UP:
            self.say(f"{what}: {d.state.fast_failures} exits in a row, each within "
                     f"{self.policy.fast_exit:.0f}s of its start; giving up and stopping "
                     f"the stack. The last lines of {p.log}:")
            for line in log_tail(p.log):
                print(f"  | {line}", file=self.out)  # noqa: T201
            self.out.flush()
            return True
        fast = f" (fast exit {d.state.fast_failures} of {self.policy.give_up_after})" \
            if d.fast else ""
        self.say(f"{what}{fast}; restarting it in {d.delay:.0f}s; log: {p.log}")
        p.restart_at = time.monotonic() + d.delay
        return False

    def stop_all(self, broker: LocalKafka | LocalKafkaCluster | None) -> None:
        """SIGTERM to every child in reverse order, 30 s for each to finish (then
        SIGKILL), then the broker; the pid files go."""
        children = [p for p in self.processes if isinstance(p, Child)]
        for c in reversed(children):
            if c.proc is not None and c.proc.poll() is None:
                os.killpg(c.proc.pid, signal.SIGTERM)
        for c in reversed(children):
            if c.proc is not None:
                try:
                    c.proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(c.proc.pid, signal.SIGKILL)
                    c.proc.wait(10)
        if broker is not None:
            broker.stop()
        for p in self.processes:
            self._pidfile(p).unlink(missing_ok=True)


def _wait_http(url: str, timeout: float, stop: threading.Event) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
                if resp.status < 500:
                    return True
        except OSError:
            stop.wait(0.5)
    return False


def id_key_env(settings: Settings) -> dict[str, str]:
    """What tells `up`'s children the ID hash key: the operator's own
    (ONEWINDOW_ID_HASH_KEY or _FILE, already in the environment: nothing to add), the
    development key when asked for (--insecure-dev-key), else the stack's generated key
    file, created on the first start and reused after (its path, never the key). Checks
    the key now, so a bad one stops `up` before anything starts."""
    if settings.id_hash_key is not None or settings.id_hash_key_file is not None:
        env: dict[str, str] = {}
    elif settings.insecure_dev_key:
        env = {"ONEWINDOW_INSECURE_DEV_KEY": "true"}
    else:
        path = stack_key_file(settings)
        if ensure_key_file(path):
            print(f"generated the ID hash key {path} (back it up with the data: "  # noqa: T201
                  "docs/operations.md)", flush=True)
        env = {"ONEWINDOW_ID_HASH_KEY_FILE": str(path.resolve())}
        settings = settings.model_copy(update={"id_hash_key_file": path.resolve()})
    resolve_id_hash_key(settings, warn=False)  # the children warn, each in its log
    return env


def _host(bound: str) -> str:
    """Where a browser on this machine reaches a page bound to ``bound``."""
    if bound in ("0.0.0.0", "::", ""):  # noqa: S104 - a page bound to every interface
        return "127.0.0.1"
    return f"[{bound}]" if ":" in bound else bound


#: the stream workers `up` runs, per kind: (its `onewindow` command, the name of its
#: first process and of its state directory (--name), the settings field of its web port,
#: the label of its metrics URL)
WORKER_KINDS = (("worker", "worker", "worker_web_port", "worker"),
                ("materials-worker", "materials", "materials_web_port", "materials"))


def worker_commands(settings: Settings, workers: int) -> list[tuple[str, list[str]]]:
    """``(process name, onewindow arguments)`` of the ``workers`` case-state and
    ``workers`` materials workers `up` runs, each pair in its group. The first of a kind
    is the single stack's (``worker``, ``materials-worker``: its name, its state
    directory and its port), so a stack grown to N workers keeps its first worker's
    state; worker i >= 2 is ``worker-i`` (``--name worker-i``) and ``materials-worker-i``
    (``--name materials-i``), each with its own state directory under
    ``<data dir>/stream/``, on the port of the first + 2 (i - 1) (`worker_port`)."""
    out: list[tuple[str, list[str]]] = []
    for i in range(1, workers + 1):
        for command, name, _field, _label in WORKER_KINDS:
            if i == 1:
                out.append((command, [command]))
            else:
                out.append((f"{command}-{i}", [command, "--name", f"{name}-{i}", "--web-port",
                                               str(worker_port(settings, command, i))]))
    return out


def worker_port(settings: Settings, command: str, i: int) -> int:
    """The web port (``/metrics``, ``/healthz``) of worker ``i`` (1-based) of the kind
    ``command`` (``worker`` or ``materials-worker``): ONEWINDOW_WORKER_WEB_PORT or
    ONEWINDOW_MATERIALS_WEB_PORT + 2 (i - 1), so the two kinds interleave (6066, 6068, ...
    and 6067, 6069, ... by default)."""
    field = next(f for c, _n, f, _l in WORKER_KINDS if c == command)
    return int(getattr(settings, field)) + 2 * (i - 1)


def _worker_of(name: str) -> tuple[str, int, str] | None:
    """``(command, index, label)`` of a worker process `worker_commands` names."""
    for command, _n, _field, label in WORKER_KINDS:
        if name == command:
            return command, 1, label
        head, _, index = name.rpartition("-")
        if head == command and index.isdigit():
            return command, int(index), f"{label} {index}"
    return None


def service_urls(settings: Settings, started: Collection[str]) -> list[tuple[str, str]]:
    """``(label, URL)`` of every page the processes named in ``started`` serve (the
    names of `up`'s children: ``counter``, ``gateway``, ``worker``,
    ``materials-worker`` (and ``worker-2``, ``materials-worker-2`` ... of
    `worker_commands`), ``sink``; others serve none): the counter's pages, its API
    docs, the gateway's, and each process's ``/metrics``, on the ports of ``settings``.
    What `up` prints once the stack answers."""
    counter = f"http://127.0.0.1:{settings.counter_port}"
    scheme = "https" if settings.gateway_tls_cert_file else "http"
    gateway = f"{scheme}://127.0.0.1:{settings.gateway_port}"
    metrics = _host(settings.metrics_host)
    urls: list[tuple[str, str]] = []
    if "counter" in started:
        urls += [("sign in", f"{counter}/login"), ("counter screen", f"{counter}/"),
                 ("window board", f"{counter}/board"),
                 ("supervisor view", f"{counter}/supervision"),
                 ("progress lookup", f"{counter}/lookup"), ("access log", f"{counter}/audit"),
                 ("API docs", f"{counter}/docs")]
    if "gateway" in started:
        urls.append(("ingest gateway", f"{gateway}/docs"))
    for name, label, url in (
            ("counter", "counter metrics", f"{counter}/metrics"),
            ("gateway", "gateway metrics", f"{gateway}/metrics"),
            ("sink", "sink metrics", f"http://{metrics}:{settings.sink_metrics_port}/metrics")):
        if name in started:
            urls.append((label, url))
    for name in started:
        worker = _worker_of(name)
        if worker is not None:
            command, i, label = worker
            urls.append((f"{label} metrics",
                         f"http://{metrics}:{worker_port(settings, command, i)}/metrics"))
    return urls


def url_lines(settings: Settings, started: Collection[str],
              tail: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The lines `up` prints once the stack answers, under its first: every page of
    `service_urls` with its note (`_URL_NOTES`), then the ``(label, text)`` rows of
    ``tail`` (simulated traffic, logs, pid files); indented two spaces, every label padded
    to the longest one, so the texts start in one column however many workers there are
    (``materials 16 metrics``)."""
    rows = [*((label, f"{url}{_URL_NOTES.get(label, '')}")
              for label, url in service_urls(settings, started)), *tail]
    width = max((len(label) for label, _ in rows), default=0)
    return [f"  {label:<{width}} {text}" for label, text in rows]


#: what the label of a URL line says besides the URL
_URL_NOTES = {"ingest gateway": " (a department's key: onewindow gateway-keys issue DEPT)",
              "counter metrics": " (role ops)", "access log": " (role auditor)",
              "window board": " (role supervisor)", "supervisor view": " (role supervisor)"}


#: the user `up` creates in an empty user store, and its roles (not auditor: the one who
#: runs the centre is not the one who audits it; add an auditor with `onewindow users`)
FIRST_ADMIN = ("admin", ["supervisor", "ops"])


def _cli_name() -> str:
    """How to call `onewindow` from here: the name when it is on PATH, else the script
    beside this Python (`.venv/bin/onewindow` after `make run`)."""
    beside = Path(sys.executable).parent / "onewindow"
    on_path = shutil.which("onewindow")
    if on_path and Path(on_path).resolve() == beside.resolve():
        return "onewindow"
    return os.path.relpath(beside) if beside.exists() else "onewindow"


def first_admin(settings: Settings) -> str | None:
    """The staff store migrated; on an empty user store, the first administrator's
    generated password (to print once), else None."""
    engine = make_engine(settings.database_url, writer=True)
    try:
        staff_migrations.upgrade(engine)
        return users.ensure_first_user(engine, FIRST_ADMIN[0], list(FIRST_ADMIN[1]),
                                       datetime.now(UTC))
    finally:
        engine.dispose()


def up(settings: Settings, *, simulate: bool, rate: float, compression: float | None,
       external_kafka: bool, around_the_clock: bool = False, brokers: int = 1,
       workers: int = 1) -> int:
    """Run the stack until Ctrl-C or SIGTERM (0), or until a process keeps failing right
    after its start (1: `Supervisor` gave up on it). ``workers``: case-state and
    materials workers of each kind (`worker_commands`). docs/operations.md."""
    # Everything under the data directory is the operator's alone: the broker's log
    # segments (plaintext input), the read model, the RocksDB state, the credentials,
    # the ID hash key.
    os.umask(0o077)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    key_env = id_key_env(settings)
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    run_dir = settings.data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "up.pid").write_text(f"{os.getpid()}\n")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    broker = None if external_kafka else local_kafka(settings, brokers)
    processes: list[Supervised] = []
    supervisor = Supervisor(processes, run_dir=run_dir)
    gave_up: Supervised | None = None
    announced = threading.Event()
    admin_lines: list[str] = []
    try:
        if broker is not None:
            print(f"starting Kafka {settings.kafka_version} (KRaft"  # noqa: T201
                  f"{f', {brokers} brokers' if brokers > 1 else ''}) ...", flush=True)
            if isinstance(broker, LocalKafkaCluster):
                broker.launch()  # every node, before any can answer (a quorum)
            for kafka in broker_processes(broker, stop):
                processes.append(kafka)
                supervisor.start(kafka)
                if kafka.failure is not None:
                    raise KafkaLocalError(kafka.failure)
        bootstrap = broker.bootstrap if broker else settings.kafka_bootstrap
        registry = load_registry(settings.departments_file)
        settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
        if broker is not None and broker.security == "SASL_SSL":
            settings = settings.model_copy(update={"kafka_ssl_ca_file": broker.ca_file})
        if broker is None and not wait_for_broker(  # an external broker may not be up yet
                producer_config(settings, ADMIN), stop=stop,
                say=lambda line: print(f"up: {line}", flush=True)):  # noqa: T201
            return 0
        if stop.is_set() or not wait_for_database(
                settings.database_url, stop=stop,
                say=lambda line: print(f"up: {line}", flush=True)):  # noqa: T201
            return 0
        provision(settings, registry.codes)  # topics, principals, ACLs
        admin_password = first_admin(settings)
        py = [sys.executable, "-m", "onewindow_cli"]
        env = dict(os.environ, **kafka_env(settings), **key_env,
                   ONEWINDOW_TABLE_STANDBY_REPLICAS=str(settings.table_standby_replicas))
        commands = [*worker_commands(settings, workers),
                    ("sink", ["sink"]), ("counter", ["counter"]), ("gateway", ["gateway"])]
        if simulate:
            commands.append(("simulate", ["simulate", "--rate", str(rate),
                                          *(["--compression", str(compression)]
                                            if compression is not None else []),
                                          *(["--around-the-clock"] if around_the_clock
                                            else [])]))
        for name, args in commands:
            child = Child(name, logs / f"{name}.log", one_shot=name == "simulate",
                          argv=[*py, *args], env=env)
            processes.append(child)
            supervisor.start(child)
        base = f"http://127.0.0.1:{settings.counter_port}"
        started = [name for name, _ in commands]
        tail = [("logs", f"{logs}/"), ("pid files", f"{run_dir}/")]
        if simulate:
            pace = _pace(settings, compression, around_the_clock)
            tail.insert(0, ("simulated traffic", f"{pace}; log {logs / 'simulate.log'}"))
        lines = [f"onewindow is up (Kafka on {bootstrap}, read model "
                 f"{shown_url(settings.database_url)})",
                 *url_lines(settings, started, tail)]
        cli = _cli_name()
        if admin_password is not None:
            admin_lines += [
                f"sign in as {FIRST_ADMIN[0]} with the password {admin_password}",
                f"  (shown once; `{cli} users reset-password admin` sets a new one,"
                f" `{cli} users add NAME --role clerk` adds staff, `--role auditor`"
                " an auditor for /audit)"]
        lines += [*admin_lines, "Ctrl-C stops everything."]

        def announce() -> None:  # once the counter answers (or after 60 s)
            _wait_http(f"{base}/healthz", 60, stop)
            if not stop.is_set():
                print("\n".join(lines), flush=True)  # noqa: T201
                announced.set()

        threading.Thread(target=announce, name="announce", daemon=True).start()
        while not stop.is_set():
            gave_up = supervisor.tick()
            if gave_up is not None:
                break
            stop.wait(TICK)
    finally:
        stop.set()
        if admin_lines and not announced.is_set():
            print("\n".join(admin_lines), flush=True)  # noqa: T201 - never lost
        print("stopping ...", flush=True)  # noqa: T201
        supervisor.stop_all(broker)
        (run_dir / "up.pid").unlink(missing_ok=True)
    if gave_up is not None:
        print(f"up: stopped: {gave_up.name} kept failing at start; see {gave_up.log}",  # noqa: T201
              file=sys.stderr)
        return 1
    failed = [p.name for p in processes if isinstance(p, Child)
              and p.proc is not None and p.proc.returncode not in (0, -15, 143)]
    return 1 if failed else 0


def _pace(settings: Settings, compression: float | None, around_the_clock: bool) -> str:
    """How the simulator's clock runs, in words."""
    c = compression if compression is not None else settings.simulate_compression
    if around_the_clock or settings.simulate_around_the_clock:
        return f"{c:g} x, around the clock"
    return f"{c:g} x in service hours ({describe()}: a day in {session_seconds() / c:.0f} s)"


def cmd_up(args: argparse.Namespace) -> int:
    s = settings_from(args)
    external = args.bootstrap is not None or "ONEWINDOW_KAFKA_BOOTSTRAP" in os.environ
    if "replication_factor" not in s.model_fields_set:  # ONEWINDOW_REPLICATION_FACTOR wins
        s = s.model_copy(update={"replication_factor": replication_for(args.brokers)})
    if "table_standby_replicas" not in s.model_fields_set:  # the operator's setting wins
        s = s.model_copy(update={"table_standby_replicas": standby_for(args.workers)})
    return up(s, simulate=args.simulate, rate=args.rate, compression=args.compression,
              external_kafka=external, around_the_clock=args.around_the_clock,
              brokers=args.brokers, workers=args.workers)


def standby_for(workers: int) -> int:
    """The standby replicas of each table partition for ``workers`` workers of a kind:
    0 for one (nobody to keep a copy for), 1 for more (one warm copy: the worker taking a
    partition over restores from its own copy; a second copy would cost every worker
    another changelog read for the loss of two workers at once)."""
    return 0 if workers <= 1 else 1


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="start the whole local stack in the foreground")
    p.add_argument("--simulate", action="store_true", help="also run simulated department traffic")
    p.add_argument("--rate", type=positive_float, default=5.0,
                   help="simulated events per second")
    p.add_argument("--compression", type=at_most(positive_float, MAX_COMPRESSION), default=None,
                   help="simulated seconds per wall-clock second, in the service centre's "
                        "opening hours (default ONEWINDOW_SIMULATE_COMPRESSION, else 300)")
    p.add_argument("--around-the-clock", action="store_true",
                   help="the simulator ignores the centre's opening hours")
    p.add_argument("--brokers", type=int, choices=(1, 3), default=1,
                   help="Kafka nodes from the jars: 1, or a cluster of 3 (topics replicated "
                        "3 times, min.insync.replicas 2; docs/operations.md)")
    p.add_argument("--workers", type=at_most(positive_int, MAX_LOCAL_WORKERS), default=1,
                   help="case-state workers and materials workers, N of each in their "
                        "groups, each with its own state and web port; from 2 on, one "
                        "standby replica of each table partition "
                        "(ONEWINDOW_TABLE_STANDBY_REPLICAS; docs/operations.md); at most "
                        f"{MAX_LOCAL_WORKERS} on one machine")
    add_common(p, database=True)
    p.set_defaults(func=cmd_up)
