"""The case-state step beside the worker's event loop: `StepProcess`, and `InlineStep`.

A Faust worker runs on one core: its event loop does Faust's per-event work (fetching,
delivering, buffering and acking each record) and, in the agent, `CaseProcessor.process`,
which on these machines costs about as much per event as all of Faust's work (issue 15,
docs/benchmarks.md "Case state"). `StepProcess` runs the step in a child process, on the
other core, and lets the worker hand it batch N+1 before batch N's results are written,
so the child folds while the loop delivers, writes and acks (`stream_apps.app`).

**The child** is forked from the worker while it builds its app
(`stream_apps.app.create_app`), before any thread is started (Faust's, librdkafka's), so
it starts at once with the very `CaseProcessor` the worker built: the same codec, rules,
calendar, ID hash key and departments, and nothing is imported again. It ignores SIGINT
and SIGTERM (the worker's stop is the worker's) and ends when its pipe closes, that is
when the worker exits, however it exits. An error in it (a bug in the step) comes back as
`StepError` and crashes the worker as the step raising in its own process would (exit 1,
restart from the committed offsets).

**The table stays the worker's.** The child never reads or writes it: each batch goes to
the child with the fold state of each of its cases, by case and partition, read by the
worker (`TableAccess.load`, as the step reads it) — except for the cases of the batch
still in the child (sent, its results not yet written), marked `PENDING`: for those the
child takes the state it has just computed itself, or, where that batch left a case
unchanged, the state that batch was given (`Folding`). So each batch folds onto exactly
the states the in-process step would have read after the previous batch was written. A
batch is handed over early only when it and the batch before it hold no calendar check
(a check writes states itself, and may reload the calendar); the calendar the worker's
processor has goes to the child with each batch after it changed.

**Results** come back as the `BatchResult` the in-process step gives, whose records are
the worker's own `InRecord`s again (the Faust events the table writes and dead letters
need). The worker's own `CaseProcessor` stays for the calendar checks and the
``OUTPUT_FAILED`` dead letters.

`InlineStep` is the same contract in the worker's own process (no child: `create_app`
without ``step_process``, as in tests).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

from onewindow.domain.normalise import has_digit
from onewindow.errors import OneWindowError
from stream_apps.case_processor import BatchResult, CaseProcessor
from stream_apps.records import InRecord, OutRecord

__all__ = ["PENDING", "InlineStep", "StepError", "StepProcess", "Submitted"]

#: In a batch's stored states: "the state the previous batch left", which the worker has
#: not written yet (module docstring).
PENDING = ...

#: Where a fold state is stored: (case id, partition).
Where = tuple[str, int]
#: The stored fold states a batch is given: bytes, None (no state yet) or `PENDING`.
Stored = dict[Where, Any]


class StepError(OneWindowError):
    """The step failed, or its process is gone; the batch is not processed."""


@dataclass
class Submitted:
    """A batch handed to the step: its records, the cases it was given states for, and
    its result (awaitable)."""

    recs: list[InRecord]
    cases: frozenset[Where]
    result: asyncio.Future[BatchResult]
    #: when it was handed over (`time.perf_counter`), and whether it holds calendar checks
    started: float = 0.0
    checks: bool = False


class Folding:
    """`CaseProcessor.process` over batches given their stored states, `PENDING` taken
    from what the previous batch left (module docstring). Runs in the child, or inline."""

    def __init__(self, processor: CaseProcessor) -> None:
        self.processor = processor
        #: the fold states as the last batch left them, for every case it was given
        self.view: dict[Where, bytes | None] = {}

    def fold(self, recs: list[InRecord], stored: Stored, calendar: Any = None) -> BatchResult:
        if calendar is not None:
            self.processor.calendar = calendar
        view = self.view
        try:
            given = {where: view[where] if state is PENDING else state
                     for where, state in stored.items()}
        except KeyError as exc:  # the worker marked a case the last batch was not given
            raise StepError(f"no state for pending case {exc.args[0]!r}") from None
        result = self.processor.process(recs, partial(_stored, given))
        for case_id, (data, rec) in result.states.items():
            given[(case_id, rec.partition)] = data
        self.view = given
        return result


def _stored(given: dict[Where, bytes | None], case_id: str, rec: InRecord) -> bytes | None:
    """The step's `load`: the state given for the case on the record's partition. The
    step reads a case's state only for a record keyed by that case id (`stored_states`);
    anything else is a bug, and an error rather than a fold onto a missing state."""
    try:
        return given[(case_id, rec.partition)]
    except KeyError:
        raise StepError(f"the step read case {case_id!r} on partition {rec.partition}, "
                        "whose state its batch was not given") from None


def stored_states(recs: Iterable[InRecord], load: Callable[[str, InRecord], bytes | None],
                  pending: frozenset[Where] = frozenset()) -> Stored:
    """The states a batch of ``recs`` is given: for each case id (its record key, as
    UTF-8; the step reads the state of a record only when its key is its case id) and
    partition, ``load(case_id, rec)``, or `PENDING` for those in ``pending``."""
    stored: Stored = {}
    for rec in recs:
        if rec.key is None:
            continue
        try:
            case_id = rec.key.decode("utf-8")
        except UnicodeDecodeError:
            continue  # never a case id: such a record is dead-lettered before the fold
        where = (case_id, rec.partition)
        if where not in stored:
            stored[where] = PENDING if where in pending else load(case_id, rec)
    return stored


class InlineStep:
    """The step in the worker's own process, with `StepProcess`'s contract."""

    def __init__(self, processor: CaseProcessor) -> None:
        self.processor = processor
        self._folding = Folding(processor)

    def submit(self, recs: list[InRecord], load: Callable[[str, InRecord], bytes | None],
               after: Submitted | None = None) -> Submitted:
        """Process ``recs`` (``after``: the batch before it, when its results are not
        written yet)."""
        stored = stored_states(recs, load, after.cases if after is not None else frozenset())
        done: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        try:
            done.set_result(self._folding.fold(recs, stored))
        except Exception as exc:  # noqa: BLE001 - raised where the result is awaited
            done.set_exception(exc)
        return Submitted(recs, frozenset(stored), done)

    def close(self) -> None:
        """Nothing to end."""


def warm_up() -> None:
    """Build what the step builds on first use, now: the Unicode tables of free-text
    scrubbing (`onewindow.domain.normalise.has_digit` of a non-ASCII text) take most of a
    second, which the first batch after every start waited for (docs/benchmarks.md,
    "Issue 15, point 2"). The child does it while the worker is still starting."""
    has_digit("\u00e9")


def _serve(processor: CaseProcessor, conn: Any, parent: Any) -> None:
    """The child: batches in, results out, in order, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent.close()  # the worker's end: only the worker holds it, so its exit closes the pipe
    warm_up()
    folding = Folding(processor)
    while True:
        try:
            rows, stored, calendar = conn.recv()
        except (EOFError, OSError):
            return
        try:
            recs = [InRecord(*row) for row in rows]
            result = folding.fold(recs, stored, calendar)
            reply: Any = ("ok", _encode(result, {id(r): i for i, r in enumerate(recs)}))
        except Exception:  # noqa: BLE001 - handed to the worker, which crashes on it
            folding.view = {}  # the worker crashes: nothing is pending any more
            reply = ("error", traceback.format_exc())
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


