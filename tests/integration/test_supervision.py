"""Processes that heal (issue #13, docs/operations.md "Supervision"), on real processes
and a real secured broker:

- `onewindow up` as a subprocess in its own data directory on free ports: it prints a
  URL for every page of the processes it started, each process's /metrics among them, and
  each answers (issue 16); a SIGKILLed worker and sink come back (new pids, and an event published afterwards reaches the
  read model); a SIGKILLed broker is started again on the same data directory and port,
  the children reconnect by themselves (same pids) and the pipeline carries on; a child
  that keeps failing at start (the counter, its port held by someone else) makes `up`
  give up, naming it and printing the end of its log, and stop the stack. One `up` run
  covers the three, in sequence, to pay the broker's first start once. The child made to
  fail is the counter, restarted after the ID hash key file `up` generated was moved
  away (an unreadable file: every child reads it at start; the counter reads it first).
- A sink and a worker started while no broker answers wait for it (one log line per
  attempt) instead of dying, and stop at once on SIGTERM.
- `onewindow provision` with no broker: exit status 1 and one line after `--wait`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import free_port
from onewindow.provision import provision
from onewindow.read_model.engine import make_engine
from onewindow.security.kafka_auth import CredentialStore, department_principal, producer_config
from onewindow.topics import Topics
from producers.publisher import DepartmentPublishers
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.kafka_support import settings_for

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "onewindow_cli"]


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ONEWINDOW_ setting (the session's broker
    credentials included), plus ``settings``; the jar cache is kept."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ONEWINDOW_") or k == "ONEWINDOW_CACHE_DIR"}
    env.update(settings)
    return env


def wait_for(cond: Callable[[], object], what: str, timeout: float, *,
             alive: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {alive.returncode}\n"
                                 f"{log.read_text(errors='replace')[-4000:] if log else ''}")
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n"
                         f"{log.read_text(errors='replace')[-4000:] if log else ''}")


def pid_of(run: Path, name: str) -> int | None:
    try:
        return int((run / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return ") Z " not in stat  # a zombie is dead, only not yet reaped


def running_again(run: Path, name: str, old: int, argv_part: str) -> Callable[[], bool]:
    def check() -> bool:
        pid = pid_of(run, name)
        return pid is not None and pid != old and alive(pid) and argv_part in cmdline(pid)
    return check


class UpStack:
    """`onewindow up` in ``tmp`` on free ports (2 partitions), with the ID hash key file
    it generates."""

    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "var"
        self.run = self.data / "run"
        self.out = tmp / "up.out"
        self.kafka_port = free_port()
        self.counter_port = free_port()
        self.db_url = f"sqlite:///{self.data / 'model.db'}"
        self.env = clean_env(
            ONEWINDOW_DATA_DIR=str(self.data), ONEWINDOW_DATABASE_URL=self.db_url,
            ONEWINDOW_KAFKA_PORT=str(self.kafka_port),
            ONEWINDOW_KAFKA_CONTROLLER_PORT=str(free_port()),
            ONEWINDOW_COUNTER_PORT=str(self.counter_port),
            ONEWINDOW_WORKER_WEB_PORT=str(free_port()),
            ONEWINDOW_MATERIALS_WEB_PORT=str(free_port()),
            ONEWINDOW_SINK_METRICS_PORT=str(free_port()),
            ONEWINDOW_GATEWAY_PORT=str(free_port()),
            ONEWINDOW_PARTITIONS="2")
        self.proc: subprocess.Popen[bytes] | None = None
        self.gen = ScenarioGenerator(ScenarioConfig(
            seed=13, run=f"sup{os.getpid()}", start=datetime.now(UTC) - timedelta(hours=1)))

    def start(self) -> UpStack:
        with self.out.open("ab") as out:
            self.proc = subprocess.Popen([*CLI, "up"], env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        return self

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_output(self, pattern: str, timeout: float) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            m = re.search(pattern, self.output())
            if m:
                found.append(m)
            return m is not None
        wait_for(seen, f"{pattern!r} in up's output", timeout, alive=self.proc, log=self.out)
        return found[0]

    def printed_urls(self) -> dict[str, str]:
        """label -> URL of the lines `up` printed once the stack answered."""
        announced = self.output().split("onewindow is up", 1)[1]
        return {m.group(1): m.group(2) for m in
                re.finditer(r"^  (\S.*?) +(https?://\S+)", announced, re.MULTILINE)}

    def port_of(self, process: str) -> int:
        """The HTTP port of one of `up`'s children, as this stack configured it."""
        setting = {"counter": "COUNTER_PORT", "gateway": "GATEWAY_PORT",
                   "worker": "WORKER_WEB_PORT", "materials-worker": "MATERIALS_WEB_PORT",
                   "sink": "SINK_METRICS_PORT"}[process]
        return int(self.env[f"ONEWINDOW_{setting}"])

    def publish_case(self) -> str:
        """A fresh case's CaseAccepted, published as its department; its case id."""
        event = self.gen.case()[0]
        s = Settings(kafka_bootstrap=f"127.0.0.1:{self.kafka_port}",
                     kafka_credentials_dir=self.data / "credentials",
                     kafka_security_protocol="SASL_PLAINTEXT")
        with DepartmentPublishers(
                s.kafka_bootstrap, topics=Topics(""), departments=load_registry().codes,
                codec=get_codec(),
                config_for=lambda d: producer_config(s, department_principal(d))) as pub:
            pub.send(event)
            pub.flush(120)
        return str(event["case_id"])

    def in_read_model(self, case_id: str) -> Callable[[], bool]:
        def check() -> bool:
            engine = make_engine(self.db_url)
            try:
                with engine.connect() as conn:
                    return conn.execute(text("SELECT 1 FROM cases WHERE case_id = :c"),
                                        {"c": case_id}).first() is not None
            except Exception:  # noqa: BLE001 - the sink has not created the table yet
                return False
            finally:
                engine.dispose()
        return check

    def stop(self) -> None:
        """SIGTERM `up` (it stops its children and broker); SIGKILL all that is left."""
        pids = [p for p in (pid_of(self.run, f.stem) for f in self.run.glob("*.pid")) if p]
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        for pid in pids:
            if alive(pid) and ("onewindow_cli" in cmdline(pid) or "kafka.Kafka" in cmdline(pid)):
                os.kill(pid, signal.SIGKILL)


