"""The case-state step beside the worker's loop (stream_apps.step_process, issue 15): batch
N+1 handed over before batch N's results are written folds onto exactly the states the
in-process step would have read, in the worker's process (InlineStep) and in a forked
child (StepProcess): the same outputs, in the same order, for the same input records,
and the same table; a calendar the worker reloads reaches the child; a failing or lost
child is an error, never a silent result."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from onewindow.domain.calendar import SetCalendar
from stream_apps.case_processor import BatchResult, CaseProcessor
from stream_apps.records import InRecord
from stream_apps.step_process import InlineStep, StepError, StepProcess, Submitted
from tests.unit.stream_apps.test_lean_step import _processor, _stream

Table = dict[tuple[str, int], bytes]
Output = tuple[str, bytes | None, bytes, int | None, int | None]

#: Every Monday of 2025 and 2026 a holiday: deadlines fall later than with the real one.
MONDAYS_OFF = SetCalendar(years=range(2000, 2041), holidays=[
    date(2025, 1, 6) + timedelta(weeks=w) for w in range(104)])


def _batches(seed: int) -> list[list[InRecord]]:
    rnd = random.Random(seed)
    stream = _stream(seed) + _stream(seed + 1000)
    out, i = [], 0
    while i < len(stream):
        n = rnd.randint(1, 40)
        out.append(stream[i:i + n])
        i += n
    return out


def _written(table: Table, outputs: list[Output], result: BatchResult) -> None:
    for case_id, (data, rec) in result.states.items():
        table[(case_id, rec.partition)] = data
    outputs.extend((o.topic, o.key, o.value, o.partition,
                    None if o.source is None else o.source.offset) for o in result.outputs)


def _in_process(batches: list[list[InRecord]], swap_at: int | None = None
                ) -> tuple[Table, list[Output]]:
    """The reference: each batch processed, then written, then the next."""
    processor, table, outputs = _processor(), {}, []
    for i, recs in enumerate(batches):
        if i == swap_at:
            processor.calendar = MONDAYS_OFF
        result = processor.process(recs, lambda cid, rec: table.get((cid, rec.partition)))
        _written(table, outputs, result)
    return table, outputs


def _handed_over_early(make: Callable[[CaseProcessor], Any], batches: list[list[InRecord]],
                       swap_at: int | None = None) -> tuple[Table, list[Output]]:
    """As the worker's agent does: batch N+1 submitted before batch N is written (a
    calendar change, like a calendar check, only with nothing in hand)."""
    processor = _processor()
    step = make(processor)
    table: Table = {}
    outputs: list[Output] = []

    def load(case_id: str, rec: InRecord) -> bytes | None:
        return table.get((case_id, rec.partition))

    async def run() -> None:
        pending: Submitted | None = None
        for i, recs in enumerate(batches):
            if i == swap_at:
                if pending is not None:
                    _written(table, outputs, await pending.result)
                    pending = None
                processor.calendar = MONDAYS_OFF
            submitted = step.submit(recs, load, after=pending)
            if pending is not None:
                _written(table, outputs, await pending.result)
            pending = submitted
        if pending is not None:
            _written(table, outputs, await pending.result)

    try:
        asyncio.run(run())
    finally:
        step.close()
    return table, outputs


@pytest.mark.parametrize("seed", [1, 2])
def test_a_batch_handed_over_early_folds_as_the_in_process_step(seed: int) -> None:
    batches = _batches(seed)
    reference = _in_process(batches)
    assert reference[1], "no outputs: the test would prove nothing"
    assert _handed_over_early(InlineStep, batches) == reference
    assert _handed_over_early(StepProcess, batches) == reference


def test_a_reloaded_calendar_reaches_the_step_process() -> None:
    batches = _batches(3)
    swap_at = len(batches) // 3
    reference = _in_process(batches, swap_at=swap_at)
    assert reference != _in_process(batches), "the calendars agree: the test proves nothing"
    assert _handed_over_early(StepProcess, batches, swap_at=swap_at) == reference


class _Broken(CaseProcessor):
    def process(self, records: Any, load: Any) -> BatchResult:
        raise ValueError("a bug in the step")


def test_a_failing_or_lost_step_process_is_an_error() -> None:
    broken = _Broken(codec=_processor().codec, topics=_processor().topics,
                     departments=(), counters=(), calendar=MONDAYS_OFF,
                     ids=_processor().ids)
    [recs, *_] = _batches(4)

    async def result(step: Any) -> BatchResult:
        return await step.submit(recs, lambda cid, rec: None).result

    step = StepProcess(broken)
    try:
        with pytest.raises(StepError, match="a bug in the step"):
            asyncio.run(result(step))
    finally:
        step.close()
    step = StepProcess(_processor())
    try:
        os.kill(step.pid, signal.SIGKILL)
        os.waitpid(step.pid, 0)
        with pytest.raises(StepError, match="is gone"):
            asyncio.run(result(step))
    finally:
        step.close()
