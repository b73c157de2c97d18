"""Where the events of a large request are read and checked against the rules: in worker
processes of the gateway's own, so the gateway uses more than one core.

Checking an event (``gateway.answers.prepare``: the JSON form to an event, the rules of
domain.md section 2, the Avro encoding, the fingerprint) is pure CPU work in Python: about
half of what the gateway spends on an event of a batch of 500 (docs/benchmarks.md, "The
ingestion gateway"). In a thread it runs under the same interpreter lock as the event
loop, so the gateway process tops out at one core. :class:`Checker` runs it in
``processes`` worker processes instead (``ONEWINDOW_GATEWAY_CHECK_PROCESSES``, default
1; started with ``spawn``, never ``fork``: the gateway holds librdkafka's threads), each
with its own codec and the registry's codes. What crosses the process boundary is kept
cheap, because the gateway process pays for it on the event loop's core: the request's
body goes as its bytes (given the body, the worker splits it again, which costs the
worker what unpickling the parsed events would, and the gateway nothing), and the
prepared records come back pickled field by field (``__reduce__`` on ``Ready``,
``Answer``, ``RawEvent`` and ``InputRecord``: a frozen dataclass with slots otherwise
looks its fields up on every pickling, which made the hop cost 7 µs an event in the
gateway process; now about 1). With ``processes`` 0 it is one thread of the gateway
process, as before. The outcome is the same either way: the step is pure, its inputs
(the department, the events, the registry's codes, the clock's reading) travel with it.

A worker that dies (killed, out of memory) breaks the pool: the request that found it
broken is checked in the thread instead, and a new pool is started for the next ones.
The workers end with the gateway: stopped by it on a clean stop, and, on Linux, sent
SIGTERM by the kernel when the gateway dies any other way (even SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import multiprocessing
import os
import signal
from collections.abc import Collection
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from datetime import datetime
from typing import Any

from gateway.answers import Answer, Ready, prepare, request_digest
from gateway.parsing import Batch, BodyKind, RawEvent, split_body
from onewindow.codec import Codec, get_codec

__all__ = ["GC_YOUNG_THRESHOLD", "Checked", "Checker", "settle_gc"]

log = logging.getLogger("onewindow.gateway")

#: what a request's check gives: each event prepared (or its rejection), and the
#: request's digest (``gateway.answers.request_digest``)
Checked = tuple[list[Ready | Answer], bytes]

#: set in each worker process by :func:`_init_worker`
_WORKER: dict[str, Any] = {}

#: the garbage collector's threshold of its youngest generation in the gateway's
#: processes (Python's default: 700 allocations)
GC_YOUNG_THRESHOLD = 10_000


def settle_gc() -> None:
    """Once a gateway process (the server, a checking process) has started: what it made
    so far (modules, the codec's schemas, the app: some 140,000 objects in the server)
    lives as long as the process, and is put out of the cyclic garbage collector's reach
    (``gc.freeze``: its full collections no longer walk it), and the youngest generation
    is collected every :data:`GC_YOUNG_THRESHOLD` allocations rather than 700 (a
    500-event request allocates thousands of containers). Together they took a quarter
    to a third off the event loop's CPU an event in batches of 500 (docs/benchmarks.md,
    "The ingestion gateway")."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def check(department: str, raws: list[RawEvent], *, departments: Collection[str],
          counters: Collection[str], uscc_exceptions: Collection[str], now: datetime,
          codec: Codec) -> Checked:
    """The pure step: every event of the request prepared, and its digest."""
    items = prepare(raws, department=department, departments=departments,
                    counters=counters, now=now, codec=codec, uscc_exceptions=uscc_exceptions)
    return items, request_digest(department, items, raws)


#: prctl(2): the signal a process gets when its parent dies
_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Linux: this worker gets SIGTERM when the gateway process dies, even by SIGKILL
    (``prctl(PR_SET_PDEATHSIG)``): an orphaned worker would otherwise wait for work for
    ever. Best effort elsewhere."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl
        os._exit(0)


def _init_worker(parent: int, departments: frozenset[str], counters: frozenset[str],
                 uscc_exceptions: frozenset[str]) -> None:
    _die_with(parent)
    # Ctrl-C reaches the whole process group: the gateway stops its workers itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER.update(departments=departments, counters=counters,
                   uscc_exceptions=uscc_exceptions, codec=get_codec())
    settle_gc()


def _check_in_worker(department: str, raws: list[RawEvent], now: datetime) -> Checked:
    return check(department, raws, now=now, **_WORKER)


def _check_body_in_worker(department: str, kind: BodyKind, body: bytes, now: datetime
                          ) -> Checked:
    # the gateway split these bytes already (and refused them whole if they could not
    # be): split_body is pure, so this gives the events it got
    return check(department, split_body(body, kind), now=now, **_WORKER)


def _raws(events: Batch | list[RawEvent]) -> list[RawEvent]:
    return events.split() if isinstance(events, Batch) else events


def _ready() -> bool:
    return bool(_WORKER)


class Checker:
    """Checks requests off the event loop (module docstring). ``start`` before use (the
    workers' imports then happen before the first request), ``close`` at the end."""

    def __init__(self, processes: int, *, departments: Collection[str],
                 counters: Collection[str], uscc_exceptions: Collection[str],
                 codec: Codec) -> None:
        self.processes = processes
        self._args = (frozenset(departments), frozenset(counters), frozenset(uscc_exceptions))
        self._codec = codec
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-check")
        self._pool: Executor | None = None

    def start(self) -> None:
        """Start the worker processes (none with ``processes`` 0) and have them import
        what they need now."""
        if self.processes and self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(os.getpid(), *self._args))
            for _ in range(self.processes):
                self._pool.submit(_ready)

    async def check(self, department: str, events: Batch | list[RawEvent], now: datetime
                    ) -> Checked:
        """The request's events prepared and its digest, in a worker (or the thread). A
        :class:`~gateway.parsing.Batch` goes to a worker process as its body's bytes,
        and is split there."""
        loop = asyncio.get_running_loop()
        if self.processes:
            self.start()
            pool = self._pool
            try:
                if isinstance(events, Batch):
                    return await loop.run_in_executor(pool, _check_body_in_worker,
                                                      department, events.kind, events.data,
                                                      now)
                return await loop.run_in_executor(pool, _check_in_worker, department, events,
                                                  now)
            except BrokenProcessPool:
                log.error("gateway: a checking process died; starting new ones (this "
                          "request is checked in the gateway process)")
                if self._pool is pool:
                    self._pool = None
                    if pool is not None:
                        pool.shutdown(wait=False, cancel_futures=True)
        departments, counters, uscc = self._args
        return await loop.run_in_executor(
            self._thread, lambda: check(department, _raws(events), departments=departments,
                                        counters=counters, uscc_exceptions=uscc, now=now,
                                        codec=self._codec))

    def close(self) -> None:
        """Stop the workers and the thread (what they run is finished first)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._thread.shutdown(wait=False)