def test_up_restarts_a_killed_worker_sink_and_broker_and_gives_up_on_a_child_failing_fast(
        tmp_path: Path) -> None:
    up = UpStack(tmp_path).start()
    t0 = time.monotonic()
    try:
        up.wait_output(r"onewindow is up", 300)
        started = time.monotonic() - t0
        for name in ("up", "kafka", "worker", "materials-worker", "sink", "counter"):
            pid = pid_of(up.run, name)
            assert pid is not None and alive(pid), name
        assert pid_of(up.run, "up") == up.proc.pid  # type: ignore[union-attr]
        assert "kafka.Kafka" in cmdline(pid_of(up.run, "kafka") or 0)
        case = up.publish_case()
        wait_for(up.in_read_model(case), "the first case in the read model", 180,
                 alive=up.proc, log=up.out)

        # 0. the URLs printed: a /metrics page for every process started that serves
        # HTTP, on its port, none for anything else; every URL answers (a page needing a
        # session with a redirect or 401, never an error or a refused connection)
        urls = up.printed_urls()
        serving = {n for n in ("worker", "materials-worker", "sink", "counter", "gateway")
                   if pid_of(up.run, n) is not None}
        assert serving == {"worker", "materials-worker", "sink", "counter", "gateway"}
        metrics = sorted(u for label, u in urls.items() if label.endswith("metrics"))
        assert metrics == sorted(f"http://127.0.0.1:{up.port_of(n)}/metrics"
                                 for n in serving), urls
        assert {int(re.search(r":(\d+)/", u).group(1))  # type: ignore[union-attr]
                for u in urls.values()} == {up.port_of(n) for n in serving}, urls
        assert {"counter screen", "supervisor view", "API docs", "ingest gateway"} <= set(urls)
        for label, url in urls.items():
            status = httpx.get(url, timeout=30).status_code
            assert status < 500 and status != 404, (label, url, status)
            if label.endswith("metrics") and label != "counter metrics":  # the counter's: ops
                assert "# TYPE" in httpx.get(url, timeout=30).text, url

        # 1. the worker and the sink, SIGKILLed, come back by themselves
        t1 = time.monotonic()
        worker, sink = pid_of(up.run, "worker"), pid_of(up.run, "sink")
        assert worker and sink and "onewindow_cli worker" in cmdline(worker)
        os.kill(worker, signal.SIGKILL)
        os.kill(sink, signal.SIGKILL)
        for name, old in (("worker", worker), ("sink", sink)):
            wait_for(running_again(up.run, name, old, f"onewindow_cli {name}"),
                     f"a new {name}", 60, alive=up.proc, log=up.out)
            line = up.wait_output(rf"up: {name} was killed by SIGKILL after \d+s.*"
                                  rf"restarting it in \d+s; log: (\S+)", 10)
            assert line.group(1) == str(up.data / "logs" / f"{name}.log")
        case = up.publish_case()
        wait_for(up.in_read_model(case), "a case published after the kills", 180,
                 alive=up.proc, log=up.out)
        phase1 = time.monotonic() - t1

        # 2. the broker, SIGKILLed, is started again; the children reconnect themselves
        t2 = time.monotonic()
        broker = pid_of(up.run, "kafka")
        worker, sink = pid_of(up.run, "worker"), pid_of(up.run, "sink")
        assert broker and "kafka.Kafka" in cmdline(broker)
        os.kill(broker, signal.SIGKILL)
        up.wait_output(r"up: kafka was killed by SIGKILL after \d+s( \(fast exit 1 of 5\))?; "
                       r"restarting it in 1s; log: \S+/kafka/server\.log", 30)
        up.wait_output(r"up: kafka is back \(pid \d+", 180)
        assert running_again(up.run, "kafka", broker, "kafka.Kafka")()
        case = up.publish_case()
        wait_for(up.in_read_model(case), "a case published after the broker came back", 180,
                 alive=up.proc, log=up.out)
        assert (pid_of(up.run, "worker"), pid_of(up.run, "sink")) == (worker, sink), \
            "the worker or the sink was restarted: it did not reconnect by itself"
        phase2 = time.monotonic() - t2

        # 3. the counter cannot start again (the key file is gone): up gives up on it
        t3 = time.monotonic()
        counter = pid_of(up.run, "counter")
        assert counter and "onewindow_cli counter" in cmdline(counter)
        kafka_now = pid_of(up.run, "kafka")
        children = [pid_of(up.run, n) for n in ("worker", "materials-worker", "sink")]
        key = up.data / "secrets" / "id-hash.key"
        key.rename(key.with_name("moved-away"))
        os.kill(counter, signal.SIGKILL)
        assert up.proc is not None
        code = up.proc.wait(300)
        phase3 = time.monotonic() - t3
        out = up.output()
        assert code == 1, out[-4000:]
        give_up = re.search(r"up: counter exited with status \d+ after \d+s: 5 exits in a "
                            r"row, each within 30s of its start; giving up and stopping the "
                            r"stack\. The last lines of (\S+):\n((?:  \| .*\n)+)", out)
        assert give_up, out[-4000:]
        assert give_up.group(1) == str(up.data / "logs" / "counter.log")
        tail = give_up.group(2).splitlines()
        assert 1 < len(tail) <= 20
        assert tail[-1] == (f"  | onewindow counter: cannot read the ID hash key file {key} "
                            "(ONEWINDOW_ID_HASH_KEY_FILE): No such file or directory"), tail
        assert "up: stopped: counter kept failing at start" in out
        assert not list(up.run.glob("*.pid"))  # all gone with the stack
        for pid in [kafka_now, *children]:
            assert pid is not None and not alive(pid), cmdline(pid or 0)
        print(f"up: ready in {started:.0f}s; worker+sink back and a case through in "  # noqa: T201
              f"{phase1:.0f}s; broker back and a case through in {phase2:.0f}s; gave up on "
              f"the counter in {phase3:.0f}s")
    finally:
        up.stop()


