"""The working-day calendar of the deadline rules, from ``chinesecalendar`` plus the
operator's override file (format documented in ``onewindow/data/calendar_override.yaml``).

The domain (:mod:`onewindow.domain.calendar`) only sees an object with
``is_working_day(d) -> bool | None`` and ``is_provisional(d) -> bool``:

* a date of year Y−1 listed in the block of year Y (a notice for Y moving a late-December
  day) answers from that block, and only that date: the rest of Y−1 keeps its own source;
* else a year listed in the override file answers from the file (it replaces the package's
  answer for that whole year); ``provisional: true`` years answer but are provisional,
  so a deadline that consults them is still ``due_provisional`` (so is a date of Y−1
  moved by a provisional block of Y);
* else a year ``chinesecalendar`` knows answers from the package;
* else ``None`` (unknown): the deadline counts Monday to Friday, provisionally.

The first lookup of an unknown or provisional year logs a warning (once per year and
calendar); the stream apps count provisional deadlines in a metric. Answers are cached
per date, so a lookup is one dict access after the first.

Usage: ``load_calendar()`` for the shipped file, ``load_calendar(settings.calendar_override_file)``
for the operator's copy. ``calendar.snapshot()`` gives every answer over the years it knows
and their digest (`onewindow.domain.calendar.CalendarSnapshot`): the case-state worker
compares it with the one its partitions were last computed with
(`stream_apps.calendar_checks`). :class:`CalendarFile` reloads the file when its content
changed (the worker, on a calendar check).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import chinese_calendar
import yaml

from onewindow.domain.calendar import CalendarSnapshot
from onewindow.errors import ConfigError

__all__ = [
    "CHINESECALENDAR_VERSION",
    "DEFAULT_OVERRIDE_FILE",
    "CalendarFile",
    "ChineseWorkingCalendar",
    "YearSchedule",
    "describe",
    "load_calendar",
    "load_override",
]

#: The installed ``chinesecalendar``'s version (logged with a calendar's digest).
CHINESECALENDAR_VERSION: str = str(getattr(chinese_calendar, "__version__", "unknown"))

log = logging.getLogger(__name__)

#: The packaged override file (package data of `onewindow.data`; installs are unzipped,
#: so it is a real file).
DEFAULT_OVERRIDE_FILE = Path(str(resources.files("onewindow.data") / "calendar_override.yaml"))


@dataclass(frozen=True, slots=True)
class YearSchedule:
    """One year of the override file: ``holidays`` and ``workdays`` of ``year`` itself
    (the year is replaced whole), and ``prior_holidays`` / ``prior_workdays``: dates of
    ``year - 1`` its notice moves, each changing that one date only."""

    year: int
    provisional: bool
    holidays: frozenset[date]
    workdays: frozenset[date]
    prior_holidays: frozenset[date] = frozenset()
    prior_workdays: frozenset[date] = frozenset()

    def is_working_day(self, d: date) -> bool:
        """For a date of ``year`` (the moved dates of ``year - 1`` are answered by
        :class:`ChineseWorkingCalendar`)."""
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5


def _date(value: Any, where: str, year: int) -> date:
    if isinstance(value, datetime):
        raise ConfigError(f"{where}: {value!r} is a timestamp, expected YYYY-MM-DD")
    if isinstance(value, date):
        d = value
    elif isinstance(value, str):
        try:
            d = date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ConfigError(f"{where}: {value!r} is not a YYYY-MM-DD date") from exc
    else:
        raise ConfigError(f"{where}: {value!r} is not a YYYY-MM-DD date")
    if d.year not in (year, year - 1):
        raise ConfigError(f"{where}: {d.isoformat()} is not in {year} (or in {year - 1}, "
                          "whose dates the notice for a year may move)")
    return d


def _dates(block: Mapping[str, Any], key: str, where: str, year: int) -> frozenset[date]:
    values = block.get(key) or []
    if not isinstance(values, list):
        raise ConfigError(f"{where}.{key}: expected a list of dates")
    return frozenset(_date(v, f"{where}.{key}", year) for v in values)


def load_override(path: Path | str | None = None) -> dict[int, YearSchedule]:
    """Parse an override file (the shipped one when ``path`` is None).

    Raises :class:`~onewindow.errors.ConfigError` when the file is unusable. An
    explicitly named file must exist; an empty file means no overrides.
    """
    file = DEFAULT_OVERRIDE_FILE if path is None else Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"calendar override file {file}: {exc}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"calendar override file {file}: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, Mapping) or not isinstance(doc.get("years", {}), Mapping | None):
        raise ConfigError(f"calendar override file {file}: expected a mapping `years:`")
    schedules: dict[int, YearSchedule] = {}
    for key, block in (doc.get("years") or {}).items():
        try:
            year = int(key)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{file}: year {key!r} is not a number") from exc
        where = f"{file}: years.{year}"
        block = block or {}
        if not isinstance(block, Mapping):
            raise ConfigError(f"{where}: expected a mapping")
        unknown = set(block) - {"provisional", "holidays", "workdays"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        provisional = block.get("provisional", False)
        if not isinstance(provisional, bool):
            raise ConfigError(f"{where}.provisional: expected true or false")
        holidays = _dates(block, "holidays", where, year)
        workdays = _dates(block, "workdays", where, year)
        both = holidays & workdays
        if both:
            raise ConfigError(f"{where}: {sorted(d.isoformat() for d in both)} listed as "
                              "both holiday and workday")
        own = {d for d in holidays | workdays if d.year == year}
        schedules[year] = YearSchedule(
            year, provisional, frozenset(holidays & own), frozenset(workdays & own),
            frozenset(holidays - own), frozenset(workdays - own))
    try:
        _moved_dates(schedules)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
    return schedules


def _moved_dates(schedules: Mapping[int, YearSchedule]) -> dict[date, tuple[bool, bool]]:
    """``{date: (working, provisional)}`` of the dates of a year ``Y - 1`` moved by the
    block of ``Y``. A date the block of its own year lists the other way is refused:
    the file would say two things of one day."""
    moved: dict[date, tuple[bool, bool]] = {}
    for schedule in schedules.values():
        for days, working in ((schedule.prior_holidays, False),
                              (schedule.prior_workdays, True)):
            for d in days:
                own = schedules.get(d.year)
                if own is not None and d in (own.holidays if working else own.workdays):
                    raise ConfigError(
                        f"{d.isoformat()} is a {'workday' if working else 'holiday'} in "
                        f"years.{schedule.year} but a {'holiday' if working else 'workday'} "
                        f"in years.{d.year}")
                moved[d] = (working, schedule.provisional)
    return moved


@cache
def _package_years() -> tuple[int, ...]:
    """The years the installed ``chinesecalendar`` has a schedule for (it raises
    ``NotImplementedError`` for the others)."""
    years = []
    for year in range(1949, 2200):
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            continue
        years.append(year)
    return tuple(years)


class ChineseWorkingCalendar:
    """``chinesecalendar`` plus overrides; implements the domain's WorkingCalendar."""

    def __init__(self, overrides: Mapping[int, YearSchedule] | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._moved = _moved_dates(self._overrides)
        self._cache: dict[date, bool | None] = {}
        self._warned: set[int] = set()
        self._snapshot: CalendarSnapshot | None = None

    @property
    def overrides(self) -> Mapping[int, YearSchedule]:
        return self._overrides

    def is_working_day(self, d: date, /) -> bool | None:
        try:
            return self._cache[d]
        except KeyError:
            pass
        answer = self._lookup(d)
        self._cache[d] = answer
        return answer

    def is_provisional(self, d: date, /) -> bool:
        moved = self._moved.get(d)
        if moved is not None:
            return moved[1]
        schedule = self._overrides.get(d.year)
        return schedule is not None and schedule.provisional

    def known_years(self) -> tuple[int, ...]:
        """Every year with a known date: the package's, the override file's, and those of
        the dates it moves; ascending."""
        return tuple(sorted(set(_package_years()) | set(self._overrides)
                            | {d.year for d in self._moved}))

    def snapshot(self) -> CalendarSnapshot:
        """Every answer over :meth:`known_years`, with its digest (computed once: about
        9,000 lookups)."""
        if self._snapshot is None:
            self._snapshot = CalendarSnapshot.of(self, self.known_years())
        return self._snapshot

    def is_known_year(self, year: int) -> bool:
        """True when the year has an official or override schedule (provisional or not)."""
        return self.is_working_day(date(year, 6, 1)) is not None

    def _lookup(self, d: date) -> bool | None:
        moved = self._moved.get(d)
        if moved is not None:
            if moved[1]:
                self._warn(d.year, "moved by a provisional year of the calendar override "
                                   "file")
            return moved[0]
        schedule = self._overrides.get(d.year)
        if schedule is not None:
            if schedule.provisional:
                self._warn(d.year, "provisional in the calendar override file")
            return schedule.is_working_day(d)
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:
            self._warn(d.year, "unknown to chinesecalendar and to the override file; "
                               "counting Monday to Friday")
            return None

    def _warn(self, year: int, why: str) -> None:
        if year not in self._warned:
            self._warned.add(year)
            log.warning("working-day calendar: year %d is %s; deadlines touching it are "
                        "flagged due_provisional", year, why)


def load_calendar(path: Path | str | None = None) -> ChineseWorkingCalendar:
    """The calendar from ``chinesecalendar`` and the override file at ``path``
    (the shipped ``onewindow/data/calendar_override.yaml`` when None)."""
    return ChineseWorkingCalendar(load_override(path))


class CalendarFile:
    """The calendar of an override file (the shipped one when ``path`` is None), reloaded
    when the file's content changed.

    ``calendar``: the current :class:`ChineseWorkingCalendar`. :meth:`reload` reads the
    file again and, when its bytes differ from those last loaded, parses it and replaces
    ``calendar``; a file that cannot be read or parsed raises
    :class:`~onewindow.errors.ConfigError` and leaves ``calendar`` as it was. (A newer
    ``chinesecalendar`` needs a restart: a package is not reloaded.)
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = DEFAULT_OVERRIDE_FILE if path is None else Path(path)
        self._sha256 = self._read_sha256()
        self.calendar = load_calendar(self.path)

    def _read_sha256(self) -> str:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError as exc:
            raise ConfigError(f"calendar override file {self.path}: {exc}") from exc

    @property
    def file_sha256(self) -> str:
        """SHA-256 hex of the file's bytes as last loaded."""
        return self._sha256

    def reload(self) -> bool:
        """``True`` when the file changed and was loaded again, ``False`` when unchanged."""
        sha = self._read_sha256()
        if sha == self._sha256:
            return False
        calendar = load_calendar(self.path)
        self.calendar, self._sha256 = calendar, sha
        return True


def describe(snapshot: CalendarSnapshot) -> str:
    """One line naming a calendar: its digest, its years and the provisional ones."""
    known = snapshot.years
    provisional = [y for y in known if snapshot.is_provisional(date(y, 6, 1))]
    span = f"{known[0]}-{known[-1]}" if known else "no year"
    extra = f", provisional {', '.join(map(str, provisional))}" if provisional else ""
    return (f"calendar {snapshot.digest[:12]} (years {span}{extra}; chinesecalendar "
            f"{CHINESECALENDAR_VERSION})")
