"""Calendar checks without Kafka (stream_apps.calendar_checks): a changed calendar
re-publishes the deadline of every open case it moves, closed cases keep theirs, and the
stored snapshot makes a check with an unchanged calendar a no-op."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from onewindow.calendar_source import CalendarFile
from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.domain.calendar import SetCalendar
from onewindow.domain.clock import from_ms
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics
from stream_apps.calendar_checks import (
    CalendarCheck,
    CalendarChecker,
    check_records,
    marker_key,
    run_check,
)
from stream_apps.case_processor import BatchResult, CaseProcessor
from stream_apps.records import InRecord, OutRecord
from tests.unit.domain.helpers import accepted, task

NOW = datetime(2025, 12, 26, 12, 0, tzinfo=UTC)
TOPICS = Topics("p.")
IDS = IdProtector("unit-test-id-hash-key-0123456789abcdef")
OLD = SetCalendar(years=[2025, 2026], holidays=[date(2025, 10, 1), date(2026, 1, 1)])
#: the notice for 2026 makes Sunday 2025-12-28 a working day
NEW = SetCalendar(years=[2025, 2026], holidays=[date(2025, 10, 1), date(2026, 1, 1)],
                  workdays=[date(2025, 12, 28)])


class Table:
    """A one-partition table: what TableAccess gives the checks."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def load(self, key: str, rec: InRecord) -> bytes | None:
        return self.data.get(key)

    def store(self, changed: dict[str, tuple[bytes, InRecord]]) -> None:
        self.data.update({k: v for k, (v, _rec) in changed.items()})

    def case_ids(self, rec: InRecord) -> list[str]:
        return [k for k in self.data if not k.startswith("@")]


def _processor(calendar: Any = OLD, **kw: Any) -> CaseProcessor:
    registry = load_registry()
    return CaseProcessor(codec=get_codec(), topics=TOPICS, departments=registry.codes,
                         counters=registry.counter_codes, calendar=calendar, ids=IDS,
                         clock=lambda: NOW, **kw)


def _rec(event: dict[str, Any], offset: int) -> InRecord:
    return InRecord(TOPICS.input(event["department"]), 0, offset,
                    event["case_id"].encode(), get_codec().encode(event), 1_766_700_000_000)


def _check(offset: int, value: bytes | None = None) -> InRecord:
    value = value if value is not None else check_records(
        TOPICS, 1, reason="start", digest="x", requested_by="test")[0].value
    return InRecord(TOPICS.calendar_checks, 0, offset, b"calendar-check", value,
                    1_766_800_000_000)


def _cases(processor: CaseProcessor, table: Table) -> BatchResult:
    """Open case A due across 12-28, open case FAR not touched by it, closed case B."""
    events = [
        accepted("a", at="2025-12-26 10:00", amount=1, case_id="A"),
        accepted("f", at="2025-11-03 10:00", amount=3, case_id="FAR"),
        accepted("b", at="2025-12-26 10:00", amount=1, case_id="B"),
        task("b1", "T1", "APPROVED", "2025-12-26 11:00", case_id="B"),
        task("b2", "T2", "APPROVED", "2025-12-26 11:30", department="zjj", case_id="B"),
    ]
    result = processor.process([_rec(e, i) for i, e in enumerate(events)], table.load)
    table.store(result.states)
    return result


def _run(checker: CalendarChecker, rec: InRecord, table: Table, *, owner: bool = True,
         chunk: int = 2) -> tuple[CalendarCheck, list[OutRecord], list[str]]:
    sent: list[OutRecord] = []
    outcomes: list[str] = []

    async def pause() -> None:
        return None

    check = asyncio.run(run_check(checker, rec, table, lambda r: sent.extend(r.outputs),
                                  lambda: owner, on_done=lambda _c, o: outcomes.append(o),
                                  pause=pause, chunk=chunk))
    return check, sent, outcomes


def _states(sent: list[OutRecord]) -> dict[str, dict[str, Any]]:
    assert {o.topic for o in sent} <= {TOPICS.case_state}
    return {o.key.decode(): get_codec().decode_record(o.value) for o in sent}  # type: ignore[union-attr]


