"""Read-only queries of the read model (the counter API, screens and reports use these).

Each takes an open SQLAlchemy ``Connection`` and returns plain dicts with the stored
values (instants as aware UTC datetimes); presentation (time zone, SLA status at read
time) is the caller's. Every query here is served by an index of
:mod:`onewindow.read_model.tables`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, exists, func, inspect, or_, select, tuple_

from onewindow.domain import documents
from onewindow.domain.materials import Link, VerdictKind
from onewindow.read_model.tables import (
    CASES,
    DEAD,
    LINKS,
    MATERIALS,
    TASKS,
    TIMELINE,
    metadata,
)

__all__ = [
    "accepted_between",
    "case_exists",
    "case_holders",
    "cases_by_applicant_hash",
    "changed_cases",
    "get_case",
    "get_material",
    "holder_documents",
    "latest_acceptance",
    "list_cases",
    "list_dead_letters",
    "missing_schema",
    "ping",
    "timeline",
    "window_counts",
]


def ping(conn: Connection) -> None:
    """Raises unless the model's tables can be read."""
    conn.execute(select(CASES.c.case_id).limit(1)).all()


def missing_schema(conn: Connection) -> list[str]:
    """What the database lacks of the model: ``"cases"`` for a missing table,
    ``"timeline_entries.out_of_role"`` for a missing column; ``[]`` once the sink's
    migration (``sinks.migrations``) has run to at least this code's revision. Asks the
    database's catalogue (a query per table): for when a query failed, not per request."""
    found = inspect(conn)
    tables = set(found.get_table_names())
    gaps: list[str] = []
    for table in metadata.sorted_tables:
        if table.name not in tables:
            gaps.append(table.name)
            continue
        columns = {c["name"] for c in found.get_columns(table.name)}
        gaps += [f"{table.name}.{c.name}" for c in table.columns if c.name not in columns]
    return gaps


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


#: what a holder's documents are folded from: a few short columns of each material
_FOLDED = (MATERIALS.c.material_id, MATERIALS.c.occurred_at, MATERIALS.c.avoidable,
           MATERIALS.c.case_id, MATERIALS.c.valid_until,
           and_(MATERIALS.c.document_number_masked.is_not(None),
                MATERIALS.c.document_number_masked != "").label("numbered"))
#: what a listed submission shows (never ``declared_fields``: ``get_material`` has them)
_SHOWN = (MATERIALS.c.material_id, MATERIALS.c.kind, MATERIALS.c.material_type,
          MATERIALS.c.name, MATERIALS.c.case_id, MATERIALS.c.department, MATERIALS.c.form,
          MATERIALS.c.occurred_at, MATERIALS.c.sha256, MATERIALS.c.avoidable,
          MATERIALS.c.valid_until, MATERIALS.c.document_number,
          MATERIALS.c.document_number_masked)
#: rows read at a time from a stream of links (PostgreSQL: a server-side cursor)
_STREAM = 2_000


def holder_documents(conn: Connection, id_type: str, id_hash: str, *, limit: int = 50,
                     offset: int = 0, submissions: int = 5, conflicts: int = 5,
                     case_id: str | None = None) -> dict[str, Any]:
    """A holder's documents on file (domain.md section 5), newest first, bounded.

    The documents are :class:`onewindow.domain.documents.DocumentFold` of all the
    holder's materials, ordered by :func:`~onewindow.domain.documents.newest_first`;
    ``documents`` holds ``limit`` of them from ``offset``. The answer's size is bounded
    by ``limit * (submissions + conflicts)`` rows whatever the holder has on file
    (issue 13); the fold reads a few short columns of every material of the holder and
    streams the links (docs/read-model.md "Documents on file").

    Returns ``{total_documents, conflicts_total, avoidable_in_case, holder_name,
    holder_id_masked, documents}``: the holder's documents and CONFLICT link ends over
    all of them, the avoidable submissions of case ``case_id`` among them (0 without
    one), the name and mask of the holder's newest material (None without materials),
    and per listed document ``{material_type, name, document_number,
    document_number_masked, first_material_id, first_on_file_at, last_submitted_at,
    times_submitted, avoidable_submissions, valid_until, in_case, materials, conflicts,
    conflicts_total}``: type and name of its first material, the number of its first
    numbered material, ``valid_until`` the latest of its materials, ``in_case`` how
    many of them ``case_id`` has, ``materials`` its newest ``submissions`` material rows
    (oldest first; ``times_submitted`` counts all), ``conflicts`` the first
    ``conflicts`` of its CONFLICT link ends (by link, ``material_a`` before
    ``material_b``) ``[{material_id, conflicts_with, differing_fields, holders_differ}]``
    and ``conflicts_total`` all of them.
    """
    holder = and_(MATERIALS.c.holder_id_type == id_type, MATERIALS.c.holder_id_hash == id_hash)
    rows = {r.material_id: r for r in conn.execute(select(*_FOLDED).where(holder))}
    fold = documents.DocumentFold((r.occurred_at, mid) for mid, r in rows.items())
    mine = select(MATERIALS.c.material_id).where(holder).scalar_subquery()
    folding = (select(LINKS.c.material_a, LINKS.c.material_b, LINKS.c.verdict)
               .where(LINKS.c.verdict.in_([str(v) for v in documents.FOLDING_VERDICTS]),
                      LINKS.c.material_a.in_(mine), LINKS.c.material_b.in_(mine))
               .execution_options(yield_per=_STREAM))
    for a, b, verdict in conn.execute(folding):
        fold.add(a, b, verdict)
    groups = fold.documents()
    order = documents.newest_first(groups)
    page = order[offset:offset + limit]
    shown = {key: groups[key] for key in page}
    ends = _conflict_ends(conn, fold, mine, set(shown), conflicts)
    wanted: set[str] = set()
    for members in shown.values():
        ids = [mid for _at, mid in members]
        numbered = next((mid for mid in ids if rows[mid].numbered), ids[0])
        wanted.update(_newest(ids, submissions), (ids[0], numbered))
    detail = _rows_of(conn, sorted(wanted))
    newest = conn.execute(select(MATERIALS.c.holder_name, MATERIALS.c.holder_id_masked)
                          .where(holder).order_by(MATERIALS.c.occurred_at.desc(),
                                                  MATERIALS.c.material_id.desc())
                          .limit(1)).first()
    out = []
    for key in page:
        members = groups[key]
        ids = [mid for _at, mid in members]
        first = detail[ids[0]]
        numbered = next((detail[mid] for mid in ids if rows[mid].numbered), None)
        valid = [rows[mid].valid_until for mid in ids if rows[mid].valid_until is not None]
        out.append({
            "material_type": first["material_type"],
            "name": first["name"],
            "document_number": None if numbered is None else numbered["document_number"],
            "document_number_masked": (None if numbered is None
                                       else numbered["document_number_masked"]),
            "first_material_id": ids[0],
            "first_on_file_at": members[0][0],
            "last_submitted_at": members[-1][0],
            "times_submitted": len(ids),
            "avoidable_submissions": sum(1 for mid in ids if rows[mid].avoidable),
            "valid_until": max(valid) if valid else None,
            "in_case": sum(1 for mid in ids if rows[mid].case_id == case_id),
            "materials": [detail[mid] for mid in _newest(ids, submissions)],
            "conflicts": ends.listed.get(key, []),
            "conflicts_total": ends.counts.get(key, 0),
        })
    return {
        "total_documents": len(groups),
        "conflicts_total": sum(ends.counts.values()),
        "avoidable_in_case": sum(1 for r in rows.values()
                                 if r.avoidable and case_id is not None
                                 and r.case_id == case_id),
        "holder_name": None if newest is None else newest.holder_name,
        "holder_id_masked": None if newest is None else newest.holder_id_masked,
        "documents": out,
    }


