"""An HTTP server of the project as a process (`python -m onewindow_cli counter|gateway
--port P`), for tests of what the running server does: started on a free port of
127.0.0.1, waited for until it answers, stopped (SIGTERM) afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from onewindow.kafka_local import free_port
from tests.integration.streams import stop


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any of its ONEWINDOW_* variables, plus
    ``settings`` (``DATABASE_URL="sqlite:///..."``) as ONEWINDOW_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEWINDOW_")}
    env.update({f"ONEWINDOW_{k}": v for k, v in settings.items()})
    return env


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


@contextmanager
def serving(command: str, env: Mapping[str, str], log: Path, *, ready: str = "/healthz",
            timeout: float = 60) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`onewindow COMMAND --port P` with ``env``, its output appended to ``log``; yields
    (base URL, process) once ``GET ready`` answers 200 (within ``timeout`` seconds, else
    the test fails with the log's tail; so it does if the process exits first)."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "onewindow_cli", command, "--port",
                                 str(port)], env=dict(env), stdout=out,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"{command} exited: {log_tail(log)}"
            assert time.monotonic() < deadline, f"{command} did not start: {log_tail(log)}"
            try:
                if httpx.get(base + ready, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base, proc
    finally:
        stop(proc)
