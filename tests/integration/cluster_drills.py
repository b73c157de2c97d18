"""The stack on the three-node cluster for the failure drills (tests/integration/
test_cluster_drills.py; issue 17, point 4): the real workers and the sink as processes
signed in to the `kafka_cluster` fixture's cluster, simulated department traffic from a
thread, and the end of every drill: the read model equal to the pure fold and the pure
link rules of everything produced, no case, timeline entry or link lost or doubled.

Every wait is on a condition with a generous deadline (the machines are shared); a
process that exits while waited for fails the wait at once, naming its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from counter.app import create_app
from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafkaCluster, free_port
from onewindow.provision import material_index_topic, provision
from onewindow.read_model.engine import make_engine
from onewindow.security.kafka_auth import (
    ADMIN,
    client_config,
    department_principal,
    kafka_env,
    producer_config,
)
from onewindow.topics import Topics
from producers.publisher import DepartmentPublishers
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.integration.streams import ID_KEY, shuffled_with_duplicates
from tests.kafka_support import cluster_settings
from tests.read_model_support import (
    dump_model,
    expected_case,
    expected_links,
    expected_views,
    group_by_case,
)
from tests.staff_support import bearer_for

#: the drills' partition count: two per worker with three workers
PARTITIONS = 6
#: seconds any one condition is waited for (a SIGKILLed broker is fenced after 9 s, a
#: SIGKILLed worker's partitions move after its 15 s session; both longer under load)
WAIT = 150.0


def wait_until(cond: Callable[[], bool], what: str, timeout: float = WAIT,
               procs: Iterable[Proc] = ()) -> float:
    """Poll ``cond`` until it holds; returns the seconds it took. Fails after ``timeout``
    or as soon as one of ``procs`` has exited."""
    start = time.monotonic()
    procs = list(procs)
    while True:
        for p in procs:
            p.check()
        try:
            if cond():
                return time.monotonic() - start
        except KafkaException:
            pass  # a broker away a moment: ask again
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.3)


@dataclass
class Proc:
    """One `onewindow` child process and its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    stopped: bool = False  # by the drill: its end is no failure

    def check(self) -> None:
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}: "
                                 f"{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.stopped = True
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        return self.popen.returncode


