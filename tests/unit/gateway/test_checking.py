"""gateway.checking: a request checked in a worker process gives what the thread gives
(the step is pure), also when it is sent as its body's bytes; a worker that dies costs no
request, and new workers take over."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from datetime import UTC, datetime

from gateway.checking import Checker
from gateway.parsing import JSON, JSONL, read_body, split_body
from onewindow.codec import get_codec
from onewindow.departments import load_registry
from tests.examples import RESTAURANT_EVENTS

NOW = datetime(2026, 3, 2, 1, 15, tzinfo=UTC)


def _body(*, lines: bool = False) -> bytes:
    events = [json.loads(line) for line in RESTAURANT_EVENTS.read_text("utf-8").splitlines()
              if line.strip()]
    events += [{"type": "TaskUpdated"}, 42]  # two rejections too
    if lines:
        return "\n".join(json.dumps(e, ensure_ascii=False) for e in events).encode()
    return json.dumps(events, ensure_ascii=False).encode()


def _raws() -> list:  # type: ignore[type-arg]
    return split_body(_body(), JSON)


def _checker(processes: int) -> Checker:
    registry = load_registry()
    return Checker(processes, departments=registry.codes, counters=registry.counter_codes,
                   uscc_exceptions=frozenset(), codec=get_codec())


def test_a_worker_process_checks_as_the_thread_does() -> None:
    raws = _raws()
    in_thread, in_process = _checker(0), _checker(1)
    in_process.start()
    try:
        for department in ("scjgj", "zwfw"):
            got = asyncio.run(in_process.check(department, raws, NOW))
            want = asyncio.run(in_thread.check(department, raws, NOW))
            assert got == want
            assert {type(i).__name__ for i in got[0]} == {"Ready", "Answer"}
            # a body read but not split goes to the worker as bytes, split there
            for kind, body in ((JSON, _body()), (JSONL, _body(lines=True))):
                batch = read_body(body, kind)
                assert batch.count == len(raws)
                assert asyncio.run(in_process.check(department, batch, NOW)) == \
                    asyncio.run(in_thread.check(department, batch, NOW)) == \
                    asyncio.run(in_thread.check(department, split_body(body, kind), NOW))
    finally:
        in_process.close()
        in_thread.close()


def test_a_dead_worker_costs_no_request() -> None:
    raws = _raws()
    checker = _checker(1)
    checker.start()
    try:
        want = asyncio.run(checker.check("scjgj", raws, NOW))
        pool = checker._pool  # noqa: SLF001 - the test kills its worker
        assert pool is not None
        [worker] = pool._processes.values()  # type: ignore[attr-defined]  # noqa: SLF001
        os.kill(worker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        # the broken pool is noticed by this request, answered from the thread
        assert asyncio.run(checker.check("scjgj", raws, NOW)) == want
        # and new workers serve the next one
        assert asyncio.run(checker.check("scjgj", raws, NOW)) == want
        assert checker._pool is not None and checker._pool is not pool  # noqa: SLF001
    finally:
        checker.close()
