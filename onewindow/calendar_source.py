"""The working-day calendar of the deadline rules, from ``chinesecalendar`` plus the
operator's override file (format documented in ``onewindow/data/calendar_override.yaml``).

The domain (:mod:`onewindow.domain.calendar`) only sees an object with
``is_working_day(d) -> bool | None`` and ``is_provisional(d) -> bool``:

* a year listed in the override file answers from the file (it replaces the package's
  answer for that whole year); ``provisional: true`` years answer but are provisional,
  so a deadline that consults them is still ``due_provisional``;
* else a year ``chinesecalendar`` knows answers from the package;
* else ``None`` (unknown): the deadline counts Monday to Friday, provisionally.

The first lookup of an unknown or provisional year logs a warning (once per year and
calendar); the stream apps count provisional deadlines in a metric. Answers are cached
per date, so a lookup is one dict access after the first.

Usage: ``load_calendar()`` for the shipped file, ``load_calendar(settings.calendar_override_file)``
for the operator's copy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import chinese_calendar
import yaml

from onewindow.errors import ConfigError

__all__ = [
    "DEFAULT_OVERRIDE_FILE",
    "ChineseWorkingCalendar",
    "YearSchedule",
    "load_calendar",
    "load_override",
]

log = logging.getLogger(__name__)

#: The packaged override file (package data of `onewindow.data`; installs are unzipped,
#: so it is a real file).
DEFAULT_OVERRIDE_FILE = Path(str(resources.files("onewindow.data") / "calendar_override.yaml"))


@dataclass(frozen=True, slots=True)
class YearSchedule:
    """One year of the override file."""

    year: int
    provisional: bool
    holidays: frozenset[date]
    workdays: frozenset[date]

    def is_working_day(self, d: date) -> bool:
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
    if d.year != year:
        raise ConfigError(f"{where}: {d.isoformat()} is not in {year}")
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
        schedules[year] = YearSchedule(year, provisional, holidays, workdays)
    return schedules


class ChineseWorkingCalendar:
    """``chinesecalendar`` plus overrides; implements the domain's WorkingCalendar."""

    def __init__(self, overrides: Mapping[int, YearSchedule] | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._cache: dict[date, bool | None] = {}
        self._warned: set[int] = set()

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
        schedule = self._overrides.get(d.year)
        return schedule is not None and schedule.provisional

    def is_known_year(self, year: int) -> bool:
        """True when the year has an official or override schedule (provisional or not)."""
        return self.is_working_day(date(year, 6, 1)) is not None

    def _lookup(self, d: date) -> bool | None:
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
