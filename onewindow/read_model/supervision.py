"""The supervisor's picture: read-only aggregate queries of the read model behind the
counter app's supervisor view (``/supervision``) and its home page (issue 16).
docs/supervisor.md defines every figure; where domain.md is silent the choices are
written there.

Every function takes an open ``Connection`` and returns plain values (rows as dicts,
instants as aware UTC datetimes, days as ``datetime.date``); presentation is the
caller's. The same SQLAlchemy Core runs on SQLite and PostgreSQL: the two expressions
they spell differently are :mod:`onewindow.read_model.dialect`'s; medians and 90th
percentiles are taken in SQL by running counts (window functions, both databases) over
the decision-time summary the sink keeps (``task_decisions``, ``sinks.decisions``), so
no query brings a row per case or per task back to Python. The SLA trend alone is
finished in Python, from cases grouped by the days and deadline they share.

A :class:`Scope` is the period (Asia/Shanghai days, both ends included) and optional
filters: a department (the cases with a task of that department; its own tasks,
materials and dead letters) and a service (事项编码).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
)

from onewindow.domain.calendar import WorkingCalendar
from onewindow.domain.deadline import SHANGHAI, local_date, next_working_day
from onewindow.domain.decision_time import DECISIONS
from onewindow.read_model import queries
from onewindow.read_model.dialect import first_day_ending_after, local_day
from onewindow.read_model.tables import CASES, DEAD, LINKS, MATERIALS, TASK_DECISIONS, TASKS

__all__ = [
    "CASE_CLOSED_STATUSES",
    "DECISIONS",
    "SLA_STATES",
    "Scope",
    "avoidable_submissions",
    "case_flow",
    "conflict_list",
    "dead_letter_counts",
    "decision_times",
    "local_midnight",
    "open_by_status",
    "resubmitted_documents",
    "services",
    "sla_trend",
    "today_figures",
    "window_cases",
]

#: the closing statuses of a case (domain.md section 3, rules 1 and 4), in chart order
CASE_CLOSED_STATUSES = ("APPROVED", "PARTIALLY_APPROVED", "REJECTED", "WITHDRAWN")
#: the states of the SLA trend: open cases at the end of a day, cases closed that day
SLA_STATES = ("ON_TRACK", "DUE_SOON", "OVERDUE", "PAUSED", "ON_TIME", "LATE")
_OPEN_STATES = ("ON_TRACK", "DUE_SOON", "OVERDUE", "PAUSED")
_DAY = timedelta(days=1)


def local_midnight(d: date) -> datetime:
    """The first instant of the Asia/Shanghai day ``d``, in UTC."""
    return datetime.combine(d, time(0), SHANGHAI).astimezone(UTC)


@dataclass(frozen=True)
class Scope:
    """What a supervisor looks at: the days ``first`` to ``last`` (Asia/Shanghai, both
    included) and optional filters. ``department``: a registry code; ``service_code``:
    a service's 事项编码 (``cases.service_code``)."""

    first: date
    last: date
    department: str | None = None
    service_code: str | None = None

    @property
    def start(self) -> datetime:
        """The period's first instant (UTC)."""
        return local_midnight(self.first)

    @property
    def end(self) -> datetime:
        """The instant after the period (UTC): midnight after ``last``."""
        return local_midnight(self.last + _DAY)

    def days(self, until: date | None = None) -> list[date]:
        """The days of the period, up to ``until`` (today: no trend point in the
        future)."""
        last = self.last if until is None else min(self.last, until)
        return [self.first + timedelta(days=i) for i in range((last - self.first).days + 1)]


def _case_filters(scope: Scope, case_id: ColumnElement[Any] | None = None
                  ) -> list[ColumnElement[bool]]:
    """The scope's filters on cases (or on rows carrying a ``case_id``): the service,
    and a task of the department."""
    out: list[ColumnElement[bool]] = []
    if case_id is None:
        if scope.service_code is not None:
            out.append(CASES.c.service_code == scope.service_code)
        case_id = CASES.c.case_id
    elif scope.service_code is not None:
        out.append(exists().where(and_(CASES.c.case_id == case_id,
                                       CASES.c.service_code == scope.service_code)))
    if scope.department is not None:
        out.append(exists().where(and_(TASKS.c.case_id == case_id,
                                       TASKS.c.department == scope.department)))
    return out


