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

:class:`CalendarSnapshot` is a calendar's every answer over a range of years, with a
digest: what a deadline can depend on, so that a worker can tell when the calendar changed
(domain.md section 4: "When the calendar changes, the deadline and SLA of every case that
is not closed are recomputed") and still answer as the calendar did before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any, Protocol, runtime_checkable

__all__ = ["CalendarSnapshot", "SetCalendar", "WeekdayCalendar", "WorkingCalendar", "consult"]


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


# ------------------------------------------------------------------ snapshot

#: One character per date in a snapshot: working or rest day, upper case when official,
#: lower case when provisional, ``-`` when the calendar does not know the date.
_WORK, _REST, _UNKNOWN = "W", "R", "-"
_SNAPSHOT_FORMAT = 1
_DIGEST_HEADER = f"onewindow-calendar-v{_SNAPSHOT_FORMAT}\n"


def _code(calendar: WorkingCalendar, d: date) -> str:
    answer = calendar.is_working_day(d)
    if answer is None:
        return _UNKNOWN
    code = _WORK if answer else _REST
    provisional = getattr(calendar, "is_provisional", None)
    return code.lower() if provisional is not None and provisional(d) else code


def _year_codes(calendar: WorkingCalendar, year: int) -> str:
    first = date(year, 1, 1)
    days = (date(year + 1, 1, 1) - first).days
    return "".join(_code(calendar, first + timedelta(days=i)) for i in range(days))


class CalendarSnapshot:
    """Every answer of a calendar over a set of years: a WorkingCalendar itself, with a
    :attr:`digest`.

    ``years``: ``{year: codes}``, one character per date of the year from 1 January:
    ``W`` working day, ``R`` rest day (lower case: provisional), ``-`` unknown. A year
    absent, or a date coded ``-``, is unknown (``None``), as in the calendar it was taken
    from. Build one with :meth:`of`; store it with :meth:`to_dict` / :meth:`from_dict`
    (JSON-native: ``{"format": 1, "years": {"2025": "RRWW..."}}``, about 9 KB for 24
    years).

    The digest is the SHA-256 (hex) of the answers only, in a canonical text (a header
    line, then ``YYYY:codes`` per year in order): two calendars that answer every date
    alike have equal digests whatever their source (a package version, an override file
    that only repeats the package), and any changed answer (a date moved, a year made
    official or newly known) changes it. Years that know no date are left out.
    """

    __slots__ = ("_digest", "_years")

    def __init__(self, years: Mapping[int, str]) -> None:
        for year, codes in years.items():
            days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
            if len(codes) != days or set(codes) - set("WRwr-"):
                raise ValueError(f"calendar snapshot: year {year} needs {days} codes of "
                                 "W, R, w, r or -")
        self._years = {y: years[y] for y in sorted(years) if set(years[y]) != {_UNKNOWN}}
        text = _DIGEST_HEADER + "".join(f"{y}:{c}\n" for y, c in self._years.items())
        self._digest = hashlib.sha256(text.encode("ascii")).hexdigest()

    @classmethod
    def of(cls, calendar: WorkingCalendar, years: Iterable[int]) -> CalendarSnapshot:
        """The answers of ``calendar`` for every date of ``years`` (the years it knows:
        `onewindow.calendar_source.ChineseWorkingCalendar.known_years`). About 9,000
        lookups for 24 years."""
        return cls({y: _year_codes(calendar, y) for y in set(years)})

    @property
    def digest(self) -> str:
        """SHA-256 hex of the answers (class docstring)."""
        return self._digest

    @property
    def years(self) -> tuple[int, ...]:
        """The years with at least one known date, ascending."""
        return tuple(self._years)

    def is_working_day(self, d: date, /) -> bool | None:
        codes = self._years.get(d.year)
        if codes is None:
            return None
        code = codes[d.timetuple().tm_yday - 1]
        return None if code == _UNKNOWN else code in "Ww"

    def is_provisional(self, d: date, /) -> bool:
        codes = self._years.get(d.year)
        return codes is not None and codes[d.timetuple().tm_yday - 1] in "wr"

    def changed_dates(self, other: CalendarSnapshot) -> list[date]:
        """The dates whose answer (working, provisional or known) differs between the two
        snapshots, ascending: what an operator is told a change did."""
        out: list[date] = []
        for year in sorted(set(self._years) | set(other._years)):
            first = date(year, 1, 1)
            unknown = _UNKNOWN * (date(year + 1, 1, 1) - first).days
            mine = self._years.get(year, unknown)
            theirs = other._years.get(year, unknown)
            out.extend(first + timedelta(days=i)
                       for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"format": _SNAPSHOT_FORMAT, "digest": self._digest,
                "years": {str(y): c for y, c in self._years.items()}}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CalendarSnapshot:
        """Raises ValueError for anything :meth:`to_dict` did not write."""
        if not isinstance(doc, Mapping) or doc.get("format") != _SNAPSHOT_FORMAT \
                or not isinstance(doc.get("years"), Mapping):
            raise ValueError("not a calendar snapshot of a known format")
        try:
            years = {int(y): str(c) for y, c in doc["years"].items()}
        except (TypeError, ValueError) as exc:
            raise ValueError("calendar snapshot: a year is not a number") from exc
        return cls(years)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CalendarSnapshot):
            return NotImplemented
        return self._digest == other._digest

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        span = f"{self.years[0]}-{self.years[-1]}" if self._years else "none"
        return f"CalendarSnapshot(years={span}, digest={self._digest[:12]})"
