"""Builders for domain tests: events as plain dicts (docs/architecture.md)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from onewindow.domain.calendar import SetCalendar
from tests.examples import EXAMPLES  # noqa: F401 - re-exported to the domain tests

CST = timezone(timedelta(hours=8))
CASE = "C-1"

VALID_RID = "11010519491231002X"
VALID_RID_2 = "440106198503121237"
VALID_USCC = "91440101MA5CXYW123"


def t(text: str) -> datetime:
    """'2025-10-09 09:00' (Asia/Shanghai wall time) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=CST)


def accepted(event_id: str = "acc-1", at: str = "2025-09-30 10:00", *, amount: int = 5,
             unit: str = "WORKING_DAY", tasks: list[tuple[str, str, str]] | None = None,
             case_id: str = CASE, **extra: Any) -> dict[str, Any]:
    if tasks is None:
        tasks = [("T1", "scjgj", "食品经营许可"), ("T2", "zjj", "消防安全检查")]
    ev = {
        "type": "CaseAccepted", "event_id": event_id, "case_id": case_id,
        "department": "zwfw", "occurred_at": t(at),
        "service_code": "S-1", "service_name": "开办餐饮店", "case_kind": "JOINT",
        "channel": "COUNTER", "window_id": "W07",
        "applicant": {"kind": "ORGANIZATION", "id_type": "USCC", "id_number": VALID_USCC,
                      "name": "广州花城餐饮管理有限公司"},
        "promise": {"amount": amount, "unit": unit},
        "tasks": [{"task_id": a, "department": b, "name": c} for a, b, c in tasks],
    }
    ev.update(extra)
    return ev


def task(event_id: str, task_id: str, status: str, at: str, *, department: str = "scjgj",
         case_id: str = CASE, **extra: Any) -> dict[str, Any]:
    ev = {"type": "TaskUpdated", "event_id": event_id, "case_id": case_id,
          "department": department, "occurred_at": t(at), "task_id": task_id,
          "status": status, "officer": None, "note": None}
    ev.update(extra)
    return ev


def withdrawn(event_id: str, at: str, *, case_id: str = CASE) -> dict[str, Any]:
    return {"type": "CaseWithdrawn", "event_id": event_id, "case_id": case_id,
            "department": "zwfw", "occurred_at": t(at), "reason": None}


def material(event_id: str = "m-ev-1", at: str = "2025-09-30 10:05", *,
             case_id: str = CASE, **extra: Any) -> dict[str, Any]:
    ev = {"type": "MaterialSubmitted", "event_id": event_id, "case_id": case_id,
          "department": "scjgj", "occurred_at": t(at), "material_id": "mat-1",
          "material_type": "ID_CARD", "name": "身份证",
          "holder": {"id_type": "RESIDENT_ID", "id_number": VALID_RID_2, "name": "陈静"},
          "document_number": VALID_RID_2, "sha256": "ab" * 32, "pages": 1,
          "size_bytes": 1000, "form": "COPY", "declared_fields": {"name": "陈静"},
          "task_id": None}
    ev.update(extra)
    return ev


def certificate(event_id: str = "c-ev-1", at: str = "2025-10-15 15:25", *,
                case_id: str = CASE, **extra: Any) -> dict[str, Any]:
    ev = {"type": "CertificateIssued", "event_id": event_id, "case_id": case_id,
          "department": "scjgj", "occurred_at": t(at), "task_id": "T1",
          "certificate_id": "cert-1", "certificate_type": "FOOD_BUSINESS_LICENSE",
          "document_number": "JY1", "holder": {"id_type": "USCC", "id_number": VALID_USCC,
                                               "name": "公司"},
          "sha256": "cd" * 32, "declared_fields": {}, "valid_until": date(2030, 10, 14)}
    ev.update(extra)
    return ev


# 2025 as published by the State Council (only what the tests touch).
CAL_2025 = SetCalendar(
    years={2025},
    holidays=[date(2025, 10, d) for d in range(1, 9)] + [date(2025, 1, 1)],
    workdays=[date(2025, 9, 28), date(2025, 10, 11)],
)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON form of interfaces.md, parsed by hand (timestamps, valid_until)."""
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        ev = json.loads(line)
        ev["occurred_at"] = datetime.fromisoformat(ev["occurred_at"])
        if ev.get("valid_until"):
            ev["valid_until"] = date.fromisoformat(ev["valid_until"])
        events.append(ev)
    return events
