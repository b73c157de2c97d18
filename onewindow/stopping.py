"""SIGTERM and SIGINT as a stop request: an event the process's waits and loops check.

    with stop_on_signals() as stop:
        if not wait_for_database(url, stop=stop):   # a stop during the wait
            return 0

Every long-running command takes its stop this way from its first wait on (the database,
the broker: docs/operations.md, "Supervision"), so a SIGTERM that comes while it waits
ends it at once with exit status 0 instead of Python's default (killed, status -15),
and a command that keeps state on the way out (the sink's batch in hand, the
simulator's cursor) gets to keep it. Standard library only.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["STOP_SIGNALS", "stop_on_signals"]

#: what stops a process of the project: SIGTERM (`onewindow up`, a container runtime,
#: systemd) and SIGINT (Ctrl-C)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(signals: tuple[signal.Signals, ...] = STOP_SIGNALS
                    ) -> Iterator[threading.Event]:
    """An event that ``signals`` set while the block runs; the handlers that were there
    before are put back when it ends (a framework that installs its own afterwards, as
    uvicorn and Faust do, finds the defaults). Only from the main thread (Python's rule
    for signal handlers: ``ValueError`` otherwise)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