def _within(instant: ColumnElement[Any], scope: Scope, now: datetime
            ) -> list[ColumnElement[bool]]:
    """``instant`` in the period and not after ``now`` (today counts what happened so
    far: the open cases at ``now`` are those not closed by then)."""
    return [instant >= scope.start, instant < scope.end, instant <= now]


def _count_by_day(conn: Connection, q: Any) -> dict[date, int]:
    return {d: int(n) for d, n in conn.execute(q)}


# ------------------------------------------------------------------------ cases


def case_flow(conn: Connection, scope: Scope, now: datetime) -> list[dict[str, Any]]:
    """One row per day of the period up to today: ``day``, ``accepted`` (cases whose
    acceptance record is of that day), ``closed`` and the closed by closing status
    (``approved``, ``partially_approved``, ``rejected``, ``withdrawn``: cases whose
    ``closed_at`` is of that day), and ``open_at_end``: the cases accepted and not
    closed at the end of the day (at ``now`` for today)."""
    days = scope.days(local_date(now))
    if not days:
        return []
    where = _case_filters(scope)
    acc_day = local_day(CASES.c.accepted_at)
    accepted = _count_by_day(conn, select(acc_day, func.count()).where(
        *_within(CASES.c.accepted_at, scope, now), *where).group_by(acc_day))
    closed_day = local_day(CASES.c.closed_at)
    closed: dict[date, dict[str, int]] = {}
    for d, status, n in conn.execute(select(closed_day, CASES.c.status, func.count()).where(
            *_within(CASES.c.closed_at, scope, now),
            CASES.c.accepted_at.is_not(None), CASES.c.accepted_at <= CASES.c.closed_at, *where
    ).group_by(closed_day, CASES.c.status)):
        closed.setdefault(d, {})[status] = int(n)
    # open when the period starts: accepted before it, not closed before it (two counts,
    # each a range of the index on (closed_at, accepted_at))
    open_now = sum(int(conn.execute(select(func.count()).select_from(CASES).where(
        CASES.c.accepted_at < scope.start, still_open, *where)).scalar_one())
        for still_open in (CASES.c.closed_at.is_(None), CASES.c.closed_at >= scope.start))
    rows = []
    for d in days:
        by_status = closed.get(d, {})
        n_closed = sum(by_status.values())
        open_now += accepted.get(d, 0) - n_closed
        rows.append({"day": d, "accepted": accepted.get(d, 0), "closed": n_closed,
                     **{s.lower(): by_status.get(s, 0) for s in CASE_CLOSED_STATUSES},
                     "open_at_end": open_now})
    return rows


def open_by_status(conn: Connection, scope: Scope) -> list[dict[str, Any]]:
    """The cases accepted in the period that are open now, by their status now (the
    statuses of domain.md section 3, most first)."""
    q = (select(CASES.c.status, func.count().label("n"))
         .where(CASES.c.accepted_at >= scope.start, CASES.c.accepted_at < scope.end,
                CASES.c.closed_at.is_(None), *_case_filters(scope))
         .group_by(CASES.c.status).order_by(func.count().desc(), CASES.c.status))
    return [{"status": s, "cases": int(n)} for s, n in conn.execute(q)]


# ------------------------------------------------------------------------ SLA trend


@lru_cache(maxsize=4096)
def _due_soon_from(due_date: date, calendar: WorkingCalendar) -> date:
    """The first day ``d`` on which a case due on ``due_date`` is DUE_SOON: ``due_date
    <= next_working_day(d)`` (domain.md section 4, as ``deadline.sla_status`` reads it),
    which holds from some day on, since ``next_working_day`` never decreases."""
    d = due_date - _DAY  # next_working_day(d) > d, so this day already holds
    for _ in range(400):
        if next_working_day(d - _DAY, calendar) < due_date:
            return d
        d -= _DAY
    return d


