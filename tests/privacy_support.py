"""Events that carry ID numbers everywhere they can (parties, card numbers, declared facts,
notes, reasons, names; typed with spaces, dashes, a passport that passes no check), the
needles to look for, and a scan of raw bytes: shared by the unit and integration tests of
"no plaintext ID numbers past the input topics" (docs/privacy.md)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from onewindow.domain.normalise import normalise_number

RID_A = "440106198503121237"
RID_B = "11010519491231002X"
USCC = "91440101MA5CXYW123"
PASSPORT = "E98765432"

#: every ID number below, in every form it is typed in
TYPED = {
    RID_A: (RID_A, "440106 19850312 1237", "440106-19850312-1237", "440106–1985 0312–1237"),
    RID_B: (RID_B, "110105 19491231 002X", "110105-19491231-002x"),
    USCC: (USCC, "914401 01MA5CXYW123"),
    PASSPORT: (PASSPORT, "E9876-5432", "E9876 5432"),
}


def privacy_events(case_id: str = "GZPRIV0001",
                   start: datetime | None = None) -> list[dict[str, Any]]:
    """One valid case whose events hold the numbers of :data:`TYPED` in every field an ID
    number can reach. Every event passes validation (domain.md section 2)."""
    t0 = start or datetime(2025, 9, 29, 2, 0, tzinfo=UTC)

    def at(minutes: int) -> datetime:
        return t0 + timedelta(minutes=minutes)

    task_id = f"{case_id}-T1"
    common = {"case_id": case_id}
    return [
        {"type": "CaseAccepted", "event_id": f"{case_id}-acc", **common, "department": "zwfw",
         "occurred_at": at(0), "service_code": "S-PRIV", "service_name": "身份核验 110105-19491231-002x",
         "case_kind": "PROMISED", "channel": "COUNTER", "window_id": "W01",
         "applicant": {"kind": "PERSON", "id_type": "RESIDENT_ID",
                       "id_number": "110105 19491231 002X", "name": "王芳"},
         "promise": {"amount": 5, "unit": "WORKING_DAY"},
         "tasks": [{"task_id": task_id, "department": "gaj",
                    "name": f"核验 {RID_B} 身份"}]},
        {"type": "TaskUpdated", "event_id": f"{case_id}-t1", **common, "department": "gaj",
         "occurred_at": at(5), "task_id": task_id, "status": "RECEIVED", "officer": "李敏",
         "note": "已核验 440106-19850312-1237 的身份证"},
        {"type": "TaskUpdated", "event_id": f"{case_id}-t2", **common, "department": "gaj",
         "occurred_at": at(6), "task_id": task_id, "status": "SUPPLEMENT_REQUESTED",
         "officer": None, "note": "请补充 914401 01MA5CXYW123 的营业执照；440106–1985 0312–1237"},
        {"type": "MaterialSubmitted", "event_id": f"{case_id}-m1", **common,
         "department": "gaj", "occurred_at": at(7), "material_id": f"{case_id}-mat-1",
         "material_type": "PASSPORT", "name": f"护照 {PASSPORT}",
         "holder": {"id_type": "PASSPORT", "id_number": PASSPORT, "name": "LI MING"},
         "document_number": "E9876-5432", "sha256": "1" * 64, "pages": 2,
         "size_bytes": 2048, "form": "COPY",
         "declared_fields": {"护照号": "E9876 5432", "姓名": "LI MING"}, "task_id": task_id},
        {"type": "MaterialSubmitted", "event_id": f"{case_id}-m2", **common,
         "department": "gaj", "occurred_at": at(8), "material_id": f"{case_id}-mat-2",
         "material_type": "BUSINESS_LICENSE", "name": "营业执照副本",
         "holder": {"id_type": "USCC", "id_number": "914401 01MA5CXYW123", "name": "花城餐饮"},
         "document_number": "914401 01MA5CXYW123", "sha256": "2" * 64, "pages": 1,
         "size_bytes": 1024, "form": "COPY",
         "declared_fields": {"法定代表人身份证号": "440106 19850312 1237",
                             "注册资本": "100万元"}, "task_id": None},
        {"type": "MaterialSubmitted", "event_id": f"{case_id}-m3", **common,
         "department": "gaj", "occurred_at": at(9), "material_id": f"{case_id}-mat-3",
         "material_type": "ID_CARD", "name": "身份证",
         "holder": {"id_type": "RESIDENT_ID", "id_number": "110105-19491231-002x",
                    "name": "王芳"},
         "document_number": "110105 19491231 002X", "sha256": "3" * 64, "pages": 1,
         "size_bytes": 512, "form": "ORIGINAL",
         "declared_fields": {"姓名": "王芳", "住址": "天河路1号"}, "task_id": task_id},
        {"type": "CertificateIssued", "event_id": f"{case_id}-c1", **common,
         "department": "gaj", "occurred_at": at(10), "task_id": task_id,
         "certificate_id": f"{case_id}-cert-1", "certificate_type": "RESIDENCE_PERMIT",
         "document_number": f"RP{case_id[-4:]}01",
         "holder": {"id_type": "RESIDENT_ID", "id_number": RID_B, "name": "王芳"},
         "sha256": "4" * 64, "declared_fields": {"持证人身份证号": RID_B},
         "valid_until": None},
        {"type": "CaseWithdrawn", "event_id": f"{case_id}-w", **common, "department": "zwfw",
         "occurred_at": at(11), "reason": "申请人 王芳（110105 19491231 002X）主动撤回"},
    ]


def needles(numbers: Iterable[str] = TYPED) -> set[str]:
    """Every ID number as typed in :data:`TYPED` (or given) and normalised."""
    out: set[str] = set()
    for number in numbers:
        for form in TYPED.get(number, (number,)):
            out.add(form)
            out.add(normalise_number(form))
    return out


def event_needles(events: Iterable[dict[str, Any]]) -> set[str]:
    """The ID numbers of the events' parties and of their ID card numbers, as typed and
    normalised (8 characters or more: shorter strings turn up by chance)."""
    found: set[str] = set()
    for e in events:
        for party in ("applicant", "holder"):
            p = e.get(party)
            if p and p.get("id_number"):
                found.update({p["id_number"], normalise_number(p["id_number"])})
        num = e.get("document_number")
        holder = e.get("holder")
        if num and holder and normalise_number(num) == normalise_number(
                holder["id_number"]):
            found.update({num, normalise_number(num)})
    return {f for f in found if len(f) >= 8}


def plaintext_in(blob: bytes, numbers: Iterable[str]) -> list[str]:
    """The numbers found in raw bytes (UTF-8)."""
    return sorted(n for n in numbers if n.encode("utf-8") in blob)
