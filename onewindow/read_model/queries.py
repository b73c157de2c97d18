"""Read-only queries of the read model (the counter API, screens and reports use these).

Each takes an open SQLAlchemy ``Connection`` and returns plain dicts with the stored
values (instants as aware UTC datetimes); presentation (time zone, SLA status at read
time) is the caller's. Every query here is served by an index of
:mod:`onewindow.read_model.tables`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, exists, func, or_, select

from onewindow.domain import documents
from onewindow.domain.materials import Link
from onewindow.read_model.tables import CASES, DEAD, LINKS, MATERIALS, TASKS, TIMELINE

__all__ = [
    "accepted_between",
    "case_exists",
    "case_holders",
    "cases_by_applicant_hash",
    "changed_cases",
    "fold_documents",
    "get_case",
    "get_material",
    "holder_materials",
    "latest_acceptance",
    "list_cases",
    "list_dead_letters",
    "ping",
    "timeline",
    "window_counts",
]


def ping(conn: Connection) -> None:
    """Raises unless the model's tables can be read."""
    conn.execute(select(CASES.c.case_id).limit(1)).all()


# ------------------------------------------------------------------------------- cases


def _tasks_of(conn: Connection, case_ids: Sequence[str], limit: int | None = None
              ) -> dict[str, list[dict[str, Any]]]:
    """Each case's tasks in their order (``position``), at most ``limit`` of each."""
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in case_ids}
    if not case_ids or limit == 0:
        return out
    q = select(TASKS).where(TASKS.c.case_id.in_(list(case_ids)))
    if limit is not None:
        q = q.where(TASKS.c.position < limit)  # positions are 0..n-1 in each case
    for r in conn.execute(q.order_by(TASKS.c.case_id, TASKS.c.position)).mappings():
        out[r["case_id"]].append(dict(r))
    return out


