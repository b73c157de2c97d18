"""The unit of work: a batch's rows and its consumed offsets in ONE SQL transaction.

``write_batch(conn, batch)`` runs inside the caller's transaction (``engine.begin()``);
every statement is an upsert that is safe to repeat:

* ``cases``: insert, or update when the stored ``version`` is lower or equal (an older
  version never overwrites a newer one; an equal version is the same set of events, so
  the later record only refreshes delivery fields, as a compacted topic would keep it).
  The ``tasks`` of a case are replaced only when its version grows.
* ``timeline_entries`` (case_id, event_id), ``materials`` (material_id),
  ``material_links`` (material_a, material_b), ``dead_letters`` (source topic, partition,
  offset): insert, or nothing when the key exists: the first copy wins.
* ``materials.avoidable`` is set when a link names the material as avoidable, whichever
  of the two arrives first (both are checked in the same transaction).
* ``task_decisions`` (the decision-time summary, ``sinks.decisions``): the rows of every
  case whose tasks were replaced or that got a TaskUpdated entry are recomputed from
  the rows as they stand in this transaction (deleted and inserted again).
* ``consumed_offsets``: the next offset per partition, never moved backwards.

:class:`UnitOfWork` is that transaction on an engine, as the live sink and the rebuild use
it (``sinks.bootstrap`` builds one per process).

Dialects: PostgreSQL and SQLite both speak ``INSERT ... ON CONFLICT``; SQLAlchemy's
dialect-specific ``insert`` builds it and sends many rows per statement.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from onewindow.read_model.tables import (
    CASES,
    DEAD,
    LINKS,
    MATERIALS,
    OFFSETS,
    TASKS,
    TIMELINE,
)
from sinks.decisions import refresh_decisions
from sinks.rows import Batch

__all__ = ["UnitOfWork", "WriteResult", "load_offsets", "write_batch"]

CHUNK = 500  # keys per IN (...) list


@dataclass
class WriteResult:
    #: case ids whose row changed (version grew or first seen)
    cases_changed: set[str]
    #: case ids whose record was older than the stored version (skipped)
    cases_stale: int
    rows: dict[str, int]


def _insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"read model on {conn.dialect.name!r} is not supported")


def _chunks(items: Sequence[Any], n: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _insert_first_wins(conn: Connection, table: Table, rows: list[dict[str, Any]],
                       keys: list[str]) -> None:
    if rows:
        conn.execute(_insert(conn, table).on_conflict_do_nothing(index_elements=keys), rows)


def write_batch(conn: Connection, batch: Batch, now: datetime | None = None) -> WriteResult:
    """Write the batch's rows and offsets on ``conn`` (inside the caller's transaction)."""
    now = now or datetime.now(UTC)
    result = WriteResult(set(), 0, {})
    grew: list[str] = []

    # ---- cases (+ tasks): keep the highest version
    if batch.cases:
        stored: dict[str, int] = {}
        for ids in _chunks(list(batch.cases)):
            stored.update(conn.execute(select(CASES.c.case_id, CASES.c.version)
                                       .where(CASES.c.case_id.in_(ids))).all())
        rows = []
        for case_id, (row, _tasks) in batch.cases.items():
            old = stored.get(case_id)
            if old is not None and old > row["version"]:
                result.cases_stale += 1
                continue
            rows.append(dict(row, recorded_at=now))
            if old is None or old < row["version"]:
                grew.append(case_id)
        if rows:
            stmt = _insert(conn, CASES)
            cols = {c.name: stmt.excluded[c.name] for c in CASES.columns if c.name != "case_id"}
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["case_id"], set_=cols,
                where=CASES.c.version <= stmt.excluded.version), rows)
        if grew:
            for ids in _chunks(grew):
                conn.execute(delete(TASKS).where(TASKS.c.case_id.in_(ids)))
            tasks = [t for cid in grew for t in batch.cases[cid][1]]
            if tasks:
                conn.execute(_insert(conn, TASKS), tasks)
        result.cases_changed = set(grew)
        result.rows["cases"] = len(rows)
        result.rows["tasks"] = sum(len(batch.cases[c][1]) for c in grew)

    # ---- first copy wins
    for name, table, rows_by_key, keys in (
            ("timeline_entries", TIMELINE, batch.timeline, ["case_id", "event_id"]),
            ("materials", MATERIALS, batch.materials, ["material_id"]),
            ("material_links", LINKS, batch.links, ["material_a", "material_b"]),
            ("dead_letters", DEAD, batch.dead_letters,
             ["source_topic", "source_partition", "source_offset"])):
        rows = [dict(r, recorded_at=now) for r in rows_by_key.values()]
        _insert_first_wins(conn, table, rows, keys)
        result.rows[name] = len(rows)

    # ---- the decision-time summary of the cases whose tasks or task events changed
    decided = set(grew) | {r["case_id"] for r in batch.timeline.values()
                           if r["event_type"] == "TaskUpdated"}
    if decided:
        result.rows["task_decisions"] = refresh_decisions(conn, decided)

    # ---- avoidable: a link may arrive before or after its material
    touched = set(batch.materials) | {r["avoidable_material"] for r in batch.links.values()
                                      if r.get("avoidable_material")}
    for ids in _chunks(sorted(touched)):
        linked = select(LINKS.c.avoidable_material).where(LINKS.c.avoidable_material.in_(ids))
        conn.execute(update(MATERIALS)
                     .where(and_(MATERIALS.c.material_id.in_(ids),
                                 MATERIALS.c.material_id.in_(linked),
                                 MATERIALS.c.avoidable.is_(False)))
                     .values(avoidable=True))

    # ---- offsets, in the same transaction as the rows
    if batch.offsets:
        stmt = _insert(conn, OFFSETS)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["topic", "partition"],
            set_={"next_offset": stmt.excluded.next_offset, "updated_at": stmt.excluded.updated_at},
            where=OFFSETS.c.next_offset < stmt.excluded.next_offset),
            [{"topic": t, "partition": p, "next_offset": o, "updated_at": now}
             for (t, p), o in sorted(batch.offsets.items())])
    return result


def load_offsets(conn: Connection, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """Stored next offsets of the given topics' partitions."""
    names = list(topics)
    rows = conn.execute(select(OFFSETS.c.topic, OFFSETS.c.partition, OFFSETS.c.next_offset)
                        .where(OFFSETS.c.topic.in_(names))).all()
    return {(t, p): o for t, p, o in rows}


class UnitOfWork:
    """A batch's rows and next offsets in ONE transaction on ``engine``: both are committed
    or neither is."""

    def __init__(self, engine: Engine, *, commit_delay: float = 0.0) -> None:
        self.engine = engine
        self.commit_delay = commit_delay  # test-only fault injection: sleep before COMMIT

    def write(self, batch: Batch, now: datetime | None = None) -> WriteResult:
        with self.engine.begin() as conn:
            result = write_batch(conn, batch, now)
            if self.commit_delay:
                time.sleep(self.commit_delay)
        return result

    def stored_offsets(self, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        """The next offsets committed with the rows (see :func:`load_offsets`)."""
        with self.engine.connect() as conn:
            return load_offsets(conn, topics)