def test_a_sink_and_a_worker_wait_for_the_broker_and_stop_on_sigterm(tmp_path: Path) -> None:
    """Also a sink waiting for its database (a PostgreSQL that does not answer): a SIGTERM
    then was Python's default, exit status -15 (issue 13, the leftovers)."""
    port = free_port()  # nothing listens there
    db_port = free_port()  # nor there
    creds = CredentialStore(tmp_path / "credentials")
    for principal in ("svc-sink", "svc-stream"):
        creds.ensure(principal)
    env = clean_env(ONEWINDOW_DATA_DIR=str(tmp_path), ONEWINDOW_KAFKA_PORT=str(port),
                    ONEWINDOW_KAFKA_CREDENTIALS_DIR=str(tmp_path / "credentials"),
                    ONEWINDOW_DATABASE_URL=f"sqlite:///{tmp_path / 'model.db'}",
                    ONEWINDOW_INSECURE_DEV_KEY="true")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: tmp_path / f"{name}.log" for name in ("sink", "worker", "sink-db")}
    waits = {"sink": rf"WARNING \S+: Kafka on 127\.0\.0\.1:{port} does not answer \(.+\); "
                     r"retrying in 1s",
             "worker": rf"WARNING \S+: Kafka on 127\.0\.0\.1:{port} does not answer \(.+\); "
                       r"retrying in 1s",
             "sink-db": r"WARNING \S+: the database postgresql\S+ does not answer \(.+\); "
                        r"retrying in 1s"}
    try:
        for name, args in (("sink", ["sink", "--metrics-port", str(free_port())]),
                           ("worker", ["worker", "--web-port", str(free_port())]),
                           ("sink-db", ["sink", "--metrics-port", str(free_port()),
                                        "--database-url",
                                        f"postgresql://sink@127.0.0.1:{db_port}/model"])):
            with logs[name].open("ab") as out:
                procs[name] = subprocess.Popen([*CLI, *args], env=env, stdout=out,
                                               stderr=subprocess.STDOUT)
        for name, proc in procs.items():
            wait_for(lambda n=name: re.search(waits[n], logs[n].read_text(errors="replace")),
                     f"the {name}'s first retry line", 90, alive=proc, log=logs[name])
        for name, proc in procs.items():  # still waiting, not dead
            assert proc.poll() is None, logs[name].read_text(errors="replace")[-3000:]
            proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            assert proc.wait(20) == 0, logs[name].read_text(errors="replace")[-3000:]
            assert "Traceback" not in logs[name].read_text(errors="replace")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()


