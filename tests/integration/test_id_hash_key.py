"""Every process that hashes ID numbers refuses to start without a key, in one line on
stderr and exit status 2, and starts with the development key when told
`--insecure-dev-key` (onewindow/security/id_key.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from onewindow.kafka_local import free_port
from onewindow.topics import Topics
from tests.integration.streams import stop

pytestmark = pytest.mark.integration

KEY_ENV = ("ONEWINDOW_ID_HASH_KEY", "ONEWINDOW_ID_HASH_KEY_FILE", "ONEWINDOW_INSECURE_DEV_KEY")


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    env.update(ONEWINDOW_DATA_DIR=str(tmp / "data"),
               ONEWINDOW_DATABASE_URL=f"sqlite:///{tmp / 'model.db'}", **extra)
    return env


@pytest.mark.parametrize("command", ["counter", "sink", "rebuild", "worker",
                                     "materials-worker"])
def test_without_a_key_a_hashing_command_exits_2_in_one_line(
        command: str, tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "onewindow_cli", command], env=_env(tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"onewindow {command}: no ID hash key: ")
    for way in ("ONEWINDOW_ID_HASH_KEY_FILE", "`onewindow up`", "--insecure-dev-key"):
        assert way in lines[0]
    assert not (tmp_path / "model.db").exists()  # stopped before touching the model


def _wait_for(proc: subprocess.Popen[bytes], log: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
        time.sleep(0.2)


def test_the_counter_starts_with_insecure_dev_key(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "counter.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "onewindow_cli", "counter", "--port",
                                 str(port), "--insecure-dev-key"], env=_env(tmp_path),
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for(proc, log, f"counter API on http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answers (whatever the model's state)
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    log.read_text(errors="replace")[-2000:]
                time.sleep(0.2)
        assert "built-in development key" in log.read_text()  # and says so
    finally:
        stop(proc)


def test_the_sink_starts_with_insecure_dev_key(
        provisioned: Topics, kafka: str, tmp_path: Path) -> None:
    log = tmp_path / "sink.log"
    env = _env(tmp_path, ONEWINDOW_KAFKA_BOOTSTRAP=kafka,
               ONEWINDOW_TOPIC_PREFIX=provisioned.prefix)
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "onewindow_cli", "sink",
                                 "--metrics-port", str(free_port()), "--insecure-dev-key"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for(proc, log, "sink: ")
        assert "built-in development key" in log.read_text()
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text(errors="replace")[-2000:]
