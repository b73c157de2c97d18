"""Bounds per case in the case-state step (issue 13: "20 cases with 10,000 tasks each"):
an event past a bound of its case is a TOO_LARGE dead letter with a detail naming the
case, the worker goes on, and no sequence of valid records makes the fold state or any
output pass the producer's 1 MB record."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.domain.case import CaseState
from onewindow.domain.limits import (
    MAX_ACCEPTANCE_BYTES,
    MAX_CASE_EVENTS,
    MAX_CASE_TASKS,
    MAX_FOLD_STATE_BYTES,
)
from onewindow.domain.validation import TOO_LARGE
from stream_apps.case_processor import APPLIED, DEAD_LETTERED, DUPLICATE, BatchResult
from stream_apps.records import MAX_OUTPUT_BYTES, InRecord
from tests.unit.domain.helpers import accepted, material, t, task
from tests.unit.domain.test_case_bounds import STATUSES, _at, largest_acceptance
from tests.unit.stream_apps.test_case_limits import CODEC, TOPICS, _dead_letters, _processor


class Worker:
    """The case-state step over batches, with its table as a dict (as the Faust shell
    gives it)."""

    def __init__(self) -> None:
        self.processor = _processor()
        self.table: dict[str, bytes] = {}
        self.offset = 0

    def record(self, ev: dict[str, Any]) -> InRecord:
        self.offset += 1
        return InRecord(TOPICS.input(ev["department"]), 0, self.offset,
                        ev["case_id"].encode(), CODEC.encode(ev), 1_700_000_000_000)

    def run(self, events: list[dict[str, Any]]) -> BatchResult:
        result = self.processor.process([self.record(ev) for ev in events],
                                        lambda case_id, _rec: self.table.get(case_id))
        for case_id, (value, _rec) in result.states.items():
            self.table[case_id] = value
        return result


def _case_states(result: BatchResult) -> list[dict[str, Any]]:
    return [CODEC.decode_record(o.value, "CaseState") for o in result.outputs
            if o.topic == TOPICS.case_state]


def test_a_case_of_thousands_of_tasks_stops_at_its_bound_and_the_worker_goes_on() -> None:
    """The issue at a smaller scale: 600 updates each naming a new task. The first
    MAX_CASE_TASKS are applied, the rest are TOO_LARGE dead letters saying why; a replay
    of an applied one is still a duplicate; the next case is applied."""
    worker = Worker()
    updates = [task(f"e{i}", f"X{i:04d}", "RECEIVED", _at(i), case_id="C-9")
               for i in range(MAX_CASE_TASKS + 100)]
    results = [worker.run([accepted(case_id="C-9")])]
    results += [worker.run(updates[i:i + 150]) for i in range(0, len(updates), 150)]
    results.append(worker.run([updates[3], task("n1", "T1", "RECEIVED", _at(1),
                                                case_id="C-10")]))
    tallies = [x for r in results for x in r.tallies]
    assert [x.result for x in tallies[:MAX_CASE_TASKS + 1]] == [APPLIED] * (MAX_CASE_TASKS + 1)
    refused = tallies[MAX_CASE_TASKS + 1:-2]
    assert len(refused) == 100
    assert {(x.result, x.reason) for x in refused} == {(DEAD_LETTERED, TOO_LARGE)}
    assert [(x.result, x.reason) for x in tallies[-2:]] == [(DUPLICATE, None), (APPLIED, None)]
    dead = [d for r in results for d in _dead_letters(r)]
    assert len(dead) == 100
    assert dead[0]["detail"] == (f"case 'C-9' has reached {MAX_CASE_TASKS} tasks with "
                                 f"updates; task 'X0500' would be one more")
    assert dead[0]["original"] == CODEC.encode(updates[MAX_CASE_TASKS])
    (last_state, other) = _case_states(results[-1])
    assert len(last_state["tasks"]) == MAX_CASE_TASKS + 2  # and T1, T2, declared
    assert last_state["version"] == MAX_CASE_TASKS + 1
    assert other["case_id"] == "C-10"
    assert CaseState.from_bytes(worker.table["C-9"]).version == MAX_CASE_TASKS + 1


def test_events_past_the_bound_of_events_are_dead_letters() -> None:
    worker = Worker()
    events = [accepted(case_id="C-3")] + [
        task(f"e{i}", f"T{i % 7}", STATUSES[i % len(STATUSES)], _at(i), case_id="C-3")
        for i in range(MAX_CASE_EVENTS + 4)]
    results = [worker.run(events[i:i + 500]) for i in range(0, len(events), 500)]
    tallies = [x for r in results for x in r.tallies]
    assert sum(x.result == APPLIED for x in tallies) == MAX_CASE_EVENTS
    assert [(x.result, x.reason) for x in tallies[MAX_CASE_EVENTS:]] == \
        [(DEAD_LETTERED, TOO_LARGE)] * 5
    details = {d["detail"] for r in results for d in _dead_letters(r)}
    assert details == {f"case 'C-3' has reached {MAX_CASE_EVENTS} applied events, the most "
                       f"one case may hold"}


@st.composite
def largest_records(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Batches of one case's events, most as large as the limits of domain.md section 2
    let them be in the fold state (ids of characters JSON escapes to 6 or 12 bytes, the
    largest acceptance records), in any order and batch sizes."""
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    char = draw(st.sampled_from(["\0", "😀", "名"]))
    events: list[dict[str, Any]] = []
    for i in range(draw(st.integers(min_value=120, max_value=260))):
        kind = rnd.choices(["big", "small", "acc", "mat"], [85, 8, 3, 4])[0]
        at = _at(rnd.randint(0, 60 * 24 * 60))
        if kind == "big":
            events.append(task(char * 58 + f"{i:06d}",
                               char * rnd.randint(230, 250) + f"{rnd.randint(0, 400):06d}",
                               rnd.choice(STATUSES), at,
                               department=rnd.choice(["scjgj", "zjj", "gaj"])))
        elif kind == "small":
            events.append(task(f"s{i}", f"T{rnd.randint(0, 5)}", rnd.choice(STATUSES), at))
        elif kind == "acc":
            events.append(dict(_LARGEST[char], event_id=f"acc-{i}", occurred_at=t(at)))
        else:
            events.append(material(f"m-{i}", at, material_id=f"m{i}"))
    batches, i = [], 0
    while i < len(events):
        n = rnd.randint(1, 60)
        batches.append(events[i:i + n])
        i += n
    return batches


