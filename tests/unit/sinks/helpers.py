"""What the sink tests share: a case-state record as the case-state app emits it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


def case_state(case_id: str, version: int, tasks: list[tuple[str, str]],
               **kw: Any) -> dict[str, Any]:
    """A CaseState record of ``case_id`` at ``version`` with ``tasks`` (id, status)."""
    rec = {"case_id": case_id, "status": "IN_PROGRESS", "version": version,
           "service_code": "S1", "service_name": "svc", "case_kind": "JOINT",
           "channel": "COUNTER", "window_id": "W1",
           "applicant": {"kind": "PERSON", "id_type": "RESIDENT_ID",
                         "id_number": "440106198503121237", "name": "陈静"},
           "promise": {"amount": 5, "unit": "WORKING_DAY"}, "accepted_at": T0,
           "due_date": None, "due_at": None, "due_provisional": False, "paused_since": None,
           "closed_at": None,
           "tasks": [{"task_id": t, "department": "scjgj", "name": None, "status": s,
                      "updated_at": T0} for t, s in tasks],
           "source_timestamp": T0, "last_event_id": None}
    rec.update(kw)
    return rec