def test_provision_without_a_broker_exits_1_with_one_line(tmp_path: Path) -> None:
    CredentialStore(tmp_path / "credentials").ensure("admin")
    port = free_port()
    env = clean_env(ONEWINDOW_DATA_DIR=str(tmp_path), ONEWINDOW_KAFKA_PORT=str(port))
    t0 = time.monotonic()
    r = subprocess.run([*CLI, "provision", "--wait", "1"], env=env, capture_output=True,
                       text=True, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    *waiting, last = r.stderr.splitlines()
    # one line saying it waits (when a first attempt failed before the bound), then the error
    assert waiting in ([], [f"onewindow provision: waiting up to 1s for Kafka on "
                            f"127.0.0.1:{port} ..."]), r.stderr
    assert re.fullmatch(rf"onewindow provision: no Kafka broker answered on 127\.0\.0\.1:"
                        rf"{port} within 1s \(.*Connection refused.*\)", last), r.stderr
    assert r.stdout == ""
    assert took >= 1


def test_provision_with_a_wrong_password_says_the_broker_refused_it(
        kafka: str, tmp_path: Path) -> None:
    """A newcomer's finding (issue 17): a wrong password was reported as "no Kafka broker
    answered", and they looked for a broker that was running."""
    env = clean_env(ONEWINDOW_DATA_DIR=str(tmp_path), ONEWINDOW_KAFKA_BOOTSTRAP=kafka,
                    ONEWINDOW_KAFKA_SECURITY_PROTOCOL=os.environ[
                        "ONEWINDOW_KAFKA_SECURITY_PROTOCOL"],
                    ONEWINDOW_KAFKA_USERNAME="admin", ONEWINDOW_KAFKA_PASSWORD="not-it")
    r = subprocess.run([*CLI, "provision", "--wait", "3"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    last = r.stderr.splitlines()[-1]
    assert re.fullmatch(rf"onewindow provision: Kafka on {re.escape(kafka)} refused the "
                        rf"sign-in as admin for 3s \(.*[Aa]uthentication.*\): check the "
                        rf"password \(ONEWINDOW_KAFKA_PASSWORD, or the principal's file in "
                        rf"the credentials directory\)", last), r.stderr
    assert "Traceback" not in r.stderr


def test_rebuild_without_a_broker_exits_1_with_one_line(tmp_path: Path) -> None:
    """It was a traceback after librdkafka's own lines (issue 13, the leftovers)."""
    CredentialStore(tmp_path / "credentials").ensure("svc-sink")
    port = free_port()
    env = clean_env(ONEWINDOW_DATA_DIR=str(tmp_path), ONEWINDOW_KAFKA_PORT=str(port),
                    ONEWINDOW_DATABASE_URL=f"sqlite:///{tmp_path / 'model.db'}",
                    ONEWINDOW_INSECURE_DEV_KEY="true")
    r = subprocess.run([*CLI, "rebuild", "--wait", "4"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "development key" not in ln]
    *waiting, last = lines
    assert waiting in ([], [f"onewindow rebuild: waiting up to 4s for Kafka on "
                            f"127.0.0.1:{port} ..."]), r.stderr
    assert re.fullmatch(rf"onewindow rebuild: no Kafka broker answered on 127\.0\.0\.1:"
                        rf"{port} within 4s \(.*Connection refused.*\)", last), r.stderr
    assert r.stdout == ""


def _refusals(kafka: str, provisioned_prefix: str, prefix: str, partitions: int,
              tmp_path: Path) -> dict[str, str]:
    """Each stream worker started with ``prefix`` and ``partitions`` on a cluster where
    ``provisioned_prefix`` is provisioned with 3 partitions: command -> the one line it
    refused with (each checked to exit 2, with no traceback)."""
    provision(settings_for(kafka, topic_prefix=provisioned_prefix, partitions=3),
              load_registry().codes)
    env = dict(os.environ, ONEWINDOW_KAFKA_BOOTSTRAP=kafka, ONEWINDOW_TOPIC_PREFIX=prefix,
               ONEWINDOW_DATA_DIR=str(tmp_path), ONEWINDOW_PARTITIONS=str(partitions),
               ONEWINDOW_INSECURE_DEV_KEY="true")
    lines = {}
    for command in ("worker", "materials-worker"):
        r = subprocess.run([*CLI, command, "--web-port", str(free_port())], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr[-3000:]
        assert "Traceback" not in r.stderr
        lines[command] = r.stderr.strip().splitlines()[-1]
    return lines


def test_a_worker_set_for_another_partition_count_refuses_to_start(
        kafka: str, topic_prefix: str, tmp_path: Path) -> None:
    """A newcomer's finding (issue 17): a worker without ONEWINDOW_PARTITIONS=12 on a
    generation of 12 partitions started, dead-lettered most records as WRONG_PARTITION
    and committed past them. It now refuses in one line (exit 2) before Faust starts."""
    for command, last in _refusals(kafka, topic_prefix, topic_prefix, 6, tmp_path).items():
        assert re.fullmatch(
            rf"onewindow {command}: the topics of prefix '{re.escape(topic_prefix)}' have 3 "
            rf"partitions \(.+\), but this worker is set for 6 \(ONEWINDOW_PARTITIONS\): set "
            rf"ONEWINDOW_PARTITIONS=3 .*", last), last


def test_a_worker_on_a_prefix_never_provisioned_refuses_to_start(
        kafka: str, topic_prefix: str, tmp_path: Path) -> None:
    """A worker on a prefix nobody provisioned ended in Faust's traceback (exit 1) when it
    declared its changelog; it now refuses in one line (exit 2) naming what to do."""
    other = f"never{topic_prefix}"  # the broker's principals exist: another prefix's
    for command, last in _refusals(kafka, topic_prefix, other, 3, tmp_path).items():
        assert last == (
            f"onewindow {command}: none of the output topics of prefix '{other}' are visible "
            f"to svc-stream: run `onewindow provision` with ONEWINDOW_TOPIC_PREFIX={other} "
            "first, or check the prefix (docs/operations.md, \"The Kafka trust boundary\")")
