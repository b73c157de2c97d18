"""Opening hours of the service centre the simulator plays, and time counted in them.

The contract has no opening hours (domain.md counts working *days*); these are the
simulator's, so that its traffic looks like a centre's day: applicants are accepted and
departments work only while the centre is open, and a compressed simulated clock
(`producers.simulator`) spends no wall-clock time on nights, lunch breaks, weekends and
holidays.

:class:`ServiceHours`: on working days, 09:00-12:00 and 13:30-17:30 Asia/Shanghai by
default (7 open hours a day, the hours most Guangzhou district 政务服务中心 keep). A
working day is what the deadline rules use (`onewindow.domain.calendar.consult`): the
State Council schedule with its make-up working days (调休) from ``chinesecalendar``
and the operator's override file, Monday to Friday for a year neither knows.

:class:`AroundTheClock`: the same methods with every instant open (``--around-the-clock``).

Pure: timezone-aware datetimes in, UTC datetimes out; seconds as floats. A naive
datetime raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from onewindow.domain.calendar import WorkingCalendar, consult
from onewindow.domain.deadline import SHANGHAI

__all__ = ["AROUND_THE_CLOCK", "SESSIONS", "AroundTheClock", "OpenTime", "ServiceHours",
           "describe", "session_seconds"]

#: the default opening sessions of a working day, Asia/Shanghai: (opens, closes)
SESSIONS: tuple[tuple[time, time], ...] = ((time(9, 0), time(12, 0)),
                                           (time(13, 30), time(17, 30)))
#: how many days in a row without a session `ServiceHours` looks through before it gives up
#: (the longest State Council holiday is 8 or 9 days with its weekends)
_MAX_CLOSED_DAYS = 60
_DAY = timedelta(days=1)


def session_seconds(sessions: tuple[tuple[time, time], ...] = SESSIONS) -> float:
    """Open seconds of a working day with ``sessions`` (25,200 by default: 7 hours)."""
    return sum((datetime.combine(date.min, b) - datetime.combine(date.min, a)).total_seconds()
               for a, b in sessions)


def describe(sessions: tuple[tuple[time, time], ...] = SESSIONS) -> str:
    """``working days 09:00-12:00, 13:30-17:30`` for the default sessions."""
    return "working days " + ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in sessions)


class OpenTime(Protocol):
    """Time counted in open hours (both classes of this module)."""

    @property
    def open_share(self) -> float:
        """Open seconds per second of a typical week's working day, 0 < share <= 1."""
        ...

    def add(self, at: datetime, seconds: float, /) -> datetime:
        """The instant ``seconds`` of open time after ``at`` (from the next opening when
        ``at`` is closed)."""
        ...

    def back(self, end: datetime, seconds: float, /) -> datetime:
        """The latest instant with ``seconds`` of open time between it and ``end``."""
        ...

    def open_seconds(self, start: datetime, end: datetime, /) -> float:
        """The open seconds in ``[start, end)`` (0 when ``end <= start``)."""
        ...


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"a naive datetime: {at!r} (its instant is unknowable)")
    return at


@dataclass(frozen=True)
class AroundTheClock:
    """Every instant open: open time is clock time."""

    @property
    def open_share(self) -> float:
        return 1.0

    def add(self, at: datetime, seconds: float, /) -> datetime:
        if seconds < 0:
            raise ValueError(f"negative seconds: {seconds}")
        return _aware(at).astimezone(UTC) + timedelta(seconds=seconds)

    def back(self, end: datetime, seconds: float, /) -> datetime:
        if seconds < 0:
            raise ValueError(f"negative seconds: {seconds}")
        return _aware(end).astimezone(UTC) - timedelta(seconds=seconds)

    def open_seconds(self, start: datetime, end: datetime, /) -> float:
        return max(0.0, (_aware(end) - _aware(start)).total_seconds())


AROUND_THE_CLOCK = AroundTheClock()