def _task_counts(conn: Connection, case_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Each case's tasks counted by status (``{status: n}``), all of them."""
    out: dict[str, dict[str, int]] = {c: {} for c in case_ids}
    if not case_ids:
        return out
    q = (select(TASKS.c.case_id, TASKS.c.status, func.count())
         .where(TASKS.c.case_id.in_(list(case_ids)))
         .group_by(TASKS.c.case_id, TASKS.c.status))
    for case_id, status, n in conn.execute(q):
        out[case_id][status] = int(n)
    return out


def _add_tasks(conn: Connection, rows: list[dict[str, Any]], limit: int | None) -> None:
    ids = [r["case_id"] for r in rows]
    tasks, counts = _tasks_of(conn, ids, limit), _task_counts(conn, ids)
    for r in rows:
        r["tasks"], r["task_counts"] = tasks[r["case_id"]], counts[r["case_id"]]


def get_case(conn: Connection, case_id: str, *, tasks_limit: int | None = None
             ) -> dict[str, Any] | None:
    """The case row with ``tasks`` (the first ``tasks_limit`` in order, all by default)
    and ``task_counts`` (``{status: n}`` over all its tasks)."""
    row = conn.execute(select(CASES).where(CASES.c.case_id == case_id)).mappings().first()
    if row is None:
        return None
    out = [dict(row)]
    _add_tasks(conn, out, tasks_limit)
    return out[0]


def case_exists(conn: Connection, case_id: str) -> bool:
    """A case is known when its state or any of its timeline entries is."""
    return bool(conn.execute(select(
        or_(exists().where(CASES.c.case_id == case_id),
            exists().where(TIMELINE.c.case_id == case_id)))).scalar())


def list_cases(conn: Connection, *, status: str | None = None, department: str | None = None,
               applicant: tuple[str, str] | None = None, service_code: str | None = None,
               limit: int = 50, offset: int = 0, tasks_limit: int | None = None
               ) -> list[dict[str, Any]]:
    """Cases, newest acceptance first; filters: status, a task's department,
    ``applicant=(id_type, id_hash)`` (the progress lookup), service code. Each with
    ``tasks`` (at most ``tasks_limit``) and ``task_counts``, as :func:`get_case`."""
    q = select(CASES)
    if status is not None:
        q = q.where(CASES.c.status == status)
    if service_code is not None:
        q = q.where(CASES.c.service_code == service_code)
    if applicant is not None:
        q = q.where(and_(CASES.c.applicant_id_type == applicant[0],
                         CASES.c.applicant_id_hash == applicant[1]))
    if department is not None:
        q = q.where(exists().where(and_(TASKS.c.case_id == CASES.c.case_id,
                                        TASKS.c.department == department)))
    q = q.order_by(CASES.c.accepted_at.desc().nulls_last(), CASES.c.case_id)
    return _with_tasks(conn, q.limit(limit).offset(offset), tasks_limit)


def _with_tasks(conn: Connection, q: Any, tasks_limit: int | None) -> list[dict[str, Any]]:
    rows = [dict(r) for r in conn.execute(q).mappings()]
    _add_tasks(conn, rows, tasks_limit)
    return rows


def cases_by_applicant_hash(conn: Connection, id_hash: str, id_types: Sequence[str],
                            limit: int = 50, *, tasks_limit: int | None = None
                            ) -> list[dict[str, Any]]:
    """Cases of an applicant given by ID hash, under any of ``id_types`` (the counter
    screen's search, where the clerk does not say which kind of number was typed)."""
    q = (select(CASES).where(and_(CASES.c.applicant_id_type.in_(list(id_types)),
                                  CASES.c.applicant_id_hash == id_hash))
         .order_by(CASES.c.accepted_at.desc().nulls_last(), CASES.c.case_id).limit(limit))
    return _with_tasks(conn, q, tasks_limit)


def accepted_between(conn: Connection, start: datetime, end: datetime, *,
                     window_id: str | None = None, limit: int = 500,
                     tasks_limit: int | None = None) -> list[dict[str, Any]]:
    """Cases accepted in ``[start, end)`` (a window's board for one day), newest first;
    ``tasks_limit=0`` reads no task rows, only ``task_counts``."""
    q = select(CASES).where(and_(CASES.c.accepted_at >= start, CASES.c.accepted_at < end))
    if window_id is not None:
        q = q.where(CASES.c.window_id == window_id)
    q = q.order_by(CASES.c.accepted_at.desc(), CASES.c.case_id).limit(limit)
    return _with_tasks(conn, q, tasks_limit)


def window_counts(conn: Connection, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """``(window_id, cases accepted)`` in ``[start, end)``, by window id."""
    q = (select(CASES.c.window_id, func.count())
         .where(and_(CASES.c.accepted_at >= start, CASES.c.accepted_at < end,
                     CASES.c.window_id.is_not(None)))
         .group_by(CASES.c.window_id).order_by(CASES.c.window_id))
    return [(w, int(n)) for w, n in conn.execute(q)]


def latest_acceptance(conn: Connection) -> datetime | None:
    """The newest ``accepted_at`` in the model (None when it holds no accepted case)."""
    return conn.execute(select(func.max(CASES.c.accepted_at))).scalar()


def changed_cases(conn: Connection, since: datetime, limit: int = 500) -> list[dict[str, Any]]:
    """Cases whose row was committed after ``since`` (the change feed), oldest first."""
    q = (select(CASES.c.case_id, CASES.c.version, CASES.c.status, CASES.c.recorded_at)
         .where(CASES.c.recorded_at > since)
         .order_by(CASES.c.recorded_at, CASES.c.case_id).limit(limit))
    return [dict(r) for r in conn.execute(q).mappings()]


def timeline(conn: Connection, case_id: str, *, limit: int = 100,
             offset: int = 0) -> list[dict[str, Any]]:
    """The applied events of a case by ``(occurred_at, event_id)``; ``event`` is the
    stored (redacted) JSON form."""
    q = (select(TIMELINE).where(TIMELINE.c.case_id == case_id)
         .order_by(TIMELINE.c.occurred_at, TIMELINE.c.event_id).limit(limit).offset(offset))
    out = []
    for r in conn.execute(q).mappings():
        d = dict(r)
        d["event"] = json.loads(d.pop("event_json"))
        out.append(d)
    return out


# ------------------------------------------------------------------------------- materials


def _material(r: Any) -> dict[str, Any]:
    d = dict(r)
    d["declared_fields"] = json.loads(d["declared_fields"])
    return d


def _links_touching(conn: Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        chunk = list(ids[i:i + 500])
        q = select(LINKS).where(or_(LINKS.c.material_a.in_(chunk),
                                    LINKS.c.material_b.in_(chunk)))
        for r in conn.execute(q).mappings():
            d = dict(r)
            d["differing_fields"] = json.loads(d["differing_fields"])
            out[(d["material_a"], d["material_b"])] = d
    return [out[k] for k in sorted(out)]


def get_material(conn: Connection, material_id: str) -> dict[str, Any] | None:
    """The material and its ``links`` ``[{material_id, verdict, ...}]`` (the other side)."""
    row = conn.execute(select(MATERIALS).where(MATERIALS.c.material_id == material_id)
                       ).mappings().first()
    if row is None:
        return None
    m = _material(row)
    m["links"] = [_seen_from(link_row, material_id)
                  for link_row in _links_touching(conn, [material_id])]
    return m


def _seen_from(row: dict[str, Any], me: str) -> dict[str, Any]:
    """A stored link as seen from its end ``me`` (``Link.other`` names the other end)."""
    return {"material_id": Link.from_dict(row).other(me), "verdict": row["verdict"],
            "differing_fields": row["differing_fields"],
            "holders_differ": row["holders_differ"],
            "avoidable_material": row["avoidable_material"],
            "found_at": row["found_at"]}


def holder_materials(conn: Connection, id_type: str, id_hash: str
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every material of a holder (oldest first) and every link touching one of them."""
    q = (select(MATERIALS).where(and_(MATERIALS.c.holder_id_type == id_type,
                                      MATERIALS.c.holder_id_hash == id_hash))
         .order_by(MATERIALS.c.occurred_at, MATERIALS.c.material_id))
    materials = [_material(r) for r in conn.execute(q).mappings()]
    return materials, _links_touching(conn, [m["material_id"] for m in materials])


def case_holders(conn: Connection, case_id: str) -> list[tuple[str, str]]:
    """``(holder_id_type, holder_id_hash)`` of every holder of a material of the case,
    in order of first appearance."""
    q = (select(MATERIALS.c.holder_id_type, MATERIALS.c.holder_id_hash)
         .where(MATERIALS.c.case_id == case_id)
         .order_by(MATERIALS.c.occurred_at, MATERIALS.c.material_id))
    out: dict[tuple[str, str], None] = {}
    for t, h in conn.execute(q):
        if t is not None and h is not None:
            out.setdefault((t, h), None)
    return list(out)


def fold_documents(materials: Iterable[dict[str, Any]],
                   links: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A holder's documents as rows (domain.md section 5).

    The rule (which materials are one document, their order, the CONFLICT links reported
    on each) is :func:`onewindow.domain.documents.fold_documents`; this applies it to the
    material and link rows of :func:`holder_materials` (links to materials not given are
    ignored) and shapes the result.

    Each document gives its first material's type and name, the number of its first
    numbered material (None when none has one), first and last ``occurred_at``,
    ``times_submitted``, ``avoidable_submissions``, its material rows (oldest first) and
    ``conflicts`` ``[{material_id, conflicts_with, differing_fields, holders_differ}]``.
    Raises ``ValueError`` for a link row whose verdict is not one of domain.md section 5.
    """
    rows = {m["material_id"]: m for m in materials}
    folded = documents.fold_documents(((r["occurred_at"], mid) for mid, r in rows.items()),
                                      [Link.from_dict(row) for row in links])
    out = []
    for doc in folded:
        members = [rows[mid] for mid in doc.material_ids]
        first = members[0]
        numbered = next((m for m in members if m["document_number_masked"]), None)
        out.append({
            "material_type": first["material_type"],
            "name": first["name"],
            "document_number": None if numbered is None else numbered["document_number"],
            "document_number_masked": (None if numbered is None
                                       else numbered["document_number_masked"]),
            "first_material_id": first["material_id"],
            "first_on_file_at": first["occurred_at"],
            "last_submitted_at": members[-1]["occurred_at"],
            "times_submitted": len(members),
            "avoidable_submissions": sum(1 for m in members if m["avoidable"]),
            "materials": members,
            "conflicts": [{"material_id": me, "conflicts_with": lk.other(me),
                           "differing_fields": list(lk.differing_fields),
                           "holders_differ": lk.holders_differ}
                          for me, lk in doc.conflicts],
        })
    return out


# ------------------------------------------------------------------------------- dead letters


def list_dead_letters(conn: Connection, *, reason: str | None = None,
                      department: str | None = None, limit: int = 50,
                      offset: int = 0) -> list[dict[str, Any]]:
    q = select(DEAD)
    if reason is not None:
        q = q.where(DEAD.c.reason == reason)
    if department is not None:
        q = q.where(DEAD.c.department == department)
    q = q.order_by(DEAD.c.dead_lettered_at.desc(), DEAD.c.source_topic,
                   DEAD.c.source_partition, DEAD.c.source_offset)
    out = []
    for r in conn.execute(q.limit(limit).offset(offset)).mappings():
        d = dict(r)
        d["original_json"] = None if d["original_json"] is None else json.loads(d["original_json"])
        out.append(d)
    return out


def count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