def test_check_records_are_routed_to_the_checks_not_dead_lettered() -> None:
    processor = _processor()
    table = Table()
    _cases(processor, table)
    check = _check(0)
    result = processor.process([check], table.load)
    assert result.checks == [check]
    assert not result.outputs and not result.tallies and not result.states
    records = check_records(TOPICS, 3, reason="command", digest="d" * 64, requested_by="me")
    assert [(r.topic, r.partition) for r in records] == [(TOPICS.calendar_checks, p)
                                                         for p in range(3)]
    assert json.loads(records[0].value)["reason"] == "command"


def test_first_check_republishes_open_cases_then_an_unchanged_calendar_is_a_no_op() -> None:
    processor = _processor()
    table = Table()
    _cases(processor, table)
    checker = CalendarChecker(processor)
    check, sent, outcomes = _run(checker, _check(0), table)
    # no snapshot stored yet: the old calendar is unknown, every open case re-published
    assert check.stored is None and outcomes == ["recomputed"]
    assert set(_states(sent)) == {"A", "FAR"}  # B is closed
    stored = json.loads(table.data[marker_key(0)])
    assert stored["snapshot"]["digest"] == check.current.digest
    assert stored["by"] == [TOPICS.calendar_checks, 0, 0] and stored["republished"] == 2
    check, sent, outcomes = _run(checker, _check(1), table)
    assert (sent, outcomes, check.needed) == ([], ["unchanged"], False)


def test_a_changed_calendar_republishes_only_the_open_cases_it_moves() -> None:
    processor = _processor()
    table = Table()
    before = {o.key.decode(): get_codec().decode_record(o.value)  # type: ignore[union-attr]
              for o in _cases(processor, table).outputs if o.topic == TOPICS.case_state}
    checker = CalendarChecker(processor)
    _run(checker, _check(0), table)
    processor.calendar = NEW
    check, sent, outcomes = _run(checker, _check(1), table)
    assert outcomes == ["recomputed"] and check.stored is not None
    states = _states(sent)
    assert set(states) == {"A"}  # FAR's deadline does not move, B is closed
    a = states["A"]
    assert (before["A"]["due_date"], a["due_date"]) == (date(2025, 12, 29), date(2025, 12, 28))
    assert a["version"] == before["A"]["version"] == 1  # no event applied: same version
    assert a["last_event_id"] is None
    assert a["source_timestamp"] == from_ms(1_766_800_000_000)  # the check record's
    assert a["applicant"]["id_number"] is None and a["applicant"]["id_hash"]  # protected
    assert json.loads(table.data[marker_key(0)])["snapshot"]["digest"] == check.current.digest
    # a new event of A afterwards is folded with the new calendar too
    result = processor.process([_rec(task("a1", "T1", "RECEIVED", "2025-12-26 11:00",
                                          case_id="A"), 9)], table.load)
    assert _states([o for o in result.outputs if o.topic == TOPICS.case_state])["A"][
        "due_date"] == date(2025, 12, 28)


def test_a_replayed_check_republishes_again_and_a_revoked_one_stores_nothing() -> None:
    processor = _processor()
    table = Table()
    _cases(processor, table)
    checker = CalendarChecker(processor)
    _run(checker, _check(0), table)
    processor.calendar = NEW
    # the partition moves away mid-check: nothing stored, the new owner checks again
    check, sent, outcomes = _run(checker, _check(1), table, owner=False, chunk=1)
    assert outcomes == ["abandoned"] and len(sent) <= 1
    assert json.loads(table.data[marker_key(0)])["by"] == [TOPICS.calendar_checks, 0, 0]
    _check_1, sent, outcomes = _run(checker, _check(1), table)
    assert set(_states(sent)) == {"A"} and outcomes == ["recomputed"]
    # the same check record again (its offset was not committed before a crash): its
    # records may be lost though its snapshot was stored, so every open case again
    check, sent, outcomes = _run(checker, _check(1), table)
    assert check.replay and outcomes == ["recomputed"]
    assert set(_states(sent)) == {"A", "FAR"}
    # a later check with the same calendar: nothing
    assert _run(checker, _check(2), table)[1] == []


