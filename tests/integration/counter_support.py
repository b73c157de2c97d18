"""The counter app as a process (`python -m onewindow_cli counter`) over the worked
example's read model in SQLite, no broker: for tests of what the running server does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from onewindow.kafka_local import free_port
from tests.integration.counter_oidc_support import ID_KEY, load_example
from tests.integration.streams import stop


@contextmanager
def counter_process(tmp: Path, **settings: str) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of a running counter; ``settings``: more ONEWINDOW_*
    variables (``LOOKUP_PER_CLIENT_PER_MINUTE="3"``). None of the caller's own."""
    db_url = f"sqlite:///{tmp / 'model.db'}"
    load_example(db_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEWINDOW_")}
    env.update(ONEWINDOW_DATABASE_URL=db_url, ONEWINDOW_ID_HASH_KEY=ID_KEY,
               ONEWINDOW_DATA_DIR=str(tmp / "data"))
    env.update({f"ONEWINDOW_{k}": v for k, v in settings.items()})
    log = tmp / "counter.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "onewindow_cli", "counter", "--port",
                                 str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the counter did not start"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base, db_url
    finally:
        stop(proc)
