"""The JSON behind the counter screen, the receipt and the citizen's progress lookup
(``counter/pages.py`` serves the pages, ``counter/static/`` their HTML, CSS and JS).

* ``GET  /api/cases/{case_id}/card`` (clerk): the case with working days left, and the
  documents the applicant and every holder of the case's materials already have on file
  (duplicates folded, reusable ones marked, conflicts flagged; newest first, at most
  ``present.CARD_DOCUMENTS`` per holder with the total). Found through the stored ID
  hashes: no plaintext number is needed.
* ``GET  /api/cases/{case_id}/receipt`` (clerk): the printable acceptance receipt with
  the case's query code (:mod:`onewindow.domain.receipt`).
* ``POST /api/search {q}`` (clerk): a case number, or an applicant's ID number of any type
  (in the body, out of URLs and logs); a search by ID number counts against the user's
  search quota (429 beyond) and is logged with the number's keyed hash.
* ``GET  /api/board?window_id=&date=`` (supervisor): the cases a window accepted on a day
  (at most 500), each with its tasks counted by status, not listed.
* ``POST /api/lookup {case_id, query_code}`` (public): the citizen's reduced, masked view,
  only with the case's query code; a wrong code is the same 404 as an unknown case.
  Limited per client address and, for failures, per case.
* ``GET  /api/departments`` (signed in): the registry's codes and names, for labels.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from counter import present, receipt_page
from counter.auth import Auditor, AuditTrail, SignedIn, client_address, require
from counter.dependencies import (
    ERRORS,
    Calendar,
    Conn,
    Departments,
    IsoDay,
    Now,
    Protector,
    SearchLimits,
)
from counter.limits import spend_search
from counter.pages import PAGE_HEADERS
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
from onewindow.domain import receipt
from onewindow.domain.access import Permission, Principal
from onewindow.domain.deadline import SHANGHAI, local_date
from onewindow.domain.normalise import normalise_number
from onewindow.read_model import queries
from onewindow.staff.access_log import CITIZEN, Entry, holder_target

__all__ = ["router"]

ID_TYPES = ("RESIDENT_ID", "USCC", "PASSPORT", "OTHER")
NOT_FOUND = "no case matches this case number and query code"  # the same for every miss
#: the days the board can show (domain.md section 2: nothing happened before 2000)
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
#: holders shown on one case card (a case with more is shown with the first ones)
MAX_HOLDERS = 20


def _day_bounds(d: date) -> tuple[datetime, datetime]:
    start = datetime.combine(d, dtime(0), SHANGHAI)
    return start, datetime.combine(d + timedelta(days=1), dtime(0), SHANGHAI)


CaseReader = Annotated[Principal, Depends(require(Permission.READ_CASES))]
BoardReader = Annotated[Principal, Depends(require(Permission.READ_BOARD))]

router = APIRouter(prefix="/api", responses=ERRORS)


@router.get("/cases/{case_id}/card", response_model=CaseCardOut, tags=["counter screen"],
            summary="The case card: case, working days left, documents on file")
def case_card(case_id: str, _who: CaseReader, audit: Auditor, c: Conn, t: Now,
              calendar: Calendar) -> dict[str, Any]:
    row = queries.get_case(c, case_id, tasks_limit=present.CASE_TASKS)
    audit("case.card", case_id, "ok" if row else "not_found")
    if row is None:
        raise HTTPException(404, f"case {case_id!r} is not in the read model")
    today = local_date(t)
    holders: list[tuple[str, str]] = []
    if row["applicant_id_type"] and row["applicant_id_hash"]:
        holders.append((row["applicant_id_type"], row["applicant_id_hash"]))
    holders += [h for h in queries.case_holders(c, case_id) if h not in holders]
    holders = holders[:MAX_HOLDERS]
    out_holders = []
    shown: list[Entry] = []  # a read of each holder's documents, logged together
    conflicts = 0
    avoidable = 0
    for id_type, id_hash in holders:
        found = queries.holder_documents(c, id_type, id_hash, limit=present.CARD_DOCUMENTS,
                                         submissions=present.DOCUMENT_SUBMISSIONS,
                                         conflicts=present.DOCUMENT_CONFLICTS,
                                         case_id=case_id)
        is_applicant = (id_type, id_hash) == (row["applicant_id_type"],
                                              row["applicant_id_hash"])
        if found["holder_id_masked"] is not None:  # the holder's newest material
            name, masked = found["holder_name"], found["holder_id_masked"]
        else:
            name, masked = row["applicant_name"], row["applicant_id_masked"]
        total = found["total_documents"]
        conflicts += found["conflicts_total"]
        avoidable += found["avoidable_in_case"]
        shown.append(Entry("holder.documents", holder_target(id_type, id_hash),
                            "ok" if total else "not_found", f"on the case card of {case_id}"))
        out_holders.append({
            "holder": {"id_type": id_type, "id_masked": masked, "name": name},
            "is_applicant": is_applicant, "total_documents": total,
            "documents": [present.card_document_out(d, row, today)
                          for d in found["documents"]]})
    audit.many(shown)
    return {"case": present.screen_case_out(row, t, calendar), "holders": out_holders,
            "conflicts": conflicts, "avoidable_submissions": avoidable}


@router.post("/search", response_model=SearchOut, tags=["counter screen"],
             summary="Find cases by case number or by the applicant's ID number (in the body)")
def search(body: SearchQuery, who: CaseReader, audit: Auditor, limits: SearchLimits, c: Conn,
           t: Now, calendar: Calendar, protector: Protector) -> dict[str, Any]:
    q = body.q.strip()
    row = queries.get_case(c, q, tasks_limit=present.LIST_TASKS) if q else None
    if row is not None:
        audit("search", q, "ok", "case number")
        return {"match": "case", "items": [present.screen_case_out(row, t, calendar)]}
    number = normalise_number(q)
    if not number:
        audit("search", None, "not_found")
        return {"match": "none", "items": []}
    spend_search(limits, who, audit)
    id_hash = protector.hash(number)
    rows = queries.cases_by_applicant_hash(c, id_hash, ID_TYPES, limit=50,
                                           tasks_limit=present.LIST_TASKS)
    audit("search", holder_target("ANY", id_hash), "ok" if rows else "not_found",
          f"{len(rows)} cases")
    return {"match": "applicant" if rows else "none",
            "items": [present.screen_case_out(r, t, calendar) for r in rows]}


@router.get("/board", response_model=BoardOut, tags=["counter screen"],
            summary="Cases a counter window accepted on a day (today by default)")
def board(_who: BoardReader, audit: Auditor, c: Conn, t: Now, calendar: Calendar,
          window_id: Annotated[str | None, Query(max_length=64)] = None,
          day: Annotated[IsoDay | None, Query(alias="date", ge=FIRST_DAY, le=LAST_DAY)] = None
          ) -> dict[str, Any]:
    today = local_date(t)
    d = day or today
    start, end = _day_bounds(d)
    windows = queries.window_counts(c, start, end)
    # tasks counted, not listed (BoardCaseOut): the board's size is bounded per case
    rows = queries.accepted_between(c, start, end, window_id=window_id or None,
                                    tasks_limit=0)
    latest = queries.latest_acceptance(c)
    audit("board.read", window_id, "ok", f"{d.isoformat()}: {len(rows)} cases")
    return {"date": d.isoformat(), "today": today.isoformat(), "window_id": window_id,
            "windows": [{"window_id": w, "accepted": n} for w, n in windows],
            "latest_accepted_on": None if latest is None else local_date(latest).isoformat(),
            "items": [present.screen_case_out(r, t, calendar) for r in rows]}


@router.get("/departments", response_model=list[DepartmentOut], tags=["counter screen"],
            summary="The department registry (codes and names)")
def departments(_who: SignedIn, registry: Departments) -> list[dict[str, str]]:
    return [{"code": d.code, "name": d.name, "name_en": d.name_en, "role": d.role}
            for d in registry.departments]


@router.post("/lookup", response_model=LookupOut, tags=["progress lookup"],
             responses={429: {"model": ErrorOut}},
             summary="办件进度查询: case number and the query code of the receipt")
def lookup(body: LookupQuery, request: Request, c: Conn, t: Now, calendar: Calendar,
           protector: Protector, limits: SearchLimits, registry: Departments
           ) -> dict[str, Any]:
    """Public. A wrong code answers exactly like an unknown case (404, same text); at most
    a few lookups a minute per client address and a few failures an hour per case."""
    client = client_address(request)
    case_id = body.case_id.strip()
    audit = AuditTrail(request, CITIZEN)
    if limits.lookup_case.exhausted(case_id):
        audit("lookup", case_id, "limited")
        raise HTTPException(429, "too many lookups of this case; try again later",
                            headers={"Retry-After": str(limits.lookup_case.retry_after(case_id))})
    if not limits.lookup_client.allow(client):
        audit("lookup", case_id, "limited")
        raise HTTPException(429, "too many lookups; try again later",
                            headers={"Retry-After": str(limits.lookup_client.retry_after(client))})
    row = queries.get_case(c, case_id, tasks_limit=present.CASE_TASKS)
    ok = receipt.matches(protector.digest, case_id, body.query_code)
    if not ok or row is None:
        limits.lookup_case.hit(case_id)
        audit("lookup", case_id, "not_found")
        raise HTTPException(404, NOT_FOUND)
    audit("lookup", case_id)
    steps = queries.timeline(c, row["case_id"], limit=200)
    return present.lookup_out(row, steps, t, calendar, registry)


@router.get("/cases/{case_id}/receipt", response_class=HTMLResponse, tags=["counter screen"],
            summary="The printable acceptance receipt, with the query code for the lookup")
def case_receipt(case_id: str, request: Request, _who: CaseReader, audit: Auditor, c: Conn,
                 t: Now, calendar: Calendar, protector: Protector) -> HTMLResponse:
    row = queries.get_case(c, case_id, tasks_limit=present.CASE_TASKS)
    audit("case.receipt", case_id, "ok" if row else "not_found")
    if row is None:
        raise HTTPException(404, f"case {case_id!r} is not in the read model")
    view = present.case_out(row, t, calendar)
    code = receipt.query_code(protector.digest, row["case_id"])
    lookup_url = str(request.url_for("progress_lookup"))
    return HTMLResponse(receipt_page.render(view, code, lookup_url), headers=PAGE_HEADERS)
