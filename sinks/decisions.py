"""The ``task_decisions`` summary: a decided task's time from receipt to decision, kept at
write time for the supervisor view's decision-time chart (docs/supervisor.md).

A case's summary rows are a function of its ``tasks`` rows, its ``cases`` row (the
service) and its TaskUpdated ``timeline_entries`` (the rules:
``onewindow.domain.decision_time``). :func:`refresh_decisions` recomputes them for the
cases given, from the rows as the transaction sees them: it deletes the cases' summary
rows and inserts the current ones. So it is idempotent, and order does not matter: a
task row and its events may arrive in any order over any number of batches; whichever
comes last, the refresh after it sees them all.

* The live sink (``sinks.unit_of_work.write_batch``) refreshes, in the batch's own
  transaction, every case whose tasks were replaced (its version grew) or that got a
  TaskUpdated timeline entry: the summary commits with the rows and the offsets, or
  neither does (exactly once, as everything else there).
* The bulk load of ``onewindow rebuild`` (``sinks.bulk.BulkLoader.finish``) refreshes
  every case at the end, after the indexes are back (:func:`refresh_all`).

One sink process owns a database (docs/read-model.md), so no other writer changes a
case's rows between the reads and the writes here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from onewindow.domain.decision_time import DECISIONS, task_time, tenths_of_hours
from onewindow.read_model.tables import CASES, TASK_DECISIONS, TASKS, TIMELINE

__all__ = ["decision_rows", "refresh_all", "refresh_decisions"]

#: case ids per IN (...) list (SQLite's limit of host parameters is far above)
CHUNK = 500
#: cases per step of :func:`refresh_all`
ALL_CHUNK = 5000


def _chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def decision_rows(conn: Connection, case_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The summary rows of ``case_ids`` from the rows ``conn`` sees: one per task that is
    decided (APPROVED or REJECTED, ``updated_at`` known) and has at least one in-role
    TaskUpdated of its own (:func:`onewindow.domain.decision_time.task_time`)."""
    ids = sorted(set(case_ids))
    rows: list[dict[str, Any]] = []
    for part in _chunks(ids, CHUNK):
        decided: dict[tuple[str, str], tuple[str, str, datetime, str | None]] = {}
        for case_id, task_id, dept, status, updated_at, service in conn.execute(
                select(TASKS.c.case_id, TASKS.c.task_id, TASKS.c.department, TASKS.c.status,
                       TASKS.c.updated_at, CASES.c.service_code)
                .join_from(TASKS, CASES, CASES.c.case_id == TASKS.c.case_id, isouter=True)
                .where(TASKS.c.case_id.in_(part), TASKS.c.status.in_(DECISIONS),
                       TASKS.c.updated_at.is_not(None))):
            decided[(case_id, task_id)] = (dept, status, updated_at, service)
        if not decided:
            continue
        events: dict[tuple[str, str], list[tuple[datetime, str | None, str]]] = {}
        for case_id, task_id, at, status, event_id in conn.execute(
                select(TIMELINE.c.case_id, TIMELINE.c.task_id, TIMELINE.c.occurred_at,
                       TIMELINE.c.status, TIMELINE.c.event_id)
                .where(TIMELINE.c.case_id.in_(sorted({c for c, _t in decided})),
                       TIMELINE.c.event_type == "TaskUpdated",
                       TIMELINE.c.out_of_role.is_(False))):
            if (case_id, task_id) in decided:
                events.setdefault((case_id, task_id), []).append((at, status, event_id))
        for key, evs in sorted(events.items()):
            dept, status, decided_at, service = decided[key]
            t = task_time(evs, decided_at)
            if t is None:  # no event: cannot be, every key of ``events`` has one
                continue
            rows.append({
                "case_id": key[0], "task_id": key[1], "department": dept,
                "service_code": service, "decision": status,
                "received_at": t.received_at, "decided_at": decided_at,
                "elapsed_s": t.elapsed.total_seconds(), "paused_s": t.paused.total_seconds(),
                "elapsed_tenths": tenths_of_hours(t.elapsed),
                "active_tenths": tenths_of_hours(t.active),
                "paused_tenths": tenths_of_hours(t.paused) if t.paused else None,
            })
    return rows


def refresh_decisions(conn: Connection, case_ids: Iterable[str]) -> int:
    """Replace the summary rows of ``case_ids`` with the ones their rows give now (in the
    caller's transaction); returns the rows written."""
    ids = sorted(set(case_ids))
    if not ids:
        return 0
    rows = decision_rows(conn, ids)
    for part in _chunks(ids, CHUNK):
        conn.execute(delete(TASK_DECISIONS).where(TASK_DECISIONS.c.case_id.in_(part)))
    if rows:
        conn.execute(insert(TASK_DECISIONS), rows)
    return len(rows)


def refresh_all(conn: Connection) -> int:
    """:func:`refresh_decisions` of every case with a decided task, in steps of
    :data:`ALL_CHUNK` cases (a rebuild's last transaction, a model written row by row in
    a test); rows of cases without one are deleted. Returns the rows written."""
    conn.execute(delete(TASK_DECISIONS))
    written, after = 0, ""
    while True:
        ids = list(conn.execute(
            select(TASKS.c.case_id).where(TASKS.c.status.in_(DECISIONS),
                                          TASKS.c.case_id > after)
            .group_by(TASKS.c.case_id).order_by(TASKS.c.case_id).limit(ALL_CHUNK)).scalars())
        if not ids:
            return written
        rows = decision_rows(conn, ids)
        if rows:
            conn.execute(insert(TASK_DECISIONS), rows)
        written += len(rows)
        after = ids[-1]