def _newest(ids: list[str], n: int) -> list[str]:
    """The last ``n`` of ``ids`` (none for ``n <= 0``)."""
    return ids[max(len(ids) - n, 0):] if n > 0 else []


class _ConflictEnds:
    """CONFLICT link ends per document: all counted, the first few listed."""

    __slots__ = ("counts", "listed")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.listed: dict[str, list[dict[str, Any]]] = {}


def _conflict_ends(conn: Connection, fold: documents.DocumentFold, mine: Any,
                   shown: set[str], limit: int) -> _ConflictEnds:
    """Every CONFLICT link touching the holder's materials, streamed: each end among
    them counted on its document, and on the ``shown`` documents the first ``limit``
    ends listed (by link, ``material_a`` before ``material_b``, as
    :func:`onewindow.domain.documents.fold_documents` reports them)."""
    out = _ConflictEnds()
    kept: list[tuple[str, str, str, str]] = []  # (document, end, material_a, material_b)
    q = (select(LINKS.c.material_a, LINKS.c.material_b)
         .where(LINKS.c.verdict == str(VerdictKind.CONFLICT),
                or_(LINKS.c.material_a.in_(mine), LINKS.c.material_b.in_(mine)))
         .order_by(LINKS.c.material_a, LINKS.c.material_b)
         .execution_options(yield_per=_STREAM))
    listed: dict[str, int] = {}
    for a, b in conn.execute(q):
        for me in (a, b):
            if me not in fold.when:
                continue
            doc = fold.document_of(me)
            out.counts[doc] = out.counts.get(doc, 0) + 1
            if doc in shown and listed.get(doc, 0) < limit:
                listed[doc] = listed.get(doc, 0) + 1
                kept.append((doc, me, a, b))
    details: dict[tuple[str, str], Any] = {}
    pairs = sorted({(a, b) for _doc, _me, a, b in kept})
    for i in range(0, len(pairs), 400):
        q = select(LINKS.c.material_a, LINKS.c.material_b, LINKS.c.differing_fields,
                   LINKS.c.holders_differ).where(
            tuple_(LINKS.c.material_a, LINKS.c.material_b).in_(pairs[i:i + 400]))
        for r in conn.execute(q):
            details[(r.material_a, r.material_b)] = r
    for doc, me, a, b in kept:
        r = details.get((a, b))
        if r is None:  # gone since (a rebuild under way): not listed, still counted
            continue
        out.listed.setdefault(doc, []).append({
            "material_id": me, "conflicts_with": b if me == a else a,
            "differing_fields": json.loads(r.differing_fields),
            "holders_differ": bool(r.holders_differ)})
    return out


def _rows_of(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The :data:`_SHOWN` columns of the materials ``ids``, by material id."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        q = select(*_SHOWN).where(MATERIALS.c.material_id.in_(list(ids[i:i + 500])))
        for r in conn.execute(q).mappings():
            out[r["material_id"]] = dict(r)
    return out


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