@dataclass(frozen=True)
class ServiceHours:
    """Open during ``sessions`` (local times, ascending, not overlapping, each opening
    before it closes) on the working days of ``calendar``; closed otherwise. A session
    is half-open: open at its opening instant, closed at its closing one. Raises
    ``ValueError`` for bad sessions, and from a method when no session is found within
    60 days in a row (a calendar without working days)."""

    calendar: WorkingCalendar
    sessions: tuple[tuple[time, time], ...] = SESSIONS

    def __post_init__(self) -> None:
        if not self.sessions:
            raise ValueError("no opening session")
        last = time.min
        for i, (opens, closes) in enumerate(self.sessions):
            if not opens < closes or (i and opens < last):
                raise ValueError(f"sessions must ascend without overlap: {self.sessions}")
            last = closes

    @property
    def day_seconds(self) -> float:
        """Open seconds of a working day (25,200 by default: 7 hours)."""
        return session_seconds(self.sessions)

    @property
    def open_share(self) -> float:
        """``day_seconds`` over a day's 86,400 seconds (7/24 by default)."""
        return self.day_seconds / 86_400

    def is_working_day(self, d: date) -> bool:
        return consult(self.calendar, d)[0]

    def _day(self, d: date) -> list[tuple[datetime, datetime]]:
        if not self.is_working_day(d):
            return []
        return [(datetime.combine(d, a, SHANGHAI), datetime.combine(d, b, SHANGHAI))
                for a, b in self.sessions]

    def _forward(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The sessions that close after ``at``, in order, without end."""
        d, closed = _aware(at).astimezone(SHANGHAI).date(), 0
        while True:
            sessions = [s for s in self._day(d) if s[1] > at]
            closed = 0 if sessions else closed + 1
            if closed > _MAX_CLOSED_DAYS:
                raise ValueError(f"no opening session within {_MAX_CLOSED_DAYS} days of "
                                 f"{at.isoformat()}")
            yield from sessions
            d += _DAY

    def _backward(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The sessions that open before ``at``, latest first, without end."""
        d, closed = _aware(at).astimezone(SHANGHAI).date(), 0
        while True:
            sessions = [s for s in self._day(d) if s[0] < at]
            closed = 0 if sessions else closed + 1
            if closed > _MAX_CLOSED_DAYS:
                raise ValueError(f"no opening session within {_MAX_CLOSED_DAYS} days "
                                 f"before {at.isoformat()}")
            yield from reversed(sessions)
            d -= _DAY

    def is_open(self, at: datetime) -> bool:
        local = _aware(at).astimezone(SHANGHAI)
        return any(a <= local < b for a, b in self._day(local.date()))

    def next_open(self, at: datetime) -> datetime:
        """``at`` when open, else the next opening (UTC)."""
        opens, _ = next(self._forward(at))
        return max(opens, at).astimezone(UTC)

    def add(self, at: datetime, seconds: float, /) -> datetime:
        if seconds < 0:
            raise ValueError(f"negative seconds: {seconds}")
        left = seconds
        for opens, closes in self._forward(at):
            begin = max(opens, at)
            room = (closes - begin).total_seconds()
            if left <= room:
                return (begin + timedelta(seconds=left)).astimezone(UTC)
            left -= room
        raise AssertionError("unreachable")  # pragma: no cover - _forward never ends

    def back(self, end: datetime, seconds: float, /) -> datetime:
        if seconds < 0:
            raise ValueError(f"negative seconds: {seconds}")
        if seconds == 0:
            return _aware(end).astimezone(UTC)
        left = seconds
        for opens, closes in self._backward(end):
            stop = min(closes, end)
            room = (stop - opens).total_seconds()
            if left <= room:
                return (stop - timedelta(seconds=left)).astimezone(UTC)
            left -= room
        raise AssertionError("unreachable")  # pragma: no cover - _backward never ends

    def open_seconds(self, start: datetime, end: datetime, /) -> float:
        total = 0.0
        if end <= start:
            return total
        for opens, closes in self._forward(start):
            if opens >= end:
                return total
            total += (min(closes, end) - max(opens, start)).total_seconds()
        raise AssertionError("unreachable")  # pragma: no cover - _forward never ends
