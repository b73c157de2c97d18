"""`onewindow up`'s supervisor (onewindow_cli/stack.py, `Supervisor`) over real, short-lived
processes (`python -c ...`), with a fast restart policy so the test takes a second: the
lines it prints, the pid files, restarts, giving up with the log's last lines, a one-shot
process left alone once done. The whole `up` is tested in
tests/integration/test_supervision.py."""

from __future__ import annotations

import io
import os
import re
import signal
import sys
import time
from pathlib import Path

from onewindow.backoff import Backoff, RestartPolicy
from onewindow_cli.stack import Child, Supervised, Supervisor, describe_exit, log_tail

FAST = RestartPolicy(backoff=Backoff(first=0.05, cap=0.2), fast_exit=5.0, stable_after=10.0,
                     give_up_after=3)


def child(tmp: Path, name: str, code: str, *, one_shot: bool = False) -> Child:
    return Child(name, tmp / f"{name}.log", one_shot=one_shot,
                 argv=[sys.executable, "-c", code], env=dict(os.environ))


def run_until(sup: Supervisor, done: object, timeout: float = 30.0) -> Supervised | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gave_up = sup.tick()
        if gave_up is not None or (callable(done) and done()):
            return gave_up
        time.sleep(0.02)
    raise AssertionError(f"not done within {timeout}s: {sup.out.getvalue()}")  # type: ignore[attr-defined]


def test_a_child_failing_at_start_is_restarted_then_given_up_with_its_log(tmp_path: Path) -> None:
    out = io.StringIO()
    bad = child(tmp_path, "boom", "print('reading the settings'); import sys; sys.exit(3)")
    sup = Supervisor([bad], run_dir=tmp_path, policy=FAST, out=out)
    sup.start(bad)
    gave_up = run_until(sup, None)
    assert gave_up is bad
    lines = out.getvalue().splitlines()
    restarts = [line for line in lines if "restarting it in" in line]
    assert len(restarts) == 2, lines
    for line in restarts:
        assert line.startswith("up: boom exited with status 3 after ")
        assert f"log: {tmp_path / 'boom.log'}" in line
    assert "(fast exit 1 of 3); restarting it in 0s" in restarts[0]
    give_up = next(line for line in lines if "giving up" in line)
    assert give_up.startswith("up: boom exited with status 3")
    assert "3 exits in a row, each within 5s of its start" in give_up
    assert str(tmp_path / "boom.log") in give_up
    tail = [line for line in lines if line.startswith("  | ")]
    assert tail.count("  | reading the settings") == 3  # three runs, each told in the log
    assert sum("onewindow up starts boom" in line for line in tail) == 3
    assert not (tmp_path / "boom.pid").exists()


def test_a_killed_child_comes_back_with_a_new_pid_and_its_pid_file(tmp_path: Path) -> None:
    out = io.StringIO()
    long = child(tmp_path, "worker", "import time; time.sleep(60)")
    sup = Supervisor([long], run_dir=tmp_path, policy=FAST, out=out)
    sup.start(long)
    first = long.pid
    assert first is not None
    assert (tmp_path / "worker.pid").read_text() == f"{first}\n"
    os.kill(first, signal.SIGKILL)
    run_until(sup, lambda: long.pid != first and long.poll() is None)
    assert "up: worker was killed by SIGKILL after " in out.getvalue()
    assert (tmp_path / "worker.pid").read_text() == f"{long.pid}\n"
    sup.stop_all(None)
    assert long.poll() == -signal.SIGTERM
    assert not (tmp_path / "worker.pid").exists()


def test_a_one_shot_child_that_finishes_is_left_alone(tmp_path: Path) -> None:
    out = io.StringIO()
    sim = child(tmp_path, "simulate", "print('sent 10 events')", one_shot=True)
    sup = Supervisor([sim], run_dir=tmp_path, policy=FAST, out=out)
    sup.start(sim)
    run_until(sup, lambda: sim.finished)
    pid = sim.pid
    for _ in range(5):
        assert sup.tick() is None
        time.sleep(0.06)
    assert sim.pid == pid  # not started again
    assert re.fullmatch(r"up: simulate exited with status 0 after \d+s: finished, not "
                        r"restarted\n", out.getvalue())


def test_exit_descriptions_and_log_tails(tmp_path: Path) -> None:
    assert describe_exit(1) == "exited with status 1"
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(-200) == "was killed by signal 200"
    log = tmp_path / "x.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(100)) + b"bad \xff byte\n")
    assert log_tail(log, 3) == ["line 98", "line 99", "bad \ufffd byte"]
    assert log_tail(tmp_path / "missing.log") == []
