"""Health that tells the truth, and a stop that ends without the broker (issue 13).

One private broker for this module (the session's is shared: these tests delete a topic
and stop the broker), a case-state worker and the sink on it, started once:

1. idle for longer than the stall time, both answer `/healthz` 200; a real wedge (the
   worker's output topic deleted: the outputs of its next batch cannot be delivered and
   the flush before its commit blocks its event loop) turns the worker's `/healthz` 503
   within the stall time while its `/metrics` still answers; with the topic back it is
   200 again;
2. with the broker gone, SIGTERM (the worker) and SIGINT (the sink) end both processes
   within 30 s (the graceful path with the broker present is
   tests/integration/test_graceful_shutdown.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from onewindow.codec import get_codec
from onewindow.config import Settings, get_settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import provision
from onewindow.security.kafka_auth import department_principal, kafka_env, producer_config
from onewindow.topics import Topics
from producers.publisher import DepartmentPublishers
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.integration.ops_support import scrape
from tests.integration.streams import ID_KEY, stop

pytestmark = pytest.mark.integration

STALL = 3.0  # ONEWINDOW_STALL_SECONDS of the processes under test


@dataclass
class Stack:
    broker: LocalKafka
    settings: Settings
    topics: Topics
    env: dict[str, str]
    root: Path
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str) -> None:
        """`onewindow worker` or `onewindow sink` (log in root/<name>.log)."""
        port = self.ports[name] = free_port()
        args = ["worker", "--name", "w1", "--web-port", str(port)] if name == "worker" \
            else ["sink", "--metrics-port", str(port)]
        with open(self.root / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "onewindow_cli", *args],
                                                env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def publish(self, cases: int, seed: int) -> int:
        s = self.settings
        n = 0
        with DepartmentPublishers(
                s.kafka_bootstrap, topics=self.topics, departments=load_registry().codes,
                codec=get_codec(),
                config_for=lambda d: producer_config(s, department_principal(d))) as pub:
            for case in ScenarioGenerator(ScenarioConfig(seed=seed)).cases(cases):
                for event in case:
                    pub.send(event, validate_first=False)
                    n += 1
        return n


def get(port: int, path: str) -> tuple[int | None, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def wait_for(what: str, cond: Callable[[], bool], stack: Stack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, p in stack.procs.items():
            assert p.poll() is None, f"{name} exited {p.returncode}:\n{stack.log(name)}"
        if cond():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} not within {timeout:.0f}s:\n"
                         + "\n".join(f"--- {n}\n{stack.log(n)}" for n in stack.procs))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("health")
    broker = LocalKafka(data_dir=root / "kafka", port=free_port(), controller_port=free_port(),
                        cache_dir=get_settings().cache_dir, credentials_dir=root / "credentials")
    broker.start()
    st: Stack | None = None
    try:
        settings = Settings(kafka_bootstrap=broker.bootstrap, topic_prefix="h.",
                            kafka_security_protocol=broker.security, partitions=3,
                            kafka_credentials_dir=root / "credentials")
        provision(settings, load_registry().codes)
        (root / "data").mkdir()
        env = dict(os.environ, **kafka_env(settings), ONEWINDOW_TOPIC_PREFIX="h.",
                   ONEWINDOW_PARTITIONS="3", ONEWINDOW_DATA_DIR=str(root / "data"),
                   ONEWINDOW_ID_HASH_KEY=ID_KEY, ONEWINDOW_STALL_SECONDS=str(STALL),
                   ONEWINDOW_DATABASE_URL=f"sqlite:///{root / 'model.db'}")
        st = Stack(broker, settings, Topics("h."), env, root)
        st.publish(3, seed=41)  # work for the worker's first batches
        st.start("worker")
        st.start("sink")
        yield st
    finally:
        if st is not None:
            for p in st.procs.values():
                stop(p)
        broker.stop()


def test_healthz_is_200_while_idle_and_503_within_the_stall_time_when_the_worker_is_wedged(
        stack: Stack) -> None:
    w, s = stack.ports["worker"], stack.ports["sink"]
    wait_for("both ready", lambda: get(w, "/readyz")[0] == 200 and get(s, "/readyz")[0] == 200,
             stack, timeout=120)
    wait_for("the worker caught up", lambda: scrape(w).get("onewindow_consumer_lag") == 0
             and scrape(w).get("onewindow_events_consumed_total", 0) > 0, stack, timeout=60)

    # idle for longer than the stall time: nothing waits, nothing is stuck
    seen: set[tuple[str, int | None]] = set()
    until = time.monotonic() + 2 * STALL + 1
    while time.monotonic() < until:
        seen |= {("worker", get(w, "/healthz")[0]), ("sink", get(s, "/healthz")[0])}
        time.sleep(0.25)
    assert seen == {("worker", 200), ("sink", 200)}

    # the wedge: the worker's activity topic is gone, so the outputs of its next batch
    # wait for it, and so does the flush before its next commit, on its event loop
    admin = AdminClient(stack.broker.admin_config())
    for fut in admin.delete_topics([stack.topics.case_activity]).values():
        fut.result(30)
    stack.publish(1, seed=43)
    t0 = time.monotonic()
    wait_for("worker /healthz 503", lambda: get(w, "/healthz")[0] == 503, stack,
             timeout=STALL + 60)
    turned = time.monotonic() - t0
    status, body = get(w, "/healthz")
    verdict = json.loads(body) if status == 503 else {}
    metrics = scrape(w)  # the page the issue saw answering 200 while stuck
    assert status == 503 and verdict["status"] == "unavailable", (status, body)
    assert verdict["reason"] in ("loop_blocked", "busy"), verdict
    assert metrics.get("onewindow_consumer_healthy") == 0, metrics.get(
        "onewindow_consumer_healthy")
    assert get(w, "/readyz")[0] == 503

    # the topic back (provisioning recreates it): the outputs go out, the worker is well
    provision(stack.settings, load_registry().codes)
    wait_for("worker /healthz 200 again", lambda: get(w, "/healthz")[0] == 200, stack,
             timeout=60)
    print(f"wedged worker: /healthz 503 ({verdict['reason']}) {turned:.1f}s after the "  # noqa: T201
          f"wedge, stall {STALL:g}s")


def test_every_consumer_stops_within_seconds_without_the_broker(stack: Stack) -> None:
    for name in ("worker", "sink"):
        if stack.procs[name].poll() is not None:
            stack.start(name)  # the first test alone may have left it stopped
    w, s = stack.ports["worker"], stack.ports["sink"]
    wait_for("both ready", lambda: get(w, "/readyz")[0] == 200 and get(s, "/readyz")[0] == 200,
             stack, timeout=120)

    stack.broker.stop()
    time.sleep(2.0)  # the clients notice and start retrying
    worker, sink = stack.procs["worker"], stack.procs["sink"]
    worker.send_signal(signal.SIGTERM)
    sink.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    took: dict[str, float] = {}
    try:
        for name, p in (("worker", worker), ("sink", sink)):
            try:
                p.wait(max(0.1, 30 - (time.monotonic() - t0)))
            except subprocess.TimeoutExpired:
                continue  # still running after 30 s: the assertion below says so
            took[name] = time.monotonic() - t0
    finally:
        for p in (worker, sink):
            if p.poll() is None:
                p.kill()
                p.wait(10)
    assert set(took) == {"worker", "sink"}, \
        f"still running 30 s after the signal: {sorted({'worker', 'sink'} - set(took))}\n" \
        f"--- worker\n{stack.log('worker')}\n--- sink\n{stack.log('sink')}"
    # ended by itself: 0 graceful, 1 when the stop was cut short (and it says so)
    assert sink.returncode == 0, stack.log("sink")
    assert worker.returncode in (0, 1), stack.log("worker")
    if worker.returncode == 1:
        assert "did not end within" in stack.log("worker")
    print(f"without the broker: worker stopped in {took['worker']:.1f}s "  # noqa: T201
          f"(exit {worker.returncode}), sink in {took['sink']:.1f}s")
