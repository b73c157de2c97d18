"""Event vocabulary of domain.md section 1: type names, enums, task status ranks.

An event in memory is a plain ``dict`` with a ``"type"`` key (docs/architecture.md);
enums are their names as ``str``. The :class:`~enum.StrEnum` classes below compare
equal to those strings, so ``event["status"] == TaskStatus.APPROVED`` holds.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "ALL_FIELDS",
    "CASE_ACCEPTED",
    "CASE_WITHDRAWN",
    "CERTIFICATE_ISSUED",
    "COMMON_FIELDS",
    "CaseKind",
    "CaseStatus",
    "Channel",
    "EVENT_TYPES",
    "EventType",
    "Form",
    "IdType",
    "MATERIAL_SUBMITTED",
    "OPTIONAL_FIELDS",
    "PAUSING_STATUSES",
    "PartyKind",
    "PromiseUnit",
    "RANK_STATUS",
    "REQUIRED_FIELDS",
    "STATUS_RANK",
    "TASK_UPDATED",
    "TERMINAL_STATUSES",
    "TaskStatus",
]


class EventType(StrEnum):
    CaseAccepted = "CaseAccepted"
    TaskUpdated = "TaskUpdated"
    MaterialSubmitted = "MaterialSubmitted"
    CertificateIssued = "CertificateIssued"
    CaseWithdrawn = "CaseWithdrawn"


CASE_ACCEPTED = EventType.CaseAccepted.value
TASK_UPDATED = EventType.TaskUpdated.value
MATERIAL_SUBMITTED = EventType.MaterialSubmitted.value
CERTIFICATE_ISSUED = EventType.CertificateIssued.value
CASE_WITHDRAWN = EventType.CaseWithdrawn.value
EVENT_TYPES = frozenset(t.value for t in EventType)


class CaseKind(StrEnum):
    IMMEDIATE = "IMMEDIATE"  # 即办件
    PROMISED = "PROMISED"  # 承诺件
    JOINT = "JOINT"  # 联办件
    REPORTED = "REPORTED"  # 上报件


class Channel(StrEnum):
    COUNTER = "COUNTER"
    ONLINE = "ONLINE"
    KIOSK = "KIOSK"
    MOBILE = "MOBILE"
    MAIL = "MAIL"
    OTHER = "OTHER"


class PartyKind(StrEnum):
    PERSON = "PERSON"
    ORGANIZATION = "ORGANIZATION"


class IdType(StrEnum):
    RESIDENT_ID = "RESIDENT_ID"
    USCC = "USCC"
    PASSPORT = "PASSPORT"
    OTHER = "OTHER"


class PromiseUnit(StrEnum):
    WORKING_DAY = "WORKING_DAY"
    NATURAL_DAY = "NATURAL_DAY"
    HOUR = "HOUR"


class Form(StrEnum):
    ORIGINAL = "ORIGINAL"  # 原件
    COPY = "COPY"  # 复印件
    ELECTRONIC = "ELECTRONIC"  # 电子件


class TaskStatus(StrEnum):
    """A task's status; ``PENDING`` is never on the wire (a declared task with no event)."""

    PENDING = "PENDING"
    RECEIVED = "RECEIVED"
    IN_REVIEW = "IN_REVIEW"
    SUPPLEMENT_REQUESTED = "SUPPLEMENT_REQUESTED"  # 补正
    SUPPLEMENT_RECEIVED = "SUPPLEMENT_RECEIVED"
    SUSPENDED = "SUSPENDED"  # 特别程序 start
    RESUMED = "RESUMED"  # 特别程序 end
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"


class CaseStatus(StrEnum):
    PENDING_ACCEPTANCE = "PENDING_ACCEPTANCE"
    ACCEPTED = "ACCEPTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUPPLEMENT_REQUIRED = "SUPPLEMENT_REQUIRED"
    SUSPENDED = "SUSPENDED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    PARTIALLY_APPROVED = "PARTIALLY_APPROVED"
    WITHDRAWN = "WITHDRAWN"


#: Ranks of the task order key ``(occurred_at, rank(status), event_id)``; PENDING is 0.
STATUS_RANK: MappingProxyType[str, int] = MappingProxyType({
    "PENDING": 0,
    "RECEIVED": 1,
    "IN_REVIEW": 2,
    "SUPPLEMENT_REQUESTED": 3,
    "SUPPLEMENT_RECEIVED": 4,
    "SUSPENDED": 5,
    "RESUMED": 6,
    "APPROVED": 7,
    "REJECTED": 8,
    "WITHDRAWN": 9,
})
#: rank -> status name (index = rank).
RANK_STATUS: tuple[str, ...] = tuple(sorted(STATUS_RANK, key=STATUS_RANK.__getitem__))

TERMINAL_STATUSES = frozenset({"APPROVED", "REJECTED", "WITHDRAWN"})
#: Statuses that pause a task (section 4) until an event with neither status.
PAUSING_STATUSES = frozenset({"SUPPLEMENT_REQUESTED", "SUSPENDED"})

#: Fields every input event carries (besides ``type``).
COMMON_FIELDS: tuple[str, ...] = ("event_id", "case_id", "department", "occurred_at")

#: Required own fields per event type (must be present and not ``None``).
REQUIRED_FIELDS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType({
    CASE_ACCEPTED: (
        "service_code", "service_name", "case_kind", "channel", "applicant", "promise", "tasks",
    ),
    TASK_UPDATED: ("task_id", "status"),
    MATERIAL_SUBMITTED: (
        "material_id", "material_type", "name", "holder", "sha256", "pages", "size_bytes",
        "form", "declared_fields",
    ),
    CERTIFICATE_ISSUED: (
        "task_id", "certificate_id", "certificate_type", "document_number", "holder", "sha256",
        "declared_fields",
    ),
    CASE_WITHDRAWN: (),
})

#: Optional own fields per event type (absent or ``None`` allowed).
OPTIONAL_FIELDS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType({
    CASE_ACCEPTED: ("window_id",),
    TASK_UPDATED: ("officer", "note"),
    MATERIAL_SUBMITTED: ("document_number", "task_id"),
    CERTIFICATE_ISSUED: ("valid_until",),
    CASE_WITHDRAWN: ("reason",),
})

#: Every field name of each type, ``type`` included.
ALL_FIELDS: MappingProxyType[str, frozenset[str]] = MappingProxyType({
    t: frozenset(("type", *COMMON_FIELDS, *REQUIRED_FIELDS[t], *OPTIONAL_FIELDS[t]))
    for t in EVENT_TYPES
})