def sla_trend(conn: Connection, scope: Scope, now: datetime,
              calendar: WorkingCalendar) -> list[dict[str, Any]]:
    """One row per day of the period up to today: the open cases at the end of the day
    (at ``now`` for today) by SLA status (``on_track``, ``due_soon``, ``overdue``,
    ``paused``), and the cases closed that day ``on_time`` or ``late``
    (``onewindow.domain.deadline.sla_status`` at that instant).

    Judged against each case's deadline as it stands now: a pause that ended later has
    moved it already (domain.md section 4), so a past day of such a case may count as on
    track where the screen showed it due soon then. A case paused now counts as
    ``paused`` from the start of its open pause; before it, it has no deadline to judge
    against and is not counted (as ``sla_status`` says ``None``).

    How: the past days from the cases grouped by the days that matter (accepted, closed,
    paused, first overdue) and their due date, each group's days of each status added
    as intervals (difference arrays); today from a count at ``now`` in SQL."""
    today = local_date(now)
    days = scope.days(today)
    if not days:
        return []
    index = {d: i for i, d in enumerate(days)}
    counts = {s: [0] * (len(days) + 1) for s in SLA_STATES}  # difference arrays
    first, last = days[0], days[-1]
    where = _case_filters(scope)
    c = CASES.c

    def add(state: str, lo: date, hi: date, n: int) -> None:
        lo, hi = max(lo, first), min(hi, last)
        if lo <= hi:
            counts[state][index[lo]] += n
            counts[state][index[hi] + 1] -= n

    past = min(last, today - _DAY)  # the days judged at their last millisecond
    if first <= past:
        keys = (local_day(c.accepted_at).label("a"), local_day(c.closed_at).label("c"),
                local_day(c.paused_since).label("p"),
                first_day_ending_after(c.due_at).label("o"), c.due_date.label("d"))
        # the cases open at some day's end: not closed, or closed in the period or after
        # (two ranges of the index on (closed_at, accepted_at), not every older case)
        overlapping = union_all(*[select(*keys).where(
            c.accepted_at.is_not(None), c.accepted_at < local_midnight(past + _DAY), still,
            *where) for still in (c.closed_at.is_(None), c.closed_at >= scope.start)]
        ).subquery("overlapping")
        k = overlapping.c
        groups = (select(k.a, k.c, k.p, k.o, k.d, func.count())
                  .group_by(k.a, k.c, k.p, k.o, k.d))
        for a_day, c_day, p_day, overdue, due_date, n in conn.execute(groups):
            n = int(n)
            hi = past if c_day is None else min(past, c_day - _DAY)  # open at these days' end
            if hi < a_day:
                continue
            if p_day is not None:
                add("PAUSED", p_day, hi, n)
                continue  # before its open pause: no deadline known now
            if overdue is None or due_date is None:
                continue
            soon = _due_soon_from(due_date, calendar)
            add("ON_TRACK", a_day, min(hi, soon - _DAY, overdue - _DAY), n)
            add("DUE_SOON", max(a_day, soon), min(hi, overdue - _DAY), n)
            add("OVERDUE", max(a_day, overdue), hi, n)
    if last == today:
        horizon = max(today, next_working_day(today, calendar))
        state = case((c.paused_since.is_not(None), "PAUSED"), (c.due_at < now, "OVERDUE"),
                     (c.due_date <= horizon, "DUE_SOON"), else_="ON_TRACK")
        for s, n in conn.execute(select(state, func.count()).where(
                c.accepted_at.is_not(None), c.accepted_at <= now,
                or_(c.closed_at.is_(None), c.closed_at > now),
                or_(c.paused_since.is_not(None),
                    and_(c.due_at.is_not(None), c.due_date.is_not(None))), *where
        ).group_by(state)):
            add(s, today, today, int(n))
    day = local_day(CASES.c.closed_at)
    late = case((CASES.c.closed_at > CASES.c.due_at, 1), else_=0)
    for d, is_late, n in conn.execute(select(day, late, func.count()).where(
            *_within(CASES.c.closed_at, scope, now),
            CASES.c.accepted_at.is_not(None), CASES.c.due_at.is_not(None), *where
    ).group_by(day, late)):
        add("LATE" if is_late else "ON_TIME", d, d, int(n))
    rows = []
    running = dict.fromkeys(SLA_STATES, 0)
    for i, d in enumerate(days):
        row: dict[str, Any] = {"day": d}
        for s in SLA_STATES:
            running[s] += counts[s][i]
            row[s.lower()] = running[s]
        rows.append(row)
    return rows


# ------------------------------------------------------------------------ decision times


def _percentile_rank(n: ColumnElement[Any], tenths: int) -> ColumnElement[Any]:
    """The nearest rank of the ``tenths``/10 percentile among ``n`` values:
    ``ceil(tenths * n / 10)``, in integer arithmetic (both databases divide integers
    to an integer)."""
    return (tenths * n + 9) // 10


#: the decision-time figures, each a column of ``task_decisions`` (hours x 10)
_DECISION_FIGURES = ("active", "elapsed", "paused")


