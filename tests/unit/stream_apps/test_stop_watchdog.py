"""The stop watchdog of the Faust workers (stream_apps.faust_base): a stop that hangs is
cut short with one log line and exit status 1; a second signal exits at once. Real child
processes whose main thread is stuck, as a worker's is when its loop waits on a broker
that is gone (the whole worker against a stopped broker:
tests/integration/test_health_and_stop.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

CHILD = textwrap.dedent("""
    import logging, signal, sys, time
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from stream_apps.faust_base import StopWatchdog
    watchdog = StopWatchdog({timeout})
    signal.signal(signal.SIGTERM, watchdog.on_signal)
    print("ready", flush=True)
    time.sleep(120)  # the stuck stop: the signal handler runs, the sleep goes on
    print("the sleep ended", flush=True)
""")


def run_child(timeout: float) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(timeout=timeout)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def test_a_stop_that_hangs_is_cut_short_with_one_line_and_exit_1() -> None:
    child = run_child(timeout=1.0)
    child.send_signal(signal.SIGTERM)
    try:
        _out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 1, err
    assert "stopping (signal SIGTERM)" in err
    assert "the graceful stop (signal SIGTERM) did not end within 1s" in err


def test_a_second_signal_exits_at_once() -> None:
    child = run_child(timeout=3600.0)
    child.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    try:
        _out, err = child.communicate(timeout=60)  # not the hour of the watchdog
    finally:
        child.kill()
    assert child.returncode == 1, err
    assert "second SIGTERM: exiting now" in err