def test_a_check_reloads_a_changed_override_file(tmp_path: Path) -> None:
    """The command's path: the operator edits the file, a check reloads it and
    re-publishes; an unreadable file keeps the calendar the worker has."""
    f = tmp_path / "cal.yaml"
    f.write_text("years:\n  2026:\n    holidays: [2026-01-01]\n", encoding="utf-8")
    calendar_file = CalendarFile(f)
    processor = _processor(calendar=calendar_file.calendar)
    table = Table()
    _cases(processor, table)
    checker = CalendarChecker(processor, calendar_file)
    _run(checker, _check(0), table)
    assert _run(checker, _check(1), table)[1] == []
    f.write_text("years:\n  2026:\n    holidays: [2026-01-01]\n    workdays: [2025-12-28]\n",
                 encoding="utf-8")
    check, sent, _ = _run(checker, _check(2), table)
    assert processor.calendar is calendar_file.calendar
    assert check.stored is not None
    assert check.current.changed_dates(check.stored) == [date(2025, 12, 28)]
    assert _states(sent)["A"]["due_date"] == date(2025, 12, 28)
    f.write_text("years: [", encoding="utf-8")
    check, sent, outcomes = _run(checker, _check(3), table)
    assert checker.reload_error and (sent, outcomes) == ([], ["unchanged"])
    assert processor.calendar.is_working_day(date(2025, 12, 28)) is True


def test_an_unreadable_stored_snapshot_republishes_every_open_case() -> None:
    processor = _processor()
    table = Table()
    _cases(processor, table)
    table.data[marker_key(0)] = b"{not json"
    check, sent, _ = _run(CalendarChecker(processor), _check(0, value=b"junk"), table)
    assert check.stored is None and set(_states(sent)) == {"A", "FAR"}


def _published(result: BatchResult) -> dict[str, dict[str, Any]]:
    return _states([o for o in result.outputs if o.topic == TOPICS.case_state])


def test_a_closed_case_keeps_its_deadline_when_its_own_events_arrive_after_a_change() -> None:
    """Section 4: closed cases keep the deadline they closed with, also when the worker
    re-projects them for a late event (out of role) or a replayed duplicate after the
    calendar changed; the open case A moves."""
    processor = _processor()
    table = Table()
    first = _published(_cases(processor, table))
    assert first["B"]["closed_at"] is not None and first["B"]["due_date"] == date(2025, 12, 29)
    # the state the worker stored when B closed keeps the deadline (no check needed)
    assert len(json.loads(table.data["B"])) == 8 and len(json.loads(table.data["A"])) == 7
    processor.calendar = NEW
    late = [task("b3", "T1", "IN_REVIEW", "2025-12-26 12:00", department="zjj", case_id="B"),
            task("b1", "T1", "APPROVED", "2025-12-26 11:00", case_id="B"),  # a duplicate
            task("a1", "T1", "RECEIVED", "2025-12-26 11:00", case_id="A")]
    for i, ev in enumerate(late):
        result = processor.process([_rec(ev, 10 + i)], table.load)
        table.store(result.states)
        assert result.tallies[0].result in ("applied", "duplicate")
        states = _published(result)  # a duplicate re-publishes its case's state too
        if ev["case_id"] == "B":
            assert states["B"]["due_date"] == first["B"]["due_date"]
            assert states["B"]["due_at"] == first["B"]["due_at"]
            assert states["B"]["version"] == 4
        else:
            assert states["A"]["due_date"] == date(2025, 12, 28)


def test_a_check_records_the_deadline_of_closed_cases_stored_before_states_kept_it() -> None:
    """A closed case's fold state stored by a worker before this change (no record): the
    check that finds the calendar changed records it with the stored (old) calendar and
    writes the state back, without re-publishing it; a late event then keeps it."""
    processor = _processor()
    table = Table()
    _cases(processor, table)
    checker = CalendarChecker(processor)
    _run(checker, _check(0), table)
    legacy = json.loads(table.data["B"])[:7]  # as a worker before this change stored it
    table.data["B"] = json.dumps(legacy, separators=(",", ":")).encode()
    processor.calendar = NEW
    _check_1, sent, _ = _run(checker, _check(1), table)
    assert set(_states(sent)) == {"A"}
    assert len(json.loads(table.data["B"])) == 8
    result = processor.process([_rec(task("b3", "T1", "IN_REVIEW", "2025-12-26 12:00",
                                          department="zjj", case_id="B"), 10)], table.load)
    assert _published(result)["B"]["due_date"] == date(2025, 12, 29)
    # and a check with an unchanged calendar touches nothing
    table.data["B"] = json.dumps(legacy, separators=(",", ":")).encode()
    assert _run(checker, _check(2), table)[1] == []
    assert len(json.loads(table.data["B"])) == 7
