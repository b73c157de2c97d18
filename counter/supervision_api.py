"""The supervisor view's numbers (``/supervision``, role supervisor) and the home page's
(``/api/home``, every clerk), read from the read model by
:mod:`onewindow.read_model.supervision` (docs/supervisor.md defines each figure).

Every dataset of the view is one ``GET /api/supervision/<dataset>`` over a period and
optional filters (``from``, ``to``: Asia/Shanghai days, both included, at most 366 days,
by default the 30 days to today; ``department``: a registry code; ``service_code``),
answered as a table: ``columns`` and ``rows`` (what the chart draws and its table
shows), or with ``format=csv`` as a CSV file of the same table (UTF-8 with a byte-order
mark, so a spreadsheet reads the Chinese names; a text cell that a spreadsheet would
take for a formula is prefixed with ``'``). A bad parameter (a malformed or reversed
period, one over 366 days, an unknown department) is a 422 naming it, never a 500.

Every answer is a read in the access log (``supervision.read``, the dataset and the
scope; ``home.read``), as every other staff read is.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from counter import present
from counter.auth import Auditor, require
from counter.dependencies import ERRORS, Calendar, Conn, Departments, IsoDay, Now, Offset
from counter.schemas import BoardCaseOut, ErrorOut
from onewindow.domain.access import Permission, Principal
from onewindow.domain.calendar import WorkingCalendar
from onewindow.domain.deadline import local_date
from onewindow.domain.limits import MAX_CODE_CHARS
from onewindow.read_model import supervision
from onewindow.read_model.supervision import Scope

__all__ = ["DATASETS", "router"]

#: the longest period (days): a year, and the 29th of February
MAX_DAYS = 366
#: the period when none is given: the 30 days to today
DEFAULT_DAYS = 30
#: the days a period may name (domain.md section 2: nothing happened before 2000)
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)

#: dataset -> its columns, in order (docs/supervisor.md says what each one means)
DATASETS: dict[str, tuple[str, ...]] = {
    "cases": ("day", "accepted", "closed", "approved", "partially_approved", "rejected",
              "withdrawn", "open_at_end"),
    "open-cases": ("status", "cases"),
    "sla": ("day", "on_track", "due_soon", "overdue", "paused", "on_time", "late"),
    "decision-times": ("department", "decided", "active_median_h", "active_p90_h",
                       "elapsed_median_h", "elapsed_p90_h", "paused_tasks",
                       "paused_median_h", "paused_p90_h"),
    "avoidable": ("department", "material_type", "submissions", "avoidable", "share",
                  "pages", "avoidable_pages"),
    "resubmitted": ("material_type", "name", "avoidable", "pages", "holders",
                    "departments"),
    "conflicts": ("found_at", "material_type", "document_number", "case_a", "department_a",
                  "name_a", "case_b", "department_b", "name_b", "differing_fields",
                  "holders_differ", "material_a", "material_b"),
    "dead-letters": ("department", "reason", "dead_letters"),
    "services": ("service_code", "service_name", "cases"),
}

router = APIRouter(prefix="/api", responses=ERRORS | {403: {"model": ErrorOut}})

Supervisor = Annotated[Principal, Depends(require(Permission.READ_BOARD))]
CaseReader = Annotated[Principal, Depends(require(Permission.READ_CASES))]


def _invalid(param: str, msg: str) -> RequestValidationError:
    """A 422 naming ``param`` (the app's handler answers ``invalid_request``)."""
    return RequestValidationError([{"loc": ("query", param), "msg": msg,
                                    "type": "value_error"}])


def _scope(t: Now, registry: Departments,
           first: Annotated[IsoDay | None, Query(
               alias="from", ge=FIRST_DAY, le=LAST_DAY,
               description="first day (YYYY-MM-DD, Asia/Shanghai); default: 29 days "
                           "before `to`")] = None,
           last: Annotated[IsoDay | None, Query(
               alias="to", ge=FIRST_DAY, le=LAST_DAY,
               description="last day, included; default: today")] = None,
           department: Annotated[str | None, Query(
               max_length=32, description="a department code of the registry")] = None,
           service_code: Annotated[str | None, Query(
               min_length=1, max_length=MAX_CODE_CHARS,
               description="a service's code (事项编码), matched as it is written: any "
                           "code a CaseAccepted may carry (domain.md gives it no format; "
                           "docs/supervisor.md)")] = None) -> Scope:
    last = last or (local_date(t) if first is None else
                    min(first + timedelta(days=DEFAULT_DAYS - 1), local_date(t)))
    # a default never reaches before the first day a period may name (a newcomer's
    # finding: `?to=2000-01-05` alone answered for a period from 1999-12-07)
    first = first or max(FIRST_DAY, last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise _invalid("from", "`from` is after `to`")
    if (last - first).days + 1 > MAX_DAYS:
        raise _invalid("to", f"a period is at most {MAX_DAYS} days")
    if department is not None and department not in registry.codes:
        raise _invalid("department", "not a department of the registry")
    if service_code is not None and "\x00" in service_code:  # PostgreSQL text holds none
        raise _invalid("service_code", "holds a NUL character: no stored code does (the "
                                       "sink stores an event's NUL as U+FFFD)")
    return Scope(first, last, department or None, service_code or None)


Period = Annotated[Scope, Depends(_scope)]
Format = Annotated[Literal["json", "csv"], Query(
    alias="format", description="json (the table with its scope) or csv (the same table as a file)")]


class ScopeOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    first: str = Field(alias="from", description="first day (Asia/Shanghai)")
    last: str = Field(alias="to", description="last day, included")
    today: str
    department: str | None
    service_code: str | None


class TableOut(BaseModel):
    """One dataset of the supervisor view: its rows, each with every column."""

    dataset: str
    scope: ScopeOut
    columns: list[str]
    rows: list[dict[str, Any]]


class ConflictsOut(TableOut):
    total: int = Field(description="conflicts in the scope, listed or not")
    limit: int
    offset: int
    next_offset: int | None


class HomeFigures(BaseModel):
    accepted: int = Field(description="cases accepted today, every window")
    closed: int
    open: int = Field(description="open cases now (accepted, not closed)")
    overdue: int
    due_soon: int
    paused: int
    avoidable: int = Field(description="submissions today of a document already on file")
    conflicts: int = Field(description="conflicts found today")
    dead_letters: int | None = Field(description="records dead-lettered today; null for "
                                                 "a user who may not read dead letters")
    window_accepted: int | None = Field(description="accepted today at the user's window")
    window_open: int | None = Field(description="open cases accepted at the user's window")


class HomeOut(BaseModel):
    today: str
    window_id: str | None = Field(description="the signed-in user's counter window "
                                              "(null: none, the cases are every window's)")
    figures: HomeFigures
    cases: list[BoardCaseOut] = Field(description="the window's latest cases, newest first")


def _cell(value: Any) -> Any:
    """A value as JSON shows it: days and instants as ISO text (Asia/Shanghai)."""
    if isinstance(value, datetime):
        return present.ts(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # not a formula in a spreadsheet (OWASP, CSV injection)
    return value


def _csv(dataset: str, scope: Scope, columns: Sequence[str],
         rows: Sequence[dict[str, Any]]) -> Response:
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_csv_cell(r.get(c)) for c in columns])
    name = f"supervision-{dataset}-{scope.first.isoformat()}-{scope.last.isoformat()}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _detail(scope: Scope, fmt: str, n: int) -> str:
    return (f"{scope.first.isoformat()}..{scope.last.isoformat()}"
            f" department={scope.department or '*'} service={scope.service_code or '*'}"
            f" format={fmt} rows={n}")


def _answer(dataset: str, scope: Scope, now: datetime, rows: list[dict[str, Any]],
            fmt: str, audit: Auditor, **extra: Any) -> Any:
    columns = DATASETS[dataset]
    rows = [{c: _cell(r.get(c)) for c in columns} for r in rows]
    audit("supervision.read", dataset, "ok", _detail(scope, fmt, len(rows)))
    if fmt == "csv":
        return _csv(dataset, scope, columns, rows)
    return {"dataset": dataset,
            "scope": {"from": scope.first.isoformat(), "to": scope.last.isoformat(),
                      "today": local_date(now).isoformat(), "department": scope.department,
                      "service_code": scope.service_code},
            "columns": list(columns), "rows": rows, **extra}


Query_ = Callable[[Connection, Scope, datetime, WorkingCalendar], list[dict[str, Any]]]
_CSV = {200: {"content": {"text/csv": {}},
              "description": "the table (format=json), or the same as CSV (format=csv)"}}


def _route(dataset: str, summary: str, query: Query_) -> None:
    """``GET /api/supervision/<dataset>``: the rows ``query`` gives for the scope."""

    def read(_who: Supervisor, audit: Auditor, c: Conn, t: Now, calendar: Calendar,
             scope: Period, fmt: Format = "json") -> Any:
        return _answer(dataset, scope, t, query(c, scope, t, calendar), fmt, audit)

    read.__name__ = f"supervision_{dataset.replace('-', '_')}"
    router.add_api_route(f"/supervision/{dataset}", read, methods=["GET"],
                         response_model=TableOut, responses=_CSV, summary=summary,
                         tags=["supervisor view"])


_route("cases", "Cases accepted, closed (by closing status) and open, per day",
       lambda c, s, t, _cal: supervision.case_flow(c, s, t))
_route("open-cases", "Cases accepted in the period and open now, by status",
       lambda c, s, _t, _cal: supervision.open_by_status(c, s))
_route("sla", "SLA trend: open cases by SLA status at each day's end, closures on time or late",
       supervision.sla_trend)
_route("decision-times", "Each department's time from receipt to decision, pauses apart",
       lambda c, s, _t, _cal: supervision.decision_times(c, s))
_route("avoidable", "Avoidable submissions by department and material type",
       lambda c, s, _t, _cal: supervision.avoidable_submissions(c, s))
_route("resubmitted", "The documents most often handed in again (top 10)",
       lambda c, s, _t, _cal: supervision.resubmitted_documents(c, s))
_route("dead-letters", "Dead letters by department and reason",
       lambda c, s, _t, _cal: supervision.dead_letter_counts(c, s))
_route("services", "The services of the period's cases (the choices of the service filter)",
       lambda c, s, _t, _cal: supervision.services(c, s))


@router.get("/supervision/conflicts", response_model=ConflictsOut, responses=_CSV,
            tags=["supervisor view"],
            summary="Conflicts found in the period (the same certificate told two ways)")
def supervision_conflicts(_who: Supervisor, audit: Auditor, c: Conn, t: Now, scope: Period,
                          fmt: Format = "json",
                          limit: Annotated[int, Query(ge=1, le=500)] = 50,
                          offset: Offset = 0) -> Any:
    """Newest first, paged; ``format=csv`` gives the page asked for (``limit`` up to
    500)."""
    rows, total = supervision.conflict_list(c, scope, limit=limit, offset=offset)
    for r in rows:
        r["differing_fields"] = json.loads(r["differing_fields"] or "[]")
    nxt = offset + limit if offset + limit < total else None
    return _answer("conflicts", scope, t, rows, fmt, audit, total=total, limit=limit,
                   offset=offset, next_offset=nxt)


@router.get("/home", response_model=HomeOut, tags=["counter screen"],
            summary="The home page: today's figures and the latest cases of your window")
def home(who: CaseReader, audit: Auditor, c: Conn, t: Now, calendar: Calendar,
         limit: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, Any]:
    """Today's figures (Asia/Shanghai) centre-wide and at the signed-in user's window
    (``window_id`` of the local user store or of the identity provider's claim), and the
    window's latest cases; every window's when the user has none."""
    window = who.window_id
    figures = supervision.today_figures(c, t, calendar, window)
    figures.setdefault("window_accepted", None)
    figures.setdefault("window_open", None)
    if not who.may(Permission.READ_DEAD_LETTERS):  # a clerk: not even the count
        figures["dead_letters"] = None
    rows = supervision.window_cases(c, t, window, limit=limit)
    audit("home.read", window, "ok", f"{len(rows)} cases")
    return {"today": local_date(t).isoformat(), "window_id": window, "figures": figures,
            "cases": [present.screen_case_out(r, t, calendar) for r in rows]}