_LARGEST = {c: largest_acceptance(c) for c in ["\0", "😀", "名"]}


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batches=largest_records())
def test_no_sequence_of_valid_records_makes_an_output_too_large(
        batches: list[list[dict[str, Any]]]) -> None:
    """With protection, the Avro outputs and the fold state as the worker writes them:
    every record is applied or a TOO_LARGE dead letter, the fold state stays under
    MAX_FOLD_STATE_BYTES and every output under the producer's limit."""
    worker = Worker()
    for batch in batches:
        result = worker.run(batch)
        for x in result.tallies:
            assert (x.result, x.reason) in {(APPLIED, None), (DEAD_LETTERED, TOO_LARGE)}
        for dead in _dead_letters(result):
            assert dead["detail"].startswith("case 'C-1' has reached"), dead["detail"]
        for value, _rec in result.states.values():
            assert len(value) <= MAX_FOLD_STATE_BYTES
            # CaseState holds nothing the fold state does not, but a few fixed fields
            (case_state,) = [o for o in result.outputs if o.topic == TOPICS.case_state]
            assert len(case_state.value) <= len(value) + 4_096
        for out in result.outputs:
            assert len(out.value) + len(out.key or b"") < MAX_OUTPUT_BYTES - 40, out.topic
    state = CaseState.from_bytes(worker.table["C-1"])
    assert len(state.tasks) <= MAX_CASE_TASKS and state.version <= MAX_CASE_EVENTS


def test_the_largest_protected_acceptance_fits_its_reserved_room() -> None:
    """As the worker holds it: the applicant's number replaced by its keyed hash and its
    mask (a passport number NFKC makes 18 times longer gives the longest mask)."""
    worker = Worker()
    for char in ("\0", "😀"):
        ev = largest_acceptance(char, applicant={"id_type": "PASSPORT", "kind": "PERSON",
                                                 "id_number": "\ufdfa" * 200})
        ev = dict(ev, case_id=f"C-{ord(char)}")
        (tally,) = worker.run([ev]).tallies
        assert tally.result == APPLIED
        state = CaseState.from_bytes(worker.table[ev["case_id"]])
        rest = state._rest_bytes()
        assert 400_000 < len(state.to_bytes()) - rest + len("nullnull") \
            <= MAX_ACCEPTANCE_BYTES
