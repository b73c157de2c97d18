"""The JSON behind the counter screen and the citizen's progress lookup (``counter/pages.py``
serves the pages, ``counter/static/`` their HTML, CSS and JS).

* ``GET  /api/cases/{case_id}/card``: the case with working days left, and the documents
  the applicant and every holder of the case's materials already have on file (duplicates
  folded, reusable ones marked, conflicts flagged). Found through the stored ID hashes:
  no plaintext number is needed.
* ``POST /api/search {q}``: a case number, or an applicant's ID number of any type (in
  the body, out of URLs and logs).
* ``GET  /api/board?window_id=&date=``: the cases a window accepted on a day (today in
  Asia/Shanghai by default), with the windows active that day.
* ``POST /api/lookup {case_id, id_last4}``: the citizen's reduced, masked view, only when
  the last four characters of the applicant's ID match; a wrong pair is the same 404 as
  an unknown case. Attempts are limited per client address.
* ``GET  /api/departments``: the registry's codes and names, for labels.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from counter import present
from counter.dependencies import ERRORS, Calendar, Conn, Departments, Now, Protector
from counter.schemas import (
    BoardOut,
    CaseCardOut,
    DepartmentOut,
    ErrorOut,
    LookupOut,
    LookupQuery,
    SearchOut,
    SearchQuery,
)
from onewindow.domain.deadline import SHANGHAI, local_date
from onewindow.domain.normalise import normalise_number
from onewindow.read_model import queries

__all__ = ["LookupLimiter", "router"]

ID_TYPES = ("RESIDENT_ID", "USCC", "PASSPORT", "OTHER")
NOT_FOUND = "no case matches this case number and ID"  # the same for every miss


class LookupLimiter:
    """At most ``limit`` lookups per ``window`` seconds per client address (in memory)."""

    def __init__(self, limit: int = 30, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        t = time.monotonic()
        with self._lock:
            if len(self._hits) > 10_000:  # bounded memory: forget stale clients
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > t - self.window}
            q = self._hits.setdefault(client, deque())
            while q and q[0] <= t - self.window:
                q.popleft()
            if len(q) >= self.limit:
                return False
            q.append(t)
            return True


def _day_bounds(d: date) -> tuple[datetime, datetime]:
    start = datetime.combine(d, dtime(0), SHANGHAI)
    return start, datetime.combine(d + timedelta(days=1), dtime(0), SHANGHAI)


def _last4(value: str) -> str:
    return normalise_number(value)[-4:]


async def _limiter(request: Request) -> LookupLimiter:
    return request.app.state.lookup_limiter  # type: ignore[no-any-return]


Limiter = Annotated[LookupLimiter, Depends(_limiter)]

router = APIRouter(prefix="/api", responses=ERRORS)


@router.get("/cases/{case_id}/card", response_model=CaseCardOut, tags=["counter screen"],
            summary="The case card: case, working days left, documents on file")
def case_card(case_id: str, c: Conn, t: Now, calendar: Calendar) -> dict[str, Any]:
    row = queries.get_case(c, case_id)
    if row is None:
        raise HTTPException(404, f"case {case_id!r} is not in the read model")
    today = local_date(t)
    holders: list[tuple[str, str]] = []
    if row["applicant_id_type"] and row["applicant_id_hash"]:
        holders.append((row["applicant_id_type"], row["applicant_id_hash"]))
    holders += [h for h in queries.case_holders(c, case_id) if h not in holders]
    out_holders = []
    conflicts = 0
    for id_type, id_hash in holders:
        materials, links = queries.holder_materials(c, id_type, id_hash)
        docs = queries.fold_documents(materials, links)
        is_applicant = (id_type, id_hash) == (row["applicant_id_type"],
                                              row["applicant_id_hash"])
        if materials:
            name, masked = materials[-1]["holder_name"], materials[-1]["holder_id_masked"]
        else:
            name, masked = row["applicant_name"], row["applicant_id_masked"]
        conflicts += sum(len(d["conflicts"]) for d in docs)
        out_holders.append({
            "holder": {"id_type": id_type, "id_masked": masked, "name": name},
            "is_applicant": is_applicant, "total_documents": len(docs),
            "documents": [present.card_document_out(d, row, today) for d in docs[:100]]})
    avoidable = sum(1 for h in out_holders for d in h["documents"]
                    for s in d["submissions"] if s["avoidable"] and s["case_id"] == case_id)
    return {"case": present.screen_case_out(row, t, calendar), "holders": out_holders,
            "conflicts": conflicts, "avoidable_submissions": avoidable}


@router.post("/search", response_model=SearchOut, tags=["counter screen"],
             summary="Find cases by case number or by the applicant's ID number (in the body)")
def search(body: SearchQuery, c: Conn, t: Now, calendar: Calendar,
           protector: Protector) -> dict[str, Any]:
    q = body.q.strip()
    row = queries.get_case(c, q) if q else None
    if row is not None:
        return {"match": "case", "items": [present.screen_case_out(row, t, calendar)]}
    number = normalise_number(q)
    if not number:
        return {"match": "none", "items": []}
    rows = queries.cases_by_applicant_hash(c, protector.hash(number), ID_TYPES, limit=50)
    return {"match": "applicant" if rows else "none",
            "items": [present.screen_case_out(r, t, calendar) for r in rows]}


@router.get("/board", response_model=BoardOut, tags=["counter screen"],
            summary="Cases a counter window accepted on a day (today by default)")
def board(c: Conn, t: Now, calendar: Calendar,
          window_id: Annotated[str | None, Query(max_length=64)] = None,
          day: Annotated[date | None, Query(alias="date")] = None) -> dict[str, Any]:
    today = local_date(t)
    d = day or today
    start, end = _day_bounds(d)
    windows = queries.window_counts(c, start, end)
    rows = queries.accepted_between(c, start, end, window_id=window_id or None)
    latest = queries.latest_acceptance(c)
    return {"date": d.isoformat(), "today": today.isoformat(), "window_id": window_id,
            "windows": [{"window_id": w, "accepted": n} for w, n in windows],
            "latest_accepted_on": None if latest is None else local_date(latest).isoformat(),
            "items": [present.screen_case_out(r, t, calendar) for r in rows]}


@router.get("/departments", response_model=list[DepartmentOut], tags=["counter screen"],
            summary="The department registry (codes and names)")
def departments(registry: Departments) -> list[dict[str, str]]:
    return [{"code": d.code, "name": d.name, "name_en": d.name_en, "role": d.role}
            for d in registry.departments]


@router.post("/lookup", response_model=LookupOut, tags=["progress lookup"],
             responses={429: {"model": ErrorOut}},
             summary="办件进度查询: case number and the last four characters of the ID")
def lookup(body: LookupQuery, request: Request, c: Conn, t: Now, calendar: Calendar,
           limiter: Limiter) -> dict[str, Any]:
    client = request.client.host if request.client else "unknown"
    if not limiter.allow(client):
        raise HTTPException(429, "too many lookups; try again in a minute")
    row = queries.get_case(c, body.case_id.strip())
    masked = None if row is None else row["applicant_id_masked"]
    given = _last4(body.id_last4)
    # compare in constant time, and answer a wrong pair exactly like an unknown case
    ok = (masked is not None and len(given) == 4
          and hmac.compare_digest(masked[-4:].upper().encode(), given.encode()))
    if not ok or row is None:
        raise HTTPException(404, NOT_FOUND)
    steps = queries.timeline(c, row["case_id"], limit=200)
    return present.lookup_out(row, steps, t, calendar)