def _encode(result: BatchResult, index: dict[int, int]) -> dict[str, Any]:
    """A `BatchResult` for the pipe, field by field, its records as their index in the
    batch."""
    out = {f.name: getattr(result, f.name) for f in fields(result)}
    out["states"] = {cid: (data, index[id(rec)]) for cid, (data, rec) in result.states.items()}
    out["outputs"] = [(o.topic, o.key, o.value,
                       None if o.source is None else index[id(o.source)], o.partition)
                      for o in result.outputs]
    out["checks"] = [index[id(rec)] for rec in result.checks]
    return out


def _decode(reply: dict[str, Any], recs: list[InRecord]) -> BatchResult:
    reply["states"] = {cid: (data, recs[i]) for cid, (data, i) in reply["states"].items()}
    reply["outputs"] = [OutRecord(topic, key, value, None if src is None else recs[src],
                                  partition)
                        for topic, key, value, src, partition in reply["outputs"]]
    reply["checks"] = [recs[i] for i in reply["checks"]]
    return BatchResult(**reply)


class _Lane:
    """One daemon thread running blocking calls in order, their results in asyncio
    futures. A daemon: a call blocked on the pipe never holds the worker's exit."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._calls.put((loop, done, fn, args))
        return done

    def _run(self) -> None:
        while True:
            loop, done, fn, args = self._calls.get()
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                loop.call_soon_threadsafe(_settle, done, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, done, result, None)


def _settle(done: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if not done.done():
        if exc is None:
            done.set_result(result)
        else:
            done.set_exception(exc)


class StepProcess:
    """The step in a forked child (module docstring). Create it before the process
    starts any thread; `close` it (or let the worker exit) to end the child."""

    def __init__(self, processor: CaseProcessor) -> None:
        self._conn, child = multiprocessing.Pipe()
        pid = os.fork()
        if pid == 0:  # the child: serve until the pipe closes, never return
            code = 0
            try:
                _serve(processor, child, self._conn)
            except BaseException:  # noqa: BLE001 - the worker sees the pipe close
                code = 1
            finally:
                os._exit(code)
        self.pid = pid
        child.close()
        self.processor = processor
        self._calendar = processor.calendar  # what the child has
        # one thread each way (started on first use: after the fork), so batches go out
        # while results come in, both in order
        self._lanes: tuple[_Lane, _Lane] | None = None

    def submit(self, recs: list[InRecord], load: Callable[[str, InRecord], bytes | None],
               after: Submitted | None = None) -> Submitted:
        """Hand ``recs`` to the child (``after``: the batch before it, when its results
        are not written yet); ``load`` is called here, once per case and partition."""
        stored = stored_states(recs, load, after.cases if after is not None else frozenset())
        calendar = self.processor.calendar
        batch = ([(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp_ms)
                  for r in recs], stored, None if calendar is self._calendar else calendar)
        self._calendar = calendar
        if self._lanes is None:
            self._lanes = (_Lane("step-send"), _Lane("step-receive"))
        sending, receiving = self._lanes
        sent = sending.call(self._send, batch)
        reply = receiving.call(self._receive)
        return Submitted(recs, frozenset(stored),
                         asyncio.ensure_future(self._result(sent, reply, recs)))

    async def _result(self, sent: asyncio.Future[None], reply: asyncio.Future[Any],
                      recs: list[InRecord]) -> BatchResult:
        await sent
        status, body = await reply
        if status != "ok":
            raise StepError(f"the case-state step failed in its process:\n{body}")
        return _decode(body, recs)

    def _send(self, batch: Any) -> None:
        try:
            self._conn.send(batch)
        except OSError as exc:
            raise self._gone(exc) from exc

    def _receive(self) -> Any:
        try:
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._gone(exc) from exc

    def _gone(self, exc: BaseException) -> StepError:
        return StepError(f"the case-state step process ({self.pid}) is gone: {exc!r}")

    def close(self) -> None:
        """End the child (it ends when the pipe closes) and reap it."""
        self._conn.close()
        try:
            for _ in range(50):
                if os.waitpid(self.pid, os.WNOHANG) != (0, 0):
                    return
                time.sleep(0.1)
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            return  # already reaped
