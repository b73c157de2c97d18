"""The producer commands as processes (issue 13): with no broker, `onewindow produce`
fails in one line with status 1 and librdkafka's lines stay off the terminal; a
restarted `onewindow simulate` publishes no event id the first run used with other
content (the stream app would dead-letter it as EVENT_ID_CONFLICT); a SIGTERM stops
`onewindow simulate` with status 0 and its cursor saved."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import free_port
from onewindow.topics import Topics
from producers.simulator import load_cursor
from tests.examples import RESTAURANT_EVENTS
from tests.kafka_support import consumer_conf

pytestmark = pytest.mark.integration


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onewindow_cli", *args], capture_output=True,
                          text=True, env=dict(os.environ, **env), timeout=timeout)


@pytest.mark.parametrize("security", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_produce_with_no_broker_is_one_line_and_status_1(tmp_path: Path, security: str) -> None:
    """Nothing listens on the port: one line on stderr (no `%3|...` librdkafka lines),
    exit status 1, within the --timeout (plus start-up)."""
    port = free_port()  # free: nothing listens there
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    for code in load_registry().codes:
        (creds / f"dept-{code}.secret").write_text("not-a-real-password\n")
    env = {"ONEWINDOW_DATA_DIR": str(tmp_path), "ONEWINDOW_KAFKA_SECURITY_PROTOCOL": security,
           "ONEWINDOW_KAFKA_CREDENTIALS_DIR": str(creds)}
    started = time.monotonic()
    res = _cli("produce", str(RESTAURANT_EVENTS), "--bootstrap", f"127.0.0.1:{port}",
               "--timeout", "3", env=env, timeout=60)
    took = time.monotonic() - started
    assert res.returncode == 1, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr[:2000]
    assert lines[0].startswith(f"onewindow produce: 9 of 9 events from {RESTAURANT_EVENTS} "
                               "not delivered within 3s: ")
    assert f"127.0.0.1:{port}" in lines[0]
    assert "%3|" not in res.stderr and "%4|" not in res.stderr
    assert res.stdout == ""
    assert took < 30, took


def _input_events(kafka: str, topics: Topics) -> list[tuple[str, bytes]]:
    """(event_id, encoded value) of every record on the input topics."""
    codec = get_codec()
    consumer = Consumer({**consumer_conf(kafka), "group.id": f"sim-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(topics.inputs(load_registry().codes))
    got: list[tuple[str, bytes]] = []
    idle = time.monotonic() + 10
    try:
        while time.monotonic() < idle:
            msgs = consumer.consume(500, 1.0)
            if msgs:
                idle = time.monotonic() + 5
            for m in msgs:
                if m.error() is None:
                    got.append((str(codec.decode(m.value())["event_id"]), m.value()))
    finally:
        consumer.close()
    return got


def test_a_restarted_simulate_reuses_no_event_id(kafka: str, provisioned: Topics,
                                                 tmp_path: Path) -> None:
    env = {"ONEWINDOW_KAFKA_BOOTSTRAP": kafka, "ONEWINDOW_TOPIC_PREFIX": provisioned.prefix,
           "ONEWINDOW_DATA_DIR": str(tmp_path)}
    args = ("simulate", "--events", "60", "--rate", "500", "--compression", "86400",
            "--invalid-rate", "0", "--duplicate-rate", "0")
    for _ in range(2):
        res = _cli(*args, env=env)
        assert res.returncode == 0, res.stderr
        assert "%3|" not in res.stderr
    assert (tmp_path / "simulate-cursor.json").is_file()
    records = _input_events(kafka, provisioned)
    assert len(records) >= 120
    values: dict[str, set[bytes]] = {}
    for event_id, value in records:
        values.setdefault(event_id, set()).add(value)
    conflicting = [e for e, v in values.items() if len(v) > 1]
    assert conflicting == [], conflicting[:5]


def test_sigterm_stops_simulate_with_its_cursor_saved(kafka: str, provisioned: Topics,
                                                      tmp_path: Path) -> None:
    """SIGTERM (`onewindow up` stopping it) was Python's default: status -15 and the
    simulated time reached since the last periodic save (10 s) lost, so the next run
    replayed it."""
    env = dict(os.environ, ONEWINDOW_KAFKA_BOOTSTRAP=kafka,
               ONEWINDOW_TOPIC_PREFIX=provisioned.prefix, ONEWINDOW_DATA_DIR=str(tmp_path))
    log = tmp_path / "simulate.log"
    started = datetime.now(UTC)
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "onewindow_cli", "simulate", "--rate",
                                 "20", "--compression", "3600", "--backlog-hours", "72",
                                 "--around-the-clock"],  # the cursor in clock hours
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "simulate: run " not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.2)
        time.sleep(1)  # a simulated hour at least
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text(errors="replace")[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    cursor = load_cursor(Settings(kafka_bootstrap=kafka, topic_prefix=provisioned.prefix,
                                  data_dir=tmp_path))
    assert cursor is not None, log.read_text(errors="replace")[-2000:]
    # the run started 72 simulated hours back and ran at least a second at 3,600 x
    assert cursor >= started - timedelta(hours=72) + timedelta(minutes=59)
    assert "simulate: sent " in log.read_text(errors="replace")
