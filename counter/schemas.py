"""Response models of the counter API (names of shared/spec/interfaces.md; OpenAPI at /docs).

Instants are ISO-8601 strings in Asia/Shanghai (``2026-03-02T09:15:00+08:00``), dates
``YYYY-MM-DD``. No model has a field for a plaintext ID number: only ``id_masked``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from counter.present import (
    CARD_DOCUMENTS,
    CASE_TASKS,
    DOCUMENT_CONFLICTS,
    DOCUMENT_SUBMISSIONS,
    LIST_TASKS,
)
from onewindow.domain.identifiers import is_plausible_id_number
from onewindow.domain.normalise import normalise_number

IdType = Literal["RESIDENT_ID", "USCC", "PASSPORT", "OTHER"]

#: what an instant in a query may be: with an offset, from 2000 to 2999 (a year-1 or
#: year-9999 instant with an extreme offset is not even representable in UTC)
FIRST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
LAST_INSTANT = datetime(2999, 12, 31, tzinfo=UTC)


def _plausible(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("instant out of range (2000..2999)") from None
    if not FIRST_INSTANT <= utc <= LAST_INSTANT:
        raise ValueError("instant out of range (2000..2999)")
    return utc


#: a query's instant: ISO 8601 with an offset, 2000..2999, as UTC
Instant = Annotated[AwareDatetime, AfterValidator(_plausible)]


def _an_id_number(value: str) -> str:
    """domain.md section 5 normalisation, then the plausibility of
    ``onewindow.domain.identifiers.is_plausible_id_number``; the message never quotes
    the value (an ID number)."""
    if not normalise_number(value):
        raise ValueError("no ID number in the value")  # blanks, invisible characters
    if not is_plausible_id_number(value):
        raise ValueError("not an ID or document number: once normalised it must hold a "
                         "digit and only letters, digits and ()")
    return value


#: an ID number typed into a lookup (query string or body): at most 64 characters,
#: plausible once normalised (a 422 naming the parameter otherwise)
IdNumber = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_an_id_number)]


class ErrorOut(BaseModel):
    error: str = Field(description="short machine-readable code: not_found, invalid_request ...")
    detail: Any = Field(description="what was wrong, for a human (a list for 422)")


class Page(BaseModel):
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page; null on the last")


class ApplicantOut(BaseModel):
    kind: str
    id_type: str
    id_masked: str | None = Field(examples=["44**************34"])
    name: str


class PromiseOut(BaseModel):
    amount: int
    unit: str


class TaskOut(BaseModel):
    task_id: str
    department: str
    name: str | None
    status: str
    updated_at: str | None


class CaseSummaryOut(BaseModel):
    """A case without its task list: its tasks counted (the board)."""

    case_id: str
    status: str
    version: int
    service_code: str | None
    service_name: str | None
    case_kind: str | None
    channel: str | None
    window_id: str | None
    accepted_at: str | None
    due_date: str | None
    due_at: str | None
    due_provisional: bool
    paused_since: str | None
    closed_at: str | None
    sla_status: str | None = Field(
        description="ON_TIME | LATE | PAUSED | OVERDUE | DUE_SOON | ON_TRACK, computed against "
                    "the clock when read; null before acceptance")
    applicant: ApplicantOut | None
    promise: PromiseOut | None
    tasks_total: int = Field(description="how many tasks the case has")
    task_counts: dict[str, int] = Field(
        description="its tasks by status, all of them: {status: count}",
        examples=[{"APPROVED": 1, "IN_REVIEW": 1}])


class CaseOut(CaseSummaryOut):
    tasks: list[TaskOut] = Field(
        description=f"its tasks by task_id: for one case the first {CASE_TASKS} (all of "
                    f"a case within the fold's bounds, docs/state-rules.md), in a list of "
                    f"cases the first {LIST_TASKS}; tasks_total says how many there are")


class CaseList(Page):
    items: list[CaseOut]


class TimelineEntryOut(BaseModel):
    event_id: str
    event_type: str
    department: str
    occurred_at: str
    version: int = Field(description="the case version right after this event was applied")
    task_id: str | None
    status: str | None
    material_id: str | None
    event: dict[str, Any] = Field(description="the event's JSON form, ID numbers masked")
    out_of_role: bool = Field(
        False, description="a TaskUpdated from another department than the one its task "
        "belonged to when it was applied (domain.md section 3): shown, but it did not "
        "change the task's status, pauses or closing. As of that moment: the case state "
        "is always right, this mark is not rewritten if an earlier CaseAccepted arrives "
        "later (docs/state-rules.md)")


class TimelineOut(Page):
    case_id: str
    items: list[TimelineEntryOut]


class HolderOut(BaseModel):
    id_type: str
    id_masked: str | None
    name: str | None = None


class LinkOut(BaseModel):
    material_id: str = Field(description="the other material")
    verdict: str
    differing_fields: list[str]
    holders_differ: bool
    avoidable_material: str | None
    found_at: str


class MaterialOut(BaseModel):
    material_id: str
    kind: str
    material_type: str
    name: str | None
    holder: HolderOut
    document_number: str | None = Field(description="null when the number is an ID number")
    document_number_masked: str | None
    sha256: str
    form: str | None
    pages: int | None
    size_bytes: int | None
    declared_fields: dict[str, str]
    valid_until: str | None
    occurred_at: str
    case_id: str
    department: str
    task_id: str | None
    avoidable: bool = Field(description="an earlier copy of this document was already on file")


class MaterialWithLinks(MaterialOut):
    links: list[LinkOut]


class SubmissionOut(BaseModel):
    material_id: str
    kind: str
    case_id: str
    department: str
    form: str | None
    occurred_at: str
    sha256: str
    avoidable: bool


class ConflictOut(BaseModel):
    material_id: str
    conflicts_with: str
    differing_fields: list[str]
    holders_differ: bool


class DocumentOut(BaseModel):
    material_type: str
    name: str | None
    document_number: str | None
    document_number_masked: str | None
    first_material_id: str
    first_on_file_at: str
    last_submitted_at: str
    times_submitted: int = Field(description="all submissions of the document")
    avoidable_submissions: int
    submissions: list[SubmissionOut] = Field(
        description=f"its newest {DOCUMENT_SUBMISSIONS} submissions, oldest first; "
                    "times_submitted counts all (the rest: times_submitted minus these)")
    conflicts: list[ConflictOut] = Field(
        description=f"its first {DOCUMENT_CONFLICTS} CONFLICT link ends; conflicts_total "
                    "counts all")
    conflicts_total: int


class HolderDocuments(Page):
    holder: HolderOut
    total_documents: int
    documents: list[DocumentOut] = Field(
        description="the holder's documents, the one submitted most lately first")


class DeadLetterOut(BaseModel):
    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    detail: str
    department: str | None
    event_type: str | None
    case_id: str | None
    event_id: str | None
    original_sha256: str
    original_size: int
    original: dict[str, Any] | None = Field(description="the decoded event, ID numbers masked")
    dead_lettered_at: str


class DeadLetterList(Page):
    items: list[DeadLetterOut]


class RequestBody(BaseModel):
    """A request body: no text in it holds a NUL character. PostgreSQL text cannot hold
    one, so a body field holding one reached the driver's error there (a 500) and nothing
    on SQLite; a path or query holding one is refused by the app before any handler
    (`counter.app._refuse_nul`). Every request body of the app derives from this, so
    the check is one rule for all fields, not a pattern each field must remember.

    Raises (as a 422 through the app's validation handler): ``a NUL character is not
    allowed``, located at the field."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list | tuple) else (value,)
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            # the same type and words as the app's refusal of a NUL in a path or query
            raise PydanticCustomError("value_error", "a NUL character is not allowed")
        return value


class HolderQuery(RequestBody):
    id_type: IdType
    id_number: IdNumber


# --------------------------------------------------------------------- counter screen


_DAYS_LEFT = ("working days after today up to due_date (0: due today, negative: working "
              "days overdue); null while paused, once closed, or before acceptance")


class ScreenCaseOut(CaseOut):
    working_days_left: int | None = Field(description=_DAYS_LEFT)


class BoardCaseOut(CaseSummaryOut):
    """A case on the board: its tasks counted, not listed (a case's tasks are bounded,
    but 500 cases of hundreds of tasks each would be megabytes, issue 13)."""

    working_days_left: int | None = Field(description=_DAYS_LEFT)


class CardDocumentOut(DocumentOut):
    valid_until: str | None = Field(description="the latest validity date among the copies")
    expired: bool
    in_this_case: bool = Field(description="a copy was submitted in this case")
    reusable: bool = Field(
        description="already on file independently of this case's one copy (filed before "
                    "the case was accepted, in another case, or more than once), not "
                    "expired and without a conflict: the counter need not ask for it again")


class HolderCardOut(BaseModel):
    holder: HolderOut
    is_applicant: bool
    total_documents: int
    documents: list[CardDocumentOut] = Field(
        description=f"the holder's {CARD_DOCUMENTS} documents submitted most lately, "
                    "newest first; total_documents counts all")


class CaseCardOut(BaseModel):
    case: ScreenCaseOut
    holders: list[HolderCardOut] = Field(
        description="the applicant and every holder of a material of the case, with the "
                    "documents each has on file (duplicates folded)")
    conflicts: int = Field(description="CONFLICT links touching those documents")
    avoidable_submissions: int = Field(
        description="copies of this case handed in although already on file")


class SearchQuery(RequestBody):
    q: str = Field(min_length=1, max_length=64,
                   description="a case number, or an applicant's ID number (any type)")


class SearchOut(BaseModel):
    match: Literal["case", "applicant", "none"]
    items: list[ScreenCaseOut]


class WindowCount(BaseModel):
    window_id: str
    accepted: int


class BoardOut(BaseModel):
    date: str = Field(description="the acceptance day shown (Asia/Shanghai)")
    today: str
    window_id: str | None
    windows: list[WindowCount] = Field(description="windows that accepted cases that day")
    latest_accepted_on: str | None = Field(description="the newest acceptance day in the model")
    items: list[BoardCaseOut] = Field(description="at most 500, newest first")


class DepartmentOut(BaseModel):
    code: str
    name: str
    name_en: str
    role: str


class LookupQuery(RequestBody):
    case_id: str = Field(min_length=1, max_length=64, pattern=r"^\s*[0-9A-Za-z_-]+\s*$")
    query_code: str = Field(min_length=8, max_length=16,
                            description="the query code printed on the acceptance receipt "
                                        "(8 characters; case, blanks and hyphens ignored)")


class LookupTaskOut(BaseModel):
    department: str
    department_name: str | None = None
    department_name_en: str | None = None
    name: str | None
    status: str
    updated_at: str | None


class LookupStepOut(BaseModel):
    occurred_at: str
    department: str
    department_name: str | None = None
    department_name_en: str | None = None
    event_type: str
    status: str | None


class LookupApplicantOut(BaseModel):
    kind: str
    id_type: str
    name_masked: str
    id_masked: str | None


class LookupOut(BaseModel):
    case_id: str
    service_name: str | None
    status: str
    accepted_at: str | None
    due_date: str | None
    due_at: str | None
    promise: PromiseOut | None
    working_days_left: int | None
    sla_status: str | None
    paused_since: str | None
    closed_at: str | None
    applicant: LookupApplicantOut
    tasks: list[LookupTaskOut]
    steps: list[LookupStepOut] = Field(description="progress steps, oldest first (no "
                                                   "materials, officers or notes)")


# --------------------------------------------------------------------- access log


class AccessLogEntryOut(BaseModel):
    id: int
    at: str
    subject: str = Field(description="who: local:<user>, <issuer>#<sub>, or citizen")
    name: str
    roles: list[str]
    action: str = Field(examples=["case.read", "holder.documents", "search", "lookup"])
    target: str | None = Field(description="a case or material id, or holder:<type>:<hash>")
    client: str
    result: str = Field(examples=["ok", "not_found", "denied", "limited", "failed"])
    detail: str | None


class AccessLogList(Page):
    items: list[AccessLogEntryOut]


class AccessLogQuery(RequestBody):
    since: Instant | None = Field(default=None, description="with an offset")
    until: Instant | None = Field(default=None, description="with an offset")
    user: str | None = Field(default=None, max_length=256, description="subject or name")
    action: str | None = Field(default=None, max_length=64)
    target: str | None = Field(default=None, max_length=512)
    holder: HolderQuery | None = Field(
        default=None, description="reads of this holder's documents (the number is hashed "
                                  "with the app's key, never stored)")
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=10_000_000)