def decision_times(conn: Connection, scope: Scope) -> list[dict[str, Any]]:
    """Per department, its tasks decided (APPROVED or REJECTED) in the period: from the
    task's first event of its own department (its receipt, normally RECEIVED) to its
    decision, in hours: ``elapsed`` (all of it) and ``active`` (without the task's
    pauses), each as ``*_median_h`` and ``*_p90_h``; ``paused_tasks``, the tasks that
    paused at least once, and ``paused_median_h`` / ``paused_p90_h`` of their paused time
    (SUPPLEMENT_REQUESTED or SUSPENDED until the task's next event of neither status,
    domain.md section 4). Percentiles by nearest rank (``ceil(p * n)``-th of the sorted
    values). Events from another department (out of role) count for nothing, as in the
    fold. Departments with the most decisions first.

    Read from ``task_decisions``, the summary the sink keeps per decided task
    (``onewindow.domain.decision_time`` gives its rules): each figure's values, hours to
    a tenth, are counted per department in SQL (a few hundred distinct values a
    department, however many tasks), and the median and p90 are the first values whose
    running count reaches their rank. Rounding keeps the order of values, so these are
    the rounded percentiles of the exact durations."""
    d = TASK_DECISIONS.c
    where: list[ColumnElement[bool]] = [d.decided_at >= scope.start, d.decided_at < scope.end]
    if scope.department is not None:
        where.append(d.department == scope.department)
    if scope.service_code is not None:
        where.append(d.service_code == scope.service_code)

    def counted(figure: str) -> Any:
        value = d[f"{figure}_tenths"]
        return (select(literal(figure).label("figure"), d.department, value.label("v"),
                       func.count().label("n"))
                .where(*where, value.is_not(None)).group_by(d.department, value))

    counts = union_all(*(counted(f) for f in _DECISION_FIGURES)).subquery("counts")
    c = counts.c
    group = (c.figure, c.department)
    running = select(
        c.figure, c.department, c.v,
        cast(func.sum(c.n).over(partition_by=group, order_by=c.v), BigInteger).label("upto"),
        cast(func.sum(c.n).over(partition_by=group), BigInteger).label("total"),
    ).subquery("running")
    r = running.c
    q = (select(r.figure, r.department, func.max(r.total),
                func.min(case((r.upto >= _percentile_rank(r.total, 5), r.v))),
                func.min(case((r.upto >= _percentile_rank(r.total, 9), r.v))))
         .group_by(r.figure, r.department))
    figures: dict[str, dict[str, tuple[int, int, int]]] = {}
    for figure, dept, n, p50, p90 in conn.execute(q):
        figures.setdefault(dept, {})[figure] = (int(n), p50, p90)
    out = []
    for dept, f in figures.items():
        n, a50, a90 = f["active"]
        _n, e50, e90 = f["elapsed"]
        n_paused, p50, p90 = f.get("paused", (0, None, None))
        out.append({"department": dept, "decided": n,
                    "active_median_h": _tenths(a50), "active_p90_h": _tenths(a90),
                    "elapsed_median_h": _tenths(e50), "elapsed_p90_h": _tenths(e90),
                    "paused_tasks": n_paused,
                    "paused_median_h": _tenths(p50), "paused_p90_h": _tenths(p90)})
    out.sort(key=lambda row: (-row["decided"], row["department"]))
    return out


def _tenths(value: Any) -> float | None:
    """Tenths of an hour as hours (``None`` stays ``None``)."""
    return None if value is None else int(value) / 10


# ------------------------------------------------------------------------ materials


def _submissions(scope: Scope) -> list[ColumnElement[bool]]:
    m = MATERIALS
    where = [m.c.kind == "MaterialSubmitted", m.c.occurred_at >= scope.start,
             m.c.occurred_at < scope.end]
    if scope.department is not None:
        where.append(m.c.department == scope.department)
    if scope.service_code is not None:
        where.append(exists().where(and_(CASES.c.case_id == m.c.case_id,
                                         CASES.c.service_code == scope.service_code)))
    return where


