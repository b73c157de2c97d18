"""Topic names and the key rule (key = case_id, UTF-8), in one place.

Input topics are `dept.<code>.events`, one per department; output topics are the
four of interfaces.md. A deployment (or a test) may put a prefix in front of every
name (`ONEWINDOW_TOPIC_PREFIX`) so that several stacks can share one cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def record_key(case_id: str) -> bytes:
    """Every input and case-keyed output record is keyed by case_id, UTF-8."""
    return case_id.encode("utf-8")


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    def input(self, department: str) -> str:
        """The topic a department publishes to (and owns)."""
        return f"{self.prefix}dept.{department}.events"

    def inputs(self, departments: Iterable[str]) -> list[str]:
        return [self.input(d) for d in sorted(departments)]

    def department_of(self, topic: str) -> str | None:
        """The owner of an input topic, or None for any other topic."""
        head, tail = f"{self.prefix}dept.", ".events"
        if topic.startswith(head) and topic.endswith(tail) and len(topic) > len(head + tail):
            return topic[len(head) : -len(tail)]
        return None

    @property
    def case_state(self) -> str:
        return f"{self.prefix}onewindow.case-state"

    @property
    def case_activity(self) -> str:
        return f"{self.prefix}onewindow.case-activity"

    @property
    def material_links(self) -> str:
        return f"{self.prefix}onewindow.material-links"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}onewindow.dead-letters"

    def outputs(self) -> tuple[str, ...]:
        return (self.case_state, self.case_activity, self.material_links, self.dead_letters)
