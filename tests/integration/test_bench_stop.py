"""SIGTERM to a bench that started its own broker stops the broker's JVM too (a
newcomer's SIGTERM to `onewindow bench --brokers 3` left three Kafka JVMs running: they
run in sessions of their own, and Python's default SIGTERM skipped every `finally`).

The cheapest such bench: `onewindow bench` without ONEWINDOW_KAFKA_BOOTSTRAP starts one
secured broker from the jars under its temporary directory (here under the test's own
TMPDIR, which is how its JVM is found in /proc). Once the broker has started, the bench
gets SIGTERM; it must end with one line and 143 and leave no JVM. Nothing is timed: the
waits are generous bounds on conditions. Every bench runs under the same mechanism
(`onewindow.stopping.raise_on_signals`; tests/unit/onewindow_cli/test_bench_stop.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

#: seconds allowed for the bench to start its broker on a loaded 2-core machine
START_S = 300.0
#: seconds allowed from the SIGTERM until the bench and its broker are gone (the broker's
#: controlled shutdown, SIGKILL after 30 s)
STOP_S = 120.0
STARTED = "Transition from STARTING to STARTED"


def _broker_jvms(root: Path) -> dict[int, Path]:
    """Kafka JVMs whose log directory is under ``root``: pid -> that directory."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        logs = [a.removeprefix("-Dkafka.logs.dir=") for a in argv
                if a.startswith("-Dkafka.logs.dir=")]
        if "kafka.Kafka" in argv and logs and Path(logs[0]).is_relative_to(root):
            found[int(proc.name)] = Path(logs[0])
    return found


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: it has exited, its parent not yet told)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_sigterm_stops_the_bench_and_its_broker(tmp_path: Path) -> None:
    root = (tmp_path / "tmp").resolve()
    root.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("ONEWINDOW_KAFKA_BOOTSTRAP", "ONEWINDOW_KAFKA_CREDENTIALS_DIR")}
    env["TMPDIR"] = str(root)  # the bench's temporary directory, its broker's data in it
    out, err = tmp_path / "bench.out", tmp_path / "bench.err"
    with out.open("wb") as o, err.open("wb") as e:
        bench = subprocess.Popen(
            [sys.executable, "-m", "onewindow_cli", "bench", "--events", "200", "--rounds",
             "1", "--latency-events", "20", "--hold-cases", "20",
             "--out", str(tmp_path / "results")],
            env=env, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    jvms: dict[int, Path] = {}
    try:
        deadline = time.monotonic() + START_S
        while True:
            jvms = _broker_jvms(root)
            if jvms and all(STARTED in _text(d / "server.log") for d in jvms.values()):
                break
            assert bench.poll() is None, f"the bench ended ({bench.returncode}) before its " \
                f"broker started: {_text(err)[-2000:]}"
            assert time.monotonic() < deadline, \
                f"no broker of the bench started within {START_S:.0f} s: {_text(err)[-2000:]}"
            time.sleep(0.5)
        assert len(jvms) == 1, jvms

        bench.send_signal(signal.SIGTERM)
        assert bench.wait(STOP_S) == 143, _text(err)[-3000:]
        lines = _text(err).strip().splitlines()
        assert lines[-1] == ("onewindow bench: stopped by SIGTERM before the end; the "
                             "processes it started are stopped, nothing was reported"), lines
        assert "Traceback" not in _text(err)
        deadline = time.monotonic() + STOP_S
        while any(_running(pid) for pid in jvms) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [pid for pid in jvms if _running(pid)], "the broker's JVM outlived the bench"
        assert not _broker_jvms(root)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait(30)
        for pid in jvms:  # only this test's broker (its own session: pgid = pid)
            if _running(pid):
                os.killpg(pid, signal.SIGKILL)