def avoidable_submissions(conn: Connection, scope: Scope) -> list[dict[str, Any]]:
    """Per department and material type, the MaterialSubmitted of the period (by
    ``occurred_at``): ``submissions``, ``avoidable`` (a document already on file: an
    EXACT or SAME_DOCUMENT link to an earlier material of the same holder, domain.md
    section 5), ``share`` (avoidable / submissions), ``pages`` and ``avoidable_pages``
    (pages as declared; a material without ``pages`` counts none). Most avoidable
    first."""
    m = MATERIALS
    avoid = m.c.avoidable.is_(True)
    pages = func.coalesce(m.c.pages, 0)
    n_avoid = func.sum(case((avoid, 1), else_=0))
    q = (select(m.c.department, m.c.material_type, func.count(), n_avoid,
                func.sum(pages), func.sum(case((avoid, pages), else_=0)))
         .where(*_submissions(scope))
         .group_by(m.c.department, m.c.material_type)
         .order_by(n_avoid.desc(), func.count().desc(), m.c.department, m.c.material_type))
    out = []
    for dep, mtype, n, n_av, pg, pg_av in conn.execute(q):
        n, n_av = int(n), int(n_av or 0)
        out.append({"department": dep, "material_type": mtype, "submissions": n,
                    "avoidable": n_av, "share": round(n_av / n, 4) if n else 0.0,
                    "pages": int(pg or 0), "avoidable_pages": int(pg_av or 0)})
    return out


def resubmitted_documents(conn: Connection, scope: Scope, limit: int = 10
                          ) -> list[dict[str, Any]]:
    """The documents most often handed in again in the period: the avoidable
    submissions grouped by material type and the name the department gave the material
    (``申请人身份证``, ``营业执照``): ``avoidable``, ``pages``, ``holders`` (distinct
    holders who handed one in again) and ``departments`` (distinct departments that
    took one). At most ``limit`` rows, most first."""
    m = MATERIALS
    n = func.count()
    q = (select(m.c.material_type, m.c.name, n, func.sum(func.coalesce(m.c.pages, 0)),
                func.count(m.c.holder_id_hash.distinct()),
                func.count(m.c.department.distinct()))
         .where(*_submissions(scope), m.c.avoidable.is_(True))
         .group_by(m.c.material_type, m.c.name)
         .order_by(n.desc(), m.c.material_type, m.c.name).limit(limit))
    return [{"material_type": t, "name": name, "avoidable": int(k), "pages": int(p or 0),
             "holders": int(h), "departments": int(d)}
            for t, name, k, p, h, d in conn.execute(q)]


def conflict_list(conn: Connection, scope: Scope, *, limit: int = 50, offset: int = 0
                  ) -> tuple[list[dict[str, Any]], int]:
    """CONFLICT links found in the period (``found_at``: the same certificate told two
    ways, domain.md section 5), newest first, and how many there are in all. Each with
    both materials' type, name, department and case, the document number (as stored:
    ``document_number`` when it is no ID number, else its mask), the declared fields
    that differ and whether the holders differ. With a department: either side's; with
    a service: either case's."""
    lk = LINKS
    a, b = MATERIALS.alias("ma"), MATERIALS.alias("mb")
    where: list[ColumnElement[bool]] = [lk.c.verdict == "CONFLICT", lk.c.found_at >= scope.start,
                                        lk.c.found_at < scope.end]
    if scope.department is not None:
        # each side looked up in ``materials (department, material_id)`` (the index alone,
        # not the material's row): a year's count of one department's conflicts reads the
        # links and that index
        m = MATERIALS.c
        where.append(or_(*[exists().where(m.department == scope.department,
                                          m.material_id == side)
                           for side in (lk.c.material_a, lk.c.material_b)]))
    if scope.service_code is not None:
        where.append(or_(*[exists().where(and_(CASES.c.case_id == c,
                                                CASES.c.service_code == scope.service_code))
                           for c in (lk.c.case_a, lk.c.case_b)]))
    # counted from the links alone: each side joins at most one material (its key)
    total = int(conn.execute(select(func.count()).select_from(lk).where(*where)).scalar_one())
    joined = (lk.outerjoin(a, a.c.material_id == lk.c.material_a)
              .outerjoin(b, b.c.material_id == lk.c.material_b))
    q = (select(lk.c.found_at, lk.c.material_a, lk.c.material_b, lk.c.case_a, lk.c.case_b,
                lk.c.differing_fields, lk.c.holders_differ,
                func.coalesce(a.c.material_type, b.c.material_type).label("material_type"),
                a.c.name.label("name_a"), b.c.name.label("name_b"),
                a.c.department.label("department_a"), b.c.department.label("department_b"),
                func.coalesce(a.c.document_number, a.c.document_number_masked,
                              b.c.document_number, b.c.document_number_masked
                              ).label("document_number"))
         .select_from(joined).where(*where)
         .order_by(lk.c.found_at.desc(), lk.c.material_a, lk.c.material_b)
         .limit(limit).offset(offset))
    return [dict(r) for r in conn.execute(q).mappings()], total


