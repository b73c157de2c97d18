"""Deadlines (承诺时限), pauses and SLA status: domain.md section 4.

Every date rule is in Asia/Shanghai. Functions take timezone-aware datetimes and
return UTC datetimes; the calendar is passed in (:mod:`onewindow.domain.calendar`).

Choices where the contract is silent (docs/state-rules.md):

* ``due_provisional`` is true when a date the computation *consulted* is unknown to
  the calendar or provisional. Consulted dates are the non-paused dates after ``A`` up
  to ``due_date`` for ``WORKING_DAY``; ``NATURAL_DAY`` and ``HOUR`` consult no calendar
  and ``N = 0`` consults nothing, so those are never provisional.
* A pause interval touching a date only counts (as a paused date) when it is closed;
  a pause that ends exactly at 00:00 still touches the date it ends on.
* ``HOUR`` follows the formula literally: every closed pause, clipped to start no
  earlier than ``accepted_at``, adds its (union) length, even one that began after
  the deadline had passed.
* :func:`sla_status` returns ``None`` when there is nothing to judge against: no
  acceptance record yet, or no ``due_at`` (a case closed, i.e. withdrawn, while a
  pause was still open). ``DUE_SOON`` covers every due date from today up to and
  including the next working day (so a natural-day case due on Saturday is ``DUE_SOON``
  on Friday).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from onewindow.domain.calendar import WorkingCalendar, consult
from onewindow.domain.events import PAUSING_STATUSES

__all__ = [
    "CALENDAR_FIELDS",
    "CLOSED_STATUSES",
    "DUE_SOON",
    "Deadline",
    "LATE",
    "ON_TIME",
    "ON_TRACK",
    "OVERDUE",
    "PAUSED",
    "SHANGHAI",
    "compute_deadline",
    "deadline_key",
    "deadline_moved",
    "due_by_hours",
    "due_by_natural_days",
    "due_by_working_days",
    "end_of_local_day",
    "local_date",
    "next_working_day",
    "pause_intervals",
    "paused_dates",
    "sla_status",
    "union_length",
    "working_days_left",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
_DAY = timedelta(days=1)

ON_TIME = "ON_TIME"
LATE = "LATE"
PAUSED = "PAUSED"
OVERDUE = "OVERDUE"
DUE_SOON = "DUE_SOON"
ON_TRACK = "ON_TRACK"

#: Case statuses with a ``closed_at``.
CLOSED_STATUSES = frozenset({"WITHDRAWN", "APPROVED", "REJECTED", "PARTIALLY_APPROVED"})

#: The fields of a case view (`onewindow.domain.case.project`) that the working-day
#: calendar decides: what a calendar change can move.
CALENDAR_FIELDS = ("due_date", "due_at", "due_provisional")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Deadline:
    due_date: date | None
    due_at: datetime | None
    due_provisional: bool
    paused_since: datetime | None


def local_date(instant: datetime) -> date:
    """The Asia/Shanghai calendar date of an aware datetime."""
    return instant.astimezone(SHANGHAI).date()


def end_of_local_day(d: date) -> datetime:
    """The last millisecond of ``d`` in Asia/Shanghai, as a UTC datetime."""
    return datetime.combine(d, time(23, 59, 59, 999000), SHANGHAI).astimezone(UTC)


def pause_intervals(task_events: Iterable[tuple[T, str]]) -> tuple[list[tuple[T, T]], T | None]:
    """A task's pauses from its ``(time, status)`` pairs, given in the task order.

    A pause starts at an event that sets SUPPLEMENT_REQUESTED or SUSPENDED and ends
    at the next event whose status is neither. Returns the closed ``(start, end)``
    intervals and the start of the open pause (``None`` when the task is not paused).
    """
    closed: list[tuple[T, T]] = []
    start: T | None = None
    paused = False
    for at, status in task_events:
        if status in PAUSING_STATUSES:
            if not paused:
                paused, start = True, at
        elif paused:
            closed.append((start, at))  # type: ignore[arg-type]
            paused, start = False, None
    return closed, start


def paused_dates(intervals: Iterable[tuple[datetime, datetime]]) -> set[date]:
    """Every Asia/Shanghai date a closed pause interval touches, both ends included."""
    dates: set[date] = set()
    for start, end in intervals:
        d, last = local_date(start), local_date(end)
        while d <= last:
            dates.add(d)
            d += _DAY
    return dates


def due_by_working_days(
    start: date, amount: int, paused: Collection[date], calendar: WorkingCalendar
) -> tuple[date, bool]:
    """``(due_date, provisional)``: the smallest working day ``d > start`` such that
    ``amount`` non-paused working days lie in ``(start, d]``; ``amount = 0`` gives ``start``.
    """
    d, left, provisional = start, amount, False
    while left > 0:
        d += _DAY
        if d in paused:
            continue
        working, unsure = consult(calendar, d)
        provisional = provisional or unsure
        if working:
            left -= 1
    return d, provisional


def due_by_natural_days(start: date, amount: int, paused: Collection[date]) -> date:
    """The ``amount``-th non-paused calendar date after ``start`` (``start`` itself for 0)."""
    d, left = start, amount
    while left > 0:
        d += _DAY
        if d not in paused:
            left -= 1
    return d


def union_length(intervals: Iterable[tuple[datetime, datetime]], since: datetime) -> timedelta:
    """Length of the union of the intervals, each clipped to begin no earlier than ``since``."""
    clipped = sorted((max(s, since), e) for s, e in intervals if e > since)
    total = timedelta(0)
    cur_s: datetime | None = None
    cur_e: datetime | None = None
    for s, e in clipped:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s  # type: ignore[operator]
            cur_s, cur_e = s, e
        elif e > cur_e:
            cur_e = e
    if cur_e is not None:
        total += cur_e - cur_s  # type: ignore[operator]
    return total


def due_by_hours(
    accepted_at: datetime, amount: int, intervals: Iterable[tuple[datetime, datetime]]
) -> datetime:
    """``accepted_at + amount hours + union of closed pauses from accepted_at on`` (UTC)."""
    due = accepted_at + timedelta(hours=amount) + union_length(intervals, accepted_at)
    return due.astimezone(UTC)


def compute_deadline(
    accepted_at: datetime,
    amount: int,
    unit: str,
    closed_pauses: Sequence[tuple[datetime, datetime]],
    open_pause_starts: Iterable[datetime],
    calendar: WorkingCalendar,
) -> Deadline:
    """The deadline of a case from its acceptance, promise and pauses (all tasks)."""
    opens = list(open_pause_starts)
    if opens:
        return Deadline(None, None, False, min(opens).astimezone(UTC))
    if unit == "HOUR":
        due_at = due_by_hours(accepted_at, amount, closed_pauses)
        return Deadline(local_date(due_at), due_at, False, None)
    start = local_date(accepted_at)
    paused = {d for d in paused_dates(closed_pauses) if d > start} if closed_pauses else set()
    if unit == "WORKING_DAY":
        due_date, provisional = due_by_working_days(start, amount, paused, calendar)
    elif unit == "NATURAL_DAY":
        due_date, provisional = due_by_natural_days(start, amount, paused), False
    else:
        raise ValueError(f"unknown promise unit {unit!r}")
    return Deadline(due_date, end_of_local_day(due_date), provisional, None)


def deadline_key(
    accepted_at: datetime,
    amount: int,
    unit: str,
    closed_pauses: Iterable[tuple[datetime, datetime]],
    open_pause_starts: Iterable[datetime],
) -> str | None:
    """What :func:`compute_deadline` asks the calendar about, as a key: two deadlines of
    one unit with equal keys, computed with one calendar, are equal. ``None`` for
    ``NATURAL_DAY`` and ``HOUR``, which consult no calendar (nothing a calendar change
    could move).

    For ``WORKING_DAY``: 16 hex characters (blake2b-64) of ``A`` (the Shanghai date of
    ``accepted_at``), ``N``, the paused dates after ``A`` (sorted) and whether a pause is
    open: exactly the inputs of :func:`due_by_working_days`, so a pause that moves no
    paused date keeps the key. The fold keeps it with the deadline a closed case closed
    with (`onewindow.domain.case.settle`, domain.md section 4: "closed cases keep the
    deadline they closed with"): a later event that changes the key changes the deadline
    by itself, not by the calendar.
    """
    if unit != "WORKING_DAY":
        return None
    start = local_date(accepted_at)
    paused = sorted(d.toordinal() for d in paused_dates(closed_pauses) if d > start)
    is_open = any(True for _ in open_pause_starts)
    text = f"{start.toordinal()}|{amount}|{','.join(map(str, paused))}|{int(is_open)}"
    return hashlib.blake2b(text.encode("ascii"), digest_size=8).hexdigest()


def next_working_day(d: date, calendar: WorkingCalendar) -> date:
    """The first working day after ``d`` (Monday to Friday where the calendar is unsure)."""
    nxt = d + _DAY
    for _ in range(366):
        if consult(calendar, nxt)[0]:
            return nxt
        nxt += _DAY
    return nxt  # a calendar without working days: give up after a year


def sla_status(view: Mapping[str, Any], now: datetime, calendar: WorkingCalendar) -> str | None:
    """SLA status of a projected case view (:func:`onewindow.domain.case.project`) at ``now``.

    Closed: ``ON_TIME`` if ``closed_at <= due_at`` else ``LATE``. Open: ``PAUSED`` while
    paused, ``OVERDUE`` if ``now > due_at``, ``DUE_SOON`` if ``due_date`` is today or no
    later than the next working day, else ``ON_TRACK``. ``None`` when there is no
    acceptance record or no deadline to judge against.
    """
    if view.get("accepted_at") is None:
        return None
    closed_at, due_at = view.get("closed_at"), view.get("due_at")
    if closed_at is not None:
        if due_at is None:
            return None
        return ON_TIME if closed_at <= due_at else LATE
    if view.get("paused_since") is not None:
        return PAUSED
    due_date = view.get("due_date")
    if due_at is None or due_date is None:
        return None
    if now > due_at:
        return OVERDUE
    today = local_date(now)
    if due_date <= today or due_date <= next_working_day(today, calendar):
        return DUE_SOON
    return ON_TRACK


def working_days_left(due_date: date, today: date, calendar: WorkingCalendar) -> int:
    """Working days left before ``due_date``, seen on ``today`` (both Asia/Shanghai dates).

    Positive: the working days ``w`` with ``today < w <= due_date`` (today itself is not
    counted, as the starting day is not counted for the deadline; a case due on the next
    working day has 1 left). ``0``: due today, or no working day left before a rest-day
    due date. Negative: overdue by the working days ``w`` with ``due_date < w <= today``
    (``-1`` on the first working day after the due date). Dates the calendar does not
    know count Monday to Friday, like the deadline itself.
    """
    if due_date >= today:
        lo, hi, sign = today, due_date, 1
    else:
        lo, hi, sign = due_date, today, -1
    n, d = 0, lo
    while d < hi:
        d += _DAY
        if consult(calendar, d)[0]:
            n += 1
    return sign * n


def deadline_moved(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """Whether a case is re-published when the calendar changes (domain.md section 4):
    its view under the new calendar (``after``, `onewindow.domain.case.project`) is not
    closed (``closed_at`` null: a closed case keeps the deadline it closed with), and its
    :data:`CALENDAR_FIELDS` differ from its view under the old calendar (``before``), or
    the old calendar is unknown (``before`` is None: re-published to be sure)."""
    if after.get("closed_at") is not None:
        return False
    return before is None or any(before.get(k) != after.get(k) for k in CALENDAR_FIELDS)
