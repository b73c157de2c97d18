"""The working-day calendar the deadline rules consult (domain.md section 4).

The domain never imports ``chinesecalendar``: a calendar is passed in as any object
with ``is_working_day(d) -> bool | None`` (``None``: the date is outside every known
schedule; the deadline then counts Monday to Friday and flags ``due_provisional``).

A calendar may also offer ``is_provisional(d) -> bool``: ``True`` for a date whose
answer comes from a schedule not yet published by the State Council (an operator's
provisional override year). Such dates are used as answered but still make the
deadline ``due_provisional``. Calendars without the method are never provisional for
the dates they answer.

:class:`SetCalendar` is the pure implementation from explicit sets, used by tests
and by :mod:`onewindow.calendar_source`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Protocol, runtime_checkable

__all__ = ["SetCalendar", "WeekdayCalendar", "WorkingCalendar", "consult"]


@runtime_checkable
class WorkingCalendar(Protocol):
    def is_working_day(self, d: date, /) -> bool | None:
        """True for a working day, False for a rest day, None when the date is unknown."""
        ...


class SetCalendar:
    """A calendar from explicit sets.

    ``years``: the years whose schedule is known; a date in another year is unknown
    (``None``). Within a known year a date is a working day when it is listed in
    ``workdays`` (make-up working days, 调休上班), a rest day when listed in
    ``holidays``, else Monday to Friday work. ``provisional_years`` are known years
    whose schedule is a guess (see the module docstring).
    """

    __slots__ = ("_holidays", "_provisional", "_workdays", "_years")

    def __init__(
        self,
        *,
        years: Iterable[int],
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        provisional_years: Iterable[int] = (),
    ) -> None:
        self._years = frozenset(years)
        self._holidays = frozenset(holidays)
        self._workdays = frozenset(workdays)
        self._provisional = frozenset(provisional_years)

    @property
    def years(self) -> frozenset[int]:
        return self._years

    def is_working_day(self, d: date, /) -> bool | None:
        if d.year not in self._years:
            return None
        if d in self._workdays:
            return True
        if d in self._holidays:
            return False
        return d.weekday() < 5

    def is_provisional(self, d: date, /) -> bool:
        return d.year in self._provisional

    def __repr__(self) -> str:
        return f"SetCalendar(years={sorted(self._years)!r})"


class WeekdayCalendar:
    """Knows nothing: every date is unknown, so Monday to Friday count, provisionally."""

    __slots__ = ()

    def is_working_day(self, d: date, /) -> bool | None:
        return None


def consult(calendar: WorkingCalendar, d: date) -> tuple[bool, bool]:
    """``(is working day, provisional)`` for ``d``, with the Monday-to-Friday fallback."""
    answer = calendar.is_working_day(d)
    if answer is None:
        return d.weekday() < 5, True
    provisional = getattr(calendar, "is_provisional", None)
    return bool(answer), bool(provisional(d)) if provisional is not None else False