# ------------------------------------------------------------------------ dead letters


def dead_letter_counts(conn: Connection, scope: Scope) -> list[dict[str, Any]]:
    """Input records dead-lettered in the period (``dead_lettered_at``), per department
    (the owner of the topic the record came from; ``None`` when unknown) and reason
    (domain.md section 2), most first. The service filter does not apply: a record that
    was not applied belongs to no service."""
    d = DEAD
    n = func.count()
    q = (select(d.c.department, d.c.reason, n)
         .where(d.c.dead_lettered_at >= scope.start, d.c.dead_lettered_at < scope.end,
                *([d.c.department == scope.department] if scope.department else []))
         .group_by(d.c.department, d.c.reason)
         .order_by(n.desc(), d.c.department.nulls_last(), d.c.reason))
    return [{"department": dep, "reason": reason, "dead_letters": int(k)}
            for dep, reason, k in conn.execute(q)]


def services(conn: Connection, scope: Scope) -> list[dict[str, Any]]:
    """The services of the cases accepted in the period: ``service_code``,
    ``service_name`` (one of its names), ``cases``; most cases first (the choices of
    the view's service filter)."""
    n = func.count()
    q = (select(CASES.c.service_code, func.max(CASES.c.service_name), n)
         .where(CASES.c.accepted_at >= scope.start, CASES.c.accepted_at < scope.end,
                CASES.c.service_code.is_not(None))
         .group_by(CASES.c.service_code).order_by(n.desc(), CASES.c.service_code))
    return [{"service_code": c, "service_name": name, "cases": int(k)}
            for c, name, k in conn.execute(q)]


# ------------------------------------------------------------------------ home page


def today_figures(conn: Connection, now: datetime, calendar: WorkingCalendar,
                  window_id: str | None = None) -> dict[str, Any]:
    """The figures of today (Asia/Shanghai) at ``now``, centre-wide: ``accepted``,
    ``closed``, ``avoidable`` submissions, ``conflicts`` found, ``dead_letters``; the
    open cases now: ``open``, ``overdue``, ``due_soon``, ``paused`` (as ``sla_status``);
    and with a window: ``window_accepted``, ``window_open`` (cases accepted at that
    window, today / open now)."""
    today = local_date(now)
    start, end = local_midnight(today), local_midnight(today + _DAY)

    def count(table: Any, *where: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table).where(*where))
                   .scalar_one())

    c = CASES.c
    open_ = and_(c.closed_at.is_(None), c.accepted_at.is_not(None))
    running = and_(open_, c.paused_since.is_(None), c.due_at.is_not(None))
    horizon = max(today, next_working_day(today, calendar))
    out = {
        "accepted": count(CASES, c.accepted_at >= start, c.accepted_at < end),
        "closed": count(CASES, c.closed_at >= start, c.closed_at < end),
        "open": count(CASES, open_),
        "overdue": count(CASES, running, c.due_at < now),
        "due_soon": count(CASES, running, c.due_at >= now, c.due_date <= horizon),
        "paused": count(CASES, open_, c.paused_since.is_not(None)),
        "avoidable": count(MATERIALS, MATERIALS.c.avoidable.is_(True),
                           MATERIALS.c.kind == "MaterialSubmitted",
                           MATERIALS.c.occurred_at >= start, MATERIALS.c.occurred_at < end),
        "conflicts": count(LINKS, LINKS.c.verdict == "CONFLICT", LINKS.c.found_at >= start,
                           LINKS.c.found_at < end),
        "dead_letters": count(DEAD, DEAD.c.dead_lettered_at >= start,
                              DEAD.c.dead_lettered_at < end),
    }
    if window_id is not None:
        mine = c.window_id == window_id
        out["window_accepted"] = count(CASES, mine, c.accepted_at >= start,
                                       c.accepted_at < end)
        out["window_open"] = count(CASES, mine, c.closed_at.is_(None),
                                   c.accepted_at.is_not(None))
    return out


def window_cases(conn: Connection, now: datetime, window_id: str | None, *,
                 limit: int = 10) -> list[dict[str, Any]]:
    """The latest cases accepted at ``window_id`` (every window when ``None``) up to
    the end of today, newest first, with their tasks counted (not listed), as
    :func:`onewindow.read_model.queries.accepted_between` gives them."""
    end = local_midnight(local_date(now) + _DAY)
    return queries.accepted_between(conn, local_midnight(date(2000, 1, 1)), end,
                                    window_id=window_id, limit=limit, tasks_limit=0)

