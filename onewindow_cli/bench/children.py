"""The child processes a benchmark starts (`onewindow rebuild`, `onewindow reprocess`, a
gateway): waiting for one while sampling its peak memory, and stopping one on the way
out, so that a bench stopped by Ctrl-C or SIGTERM (`onewindow.stopping.Stopped`) leaves
nothing running."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: seconds a child is given to stop on SIGTERM before SIGKILL
STOP_GRACE = 30.0


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``proc`` if it still runs: SIGTERM, SIGKILL after `STOP_GRACE` s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def peak_kib(pid: int) -> int:
    """The peak resident memory (``VmHWM``) of a running process, in KiB (0 when gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def watch(proc: subprocess.Popen[bytes], tick: Callable[[], Any] | None = None,
          every: float = 0.1) -> tuple[int, Any, int]:
    """Wait for ``proc``, sampling its peak resident memory (``VmHWM``: its own address
    space, not the parent's it was forked from) and calling ``tick()`` meanwhile, every
    ``every`` s; its exit code, resource usage (CPU times, its waited-for children
    included) and peak in KiB. Left by an exception (Ctrl-C, `onewindow.stopping.Stopped`),
    it stops ``proc`` first (`stop`)."""
    peak = 0
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                return proc.returncode, usage, peak
            peak = max(peak, peak_kib(proc.pid))
            if tick is not None:
                tick()
            time.sleep(every)
    finally:
        stop(proc)
