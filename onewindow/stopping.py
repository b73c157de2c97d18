"""SIGTERM and SIGINT as a stop request, in one of two ways.

An event the process's waits and loops check (`stop_on_signals`):

    with stop_on_signals() as stop:
        if not wait_for_database(url, stop=stop):   # a stop during the wait
            return 0

Every long-running command takes its stop this way from its first wait on (the database,
the broker: docs/operations.md, "Supervision"), so a SIGTERM that comes while it waits
ends it at once with exit status 0 instead of Python's default (killed, status -15),
and a command that keeps state on the way out (the sink's batch in hand, the
simulator's cursor) gets to keep it.

An exception in the main thread (`raise_on_signals`), for a command that starts brokers,
databases or workers of its own and blocks in code that checks no event (the benches):
`Stopped` (a `KeyboardInterrupt`, as Ctrl-C's) unwinds it through its ``finally`` blocks
and context managers, which stop what it started. Without it a SIGTERM killed the
command at once and left its Kafka JVMs running (they run in sessions of their own).
Standard library only.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["STOP_SIGNALS", "Stopped", "raise_on_signals", "stop_on_signals"]

#: what stops a process of the project: SIGTERM (`onewindow up`, a container runtime,
#: systemd) and SIGINT (Ctrl-C)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(KeyboardInterrupt):  # noqa: N818 - named for what happened, as KeyboardInterrupt
    """A stop signal raised in the main thread by `raise_on_signals`: ``signum`` (e.g.
    ``signal.SIGTERM``), ``name`` (``"SIGTERM"``), ``exit_status`` (128 + the signal's
    number: 143 for SIGTERM, 130 for SIGINT, the shell's convention)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_status = 128 + signum
        super().__init__(self.name)


@contextmanager
def _handling(signals: tuple[signal.Signals, ...],
              handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """``handler`` for ``signals`` while the block runs, the previous handlers put back
    when it ends (Python's rule for signal handlers: from the main thread only,
    ``ValueError`` otherwise)."""
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def stop_on_signals(signals: tuple[signal.Signals, ...] = STOP_SIGNALS
                    ) -> Iterator[threading.Event]:
    """An event that ``signals`` set while the block runs; the handlers that were there
    before are put back when it ends (a framework that installs its own afterwards, as
    uvicorn and Faust do, finds the defaults). Only from the main thread (Python's rule
    for signal handlers: ``ValueError`` otherwise)."""
    stop = threading.Event()
    with _handling(signals, lambda *_: stop.set()):
        yield stop


@contextmanager
def raise_on_signals(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """The first of ``signals`` while the block runs raises `Stopped` in the main thread
    (wherever it waits: a ``time.sleep``, a process's ``wait``, a broker's poll once it
    returns), so the ``finally`` blocks and context managers it unwinds through stop
    the processes they started. Later signals are ignored until the block ends, so a
    second Ctrl-C or SIGTERM does not cut that clean-up short (it has limits of its own:
    a broker gets 30 s, then SIGKILL); SIGKILL still ends the process at once, leaving
    its children behind. The previous handlers are put back at the end. Only from the
    main thread (``ValueError`` otherwise)."""
    fired: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        if not fired:
            fired.append(signum)
            raise Stopped(signum)

    with _handling(signals, handler):
        yield
