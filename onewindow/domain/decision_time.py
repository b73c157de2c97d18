"""A decided task's time from its receipt to its decision, with its pauses apart: the
figures behind the supervisor view's decision-time chart (issue 16).

domain.md is silent on reports; the definition is the project's (docs/supervisor.md,
"each department's time from receipt to decision"). The read model keeps one row of
these figures per decided task, written by the sink in the same transaction as the
rows they come from (``task_decisions``, ``sinks.decisions``), so the chart ranks
values instead of replaying each task's events:

* the task's *events*: its own TaskUpdated timeline entries that were applied in role
  (an event from another department counts for nothing, as in the fold: domain.md
  section 3), in the order of domain.md section 3: ``(occurred_at, rank(status),
  event_id)``;
* *received*: the first of them (normally RECEIVED: the counter's acceptance is not the
  department's receipt);
* *paused*: each SUPPLEMENT_REQUESTED or SUSPENDED event (domain.md section 4) lasts until
  the task's next event; consecutive pausing events count as one pause; the last event,
  if pausing, adds nothing (the task was decided);
* *elapsed*: ``decided_at - received`` (the decision is the task row's ``updated_at``);
  *active*: ``elapsed - paused``, the department's own time.

Durations are exact (``timedelta``, microseconds). The chart shows hours to a tenth;
:func:`tenths_of_hours` rounds a duration as the chart does (``round(seconds / 3600,
1)``), and since rounding never changes the order of two values, the nearest-rank
median or p90 of the rounded values is the rounded median or p90 of the exact ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from onewindow.domain.events import PAUSING_STATUSES, STATUS_RANK

__all__ = ["DECISIONS", "TaskTime", "task_time", "tenths_of_hours"]

#: a task's decisions: the terminal statuses but WITHDRAWN (no decision was taken)
DECISIONS = ("APPROVED", "REJECTED")


@dataclass(frozen=True)
class TaskTime:
    """A decided task's figures: its receipt (UTC instant), and from it to the decision
    ``elapsed`` and ``paused`` (both ``timedelta``; ``paused`` is zero when the task
    never paused, and may be less than ``elapsed`` only when times are consistent)."""

    received_at: datetime
    elapsed: timedelta
    paused: timedelta

    @property
    def active(self) -> timedelta:
        """``elapsed - paused``: the department's own time."""
        return self.elapsed - self.paused


def _order(event: tuple[datetime, str | None, str]) -> tuple[datetime, int, str]:
    at, status, event_id = event
    return at, STATUS_RANK.get(status or "", 0), event_id


def task_time(events: Iterable[tuple[datetime, str | None, str]],
              decided_at: datetime) -> TaskTime | None:
    """The figures of a task decided at ``decided_at`` (aware) from its own in-role
    TaskUpdated events, each ``(occurred_at, status, event_id)`` in any order (the
    module docstring's rules); ``None`` when there is none (no receipt to count from)."""
    ordered = sorted(events, key=_order)
    if not ordered:
        return None
    paused = timedelta(0)
    for (at, status, _id), (following, _s, _i) in zip(ordered, ordered[1:], strict=False):
        if status in PAUSING_STATUSES:
            paused += following - at
    received = ordered[0][0]
    return TaskTime(received, decided_at - received, paused)


def tenths_of_hours(duration: timedelta) -> int:
    """``duration`` in hours rounded to a tenth as the chart shows it (``round(seconds /
    3600, 1)``, Python's rounding of the float), times ten: 5 h 57 min -> 60."""
    return round(round(duration.total_seconds() / 3600.0, 1) * 10)