@dataclass
class DrillStack:
    """A topic prefix of its own on the cluster, provisioned; its processes under
    ``tmp`` (logs, state directories, the SQLite read model)."""

    cluster: LocalKafkaCluster
    tmp: Path
    prefix: str
    standby_replicas: int = 0
    settings: Settings = field(init=False)
    topics: Topics = field(init=False)
    env: dict[str, str] = field(init=False)
    db_url: str = field(init=False)
    procs: dict[str, Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.settings = cluster_settings(self.cluster, topic_prefix=self.prefix,
                                         partitions=PARTITIONS)
        self.topics = Topics(self.prefix)
        self.db_url = f"sqlite:///{self.tmp / 'model.db'}"
        provision(self.settings, load_registry().codes)
        self.env = dict(os.environ, **kafka_env(self.settings),
                        ONEWINDOW_TOPIC_PREFIX=self.prefix, ONEWINDOW_DATA_DIR=str(self.tmp),
                        ONEWINDOW_PARTITIONS=str(PARTITIONS), ONEWINDOW_ID_HASH_KEY=ID_KEY,
                        ONEWINDOW_DATABASE_URL=self.db_url,
                        ONEWINDOW_TABLE_STANDBY_REPLICAS=str(self.standby_replicas))

    @property
    def admin_conf(self) -> dict[str, Any]:
        return producer_config(self.settings, ADMIN)

    # ------------------------------------------------------------------ processes

    def start(self, name: str, *args: str) -> Proc:
        log = self.tmp / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen([sys.executable, "-m", "onewindow_cli", *args],
                                     env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs[name] = Proc(name, popen, log)
        return self.procs[name]

    def worker(self, name: str) -> Proc:
        """A case-state worker, its state in ``<tmp>/stream/<name>``."""
        return self.start(name, "worker", "--name", name, "--web-port", str(free_port()))

    def materials(self, name: str = "m1") -> Proc:
        return self.start(name, "materials-worker", "--name", name, "--web-port",
                          str(free_port()))

    def sink(self, name: str = "sink") -> Proc:
        return self.start(name, "sink", "--metrics-port", str(free_port()))

    def running(self) -> list[Proc]:
        """The processes the drill has not stopped: one of them that ended by itself
        fails every wait given them (a worker that died at start-up was once left out,
        and a drill waited 150 s for commits that could not come)."""
        return [p for p in self.procs.values() if not p.stopped]

    def wait_flowing(self) -> float:
        """Until every partition of both stream apps' inputs is assigned to a member of
        its group (the workers are past start-up), each process alive; returns the
        seconds it took. A drill kills a broker mid-stream, not during start-up (a worker
        survives a broker down at start-up: test_kafka_cluster)."""
        codes = load_registry().codes
        wanted = [(self.topics.case_state_app, set(self.topics.inputs(codes))),
                  (self.topics.materials_app, {self.topics.case_activity})]

        def assigned() -> bool:
            for group, topics in wanted:
                got = {(t, p) for parts in self.assignments(group).values()
                       for t, p in parts if t in topics}
                if len(got) < len(topics) * PARTITIONS:
                    return False
            return True
        return wait_until(assigned, "both stream apps to hold every partition",
                          procs=self.running())

    def stop_all(self) -> None:
        for p in reversed(list(self.procs.values())):
            p.stop()

    # ------------------------------------------------------------------ the groups

    def _consumer(self) -> Consumer:
        return Consumer({**client_config(self.settings, ADMIN),
                         "group.id": f"drill-{uuid.uuid4().hex}", "enable.auto.commit": False})

    def behind(self, group: str, topics: Iterable[str]) -> list[str]:
        """The partitions of ``topics`` whose end ``group`` has not committed."""
        consumer = Consumer({**client_config(self.settings, ADMIN), "group.id": group,
                             "enable.auto.commit": False})
        try:
            parts = [TopicPartition(t, p) for t in topics
                     for p in consumer.list_topics(t, timeout=10).topics[t].partitions]
            out = []
            for tp in consumer.committed(parts, timeout=10):
                _lo, hi = consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=10)
                if hi > 0 and tp.offset < hi:
                    out.append(f"{tp.topic}[{tp.partition}] {tp.offset}/{hi}")
            return out
        finally:
            consumer.close()

    def committed(self, group: str, parts: Iterable[tuple[str, int]]) -> dict[tuple[str, int],
                                                                             int]:
        consumer = Consumer({**client_config(self.settings, ADMIN), "group.id": group,
                             "enable.auto.commit": False})
        try:
            got = consumer.committed([TopicPartition(t, p) for t, p in parts], timeout=10)
            return {(tp.topic, tp.partition): tp.offset for tp in got}
        finally:
            consumer.close()

    def assignments(self, group: str) -> dict[str, set[tuple[str, int]]]:
        """Each member's assigned partitions, by its static instance id (stable group)."""
        admin = AdminClient(self.admin_conf)
        desc = admin.describe_consumer_groups([group], request_timeout=10)[group] \
            .result(timeout=15)
        return {(m.group_instance_id or m.member_id):
                {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}
                for m in desc.members}

    def wait_caught_up(self) -> float:
        """Until both stream apps and the sink have committed every record produced;
        returns the seconds it took."""
        codes = load_registry().codes
        groups = [(self.topics.case_state_app, self.topics.inputs(codes)),
                  (self.topics.materials_app,
                   [self.topics.case_activity, material_index_topic(self.topics)])]
        took = 0.0
        for group, topics in groups:
            try:
                took += wait_until(lambda g=group, t=topics: not self.behind(g, t),
                                   f"{group} to commit every record", procs=self.running())
            except AssertionError as exc:  # say which partitions stood where
                raise AssertionError(f"{exc}: behind {self.behind(group, topics)}") from None
        engine = make_engine(self.db_url)
        try:
            took += wait_until(lambda: self._sink_caught_up(engine),
                               "the sink to reach the end of the output topics",
                               procs=self.running())
        finally:
            engine.dispose()
        return took

    def _sink_caught_up(self, engine: Engine) -> bool:
        from sqlalchemy import select  # noqa: PLC0415 - only here

        from onewindow.read_model.tables import ConsumedOffset  # noqa: PLC0415

        consumer = self._consumer()
        try:
            ends = {}
            for t in self.topics.outputs():
                for p in consumer.list_topics(t, timeout=10).topics[t].partitions:
                    hi = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                    if hi > 0:
                        ends[(t, p)] = hi
        finally:
            consumer.close()
        try:
            with engine.connect() as conn:
                stored = {(t, p): o for t, p, o in conn.execute(select(
                    ConsumedOffset.topic, ConsumedOffset.partition, ConsumedOffset.next_offset))}
        except Exception:  # noqa: BLE001 - the sink has not created the model yet
            return False
        return all(stored.get(k, 0) >= v for k, v in ends.items())

    # ------------------------------------------------------------------ the check

    def assert_model_is_the_fold(self, cases: list[list[dict[str, Any]]]) -> None:
        """The read model holds every case as the pure fold of its events (through the
        counter's API), each case's timeline every distinct event once in order, the
        links of the pure rules, no other case, no dead letter."""
        flat = [e for c in cases for e in c]
        engine = make_engine(self.db_url)
        try:
            model = dump_model(engine)
            assert len(model["cases"]) == len(cases), (len(model["cases"]), len(cases))
            distinct = {(e["case_id"], e["event_id"]) for e in flat}
            assert len(model["timeline_entries"]) == len(distinct)
            assert model["dead_letters"] == []
            now = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
            cal = load_calendar()
            app = create_app(Settings(database_url=self.db_url, topic_prefix=self.prefix,
                                      id_hash_key=SecretStr(ID_KEY)),
                             engine=engine, clock=lambda: now)
            with TestClient(app, headers=bearer_for(self.db_url, "clerk")) as client:
                for case_id, view in expected_views(group_by_case(flat)).items():
                    got = client.get(f"/api/cases/{case_id}").json()
                    assert got == expected_case(view, now, cal), case_id
                for case in cases:
                    order = sorted({e["event_id"]: e for e in case}.values(),
                                   key=lambda e: (e["occurred_at"], e["event_id"]))
                    body = client.get(f"/api/cases/{case[0]['case_id']}/timeline",
                                      params={"limit": 500}).json()
                    assert [i["event_id"] for i in body["items"]] == \
                        [e["event_id"] for e in order], case[0]["case_id"]
            want_links, _avoidable = expected_links(flat)
            links = model["material_links"]
            assert len(links) == len(want_links)
            assert {(r[0], r[1]) for r in links} == set(want_links)
        finally:
            engine.dispose()


class Load:
    """Simulated department traffic from a thread: the events of ``cases`` (shuffled,
    about a tenth sent twice, as a department's retries would), each published as its
    department (acks=all, idempotent), about ``rate`` events a second."""

    def __init__(self, stack: DrillStack, cases: int, seed: int, rate: float) -> None:
        self.cases = list(ScenarioGenerator(ScenarioConfig(seed=seed)).cases(cases))
        self.events = shuffled_with_duplicates(self.cases, seed=seed)
        self.rate = rate
        s = stack.settings
        self.pub = DepartmentPublishers(
            s.kafka_bootstrap, topics=stack.topics, departments=load_registry().codes,
            codec=get_codec(), config_for=lambda d: producer_config(s, department_principal(d)))
        self.sent = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._go = threading.Event()
        self._go.set()

    def _run(self) -> None:
        try:
            start = time.monotonic()
            for i, e in enumerate(self.events):
                if not self._go.is_set():  # paused: the schedule moves on by the pause
                    paused = time.monotonic()
                    self._go.wait()
                    start += time.monotonic() - paused
                ahead = start + i / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                self.pub.send(e, validate_first=False)
                self.sent = i + 1
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def start(self) -> Load:
        self.thread.start()
        return self

    def pause(self) -> None:
        """Send nothing more until :meth:`resume` (the event being sent still goes): a
        drill that must see traffic after its failure pauses before it, however slow
        the machine made the steps before."""
        self._go.clear()

    def resume(self) -> None:
        self._go.set()

    def wait_sent(self, share: float, procs: Iterable[Proc] = ()) -> None:
        """Until ``share`` of the events were handed to the producers."""
        n = int(share * len(self.events))
        wait_until(lambda: self.sent >= n or self.error is not None,
                   f"{n} events sent", procs=procs)
        assert self.error is None, self.error

    def finish(self, procs: Iterable[Proc] = ()) -> None:
        """Until every event was sent and acknowledged by the cluster."""
        wait_until(lambda: not self.thread.is_alive(), "the load to end", procs=procs)
        assert self.error is None, self.error
        report = self.pub.flush(WAIT)
        assert report.total == len(self.events), report
