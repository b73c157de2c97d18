"""The read model: one SQL schema behind the counter screens, the progress lookup and
every report (docs/read-model.md). SQLAlchemy 2 declarative models; the migrations in
``sinks/migrations/`` create exactly these tables (a unit test compares them).

Privacy: no column holds a plaintext citizen or company ID number. Identity numbers are
kept as ``*_id_hash`` (HMAC-SHA256 under ``ONEWINDOW_ID_HASH_KEY``, of the normalised
number) and ``*_id_masked`` (``44**************34``); JSON columns hold redacted copies
(:mod:`onewindow.security.id_protection`; the stream apps already
emit them so, docs/privacy.md).

Every instant is a :class:`~onewindow.read_model.types.UTCDateTime`. ``recorded_at`` is
when the sink committed the row (delivery metadata: it differs between a live model and
a rebuilt one; everything else is equal).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from onewindow.read_model.types import UTCDateTime

__all__ = [
    "Base",
    "Case",
    "ConsumedOffset",
    "DeadLetter",
    "Material",
    "MaterialLink",
    "Task",
    "TaskDecision",
    "TimelineEntry",
    "metadata",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String()  # case, event, task, material ids (unbounded: a longer one must not poison a sink)
CODE = String()  # status, enum, type and department codes (open sets)
HASH = String(64)  # HMAC-SHA256 / sha256 hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


metadata = Base.metadata


class Case(Base):
    """One row per case: the newest ``onewindow.case-state`` record (highest version)."""

    __tablename__ = "cases"

    case_id: Mapped[str] = mapped_column(ID, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(CODE)
    service_code: Mapped[str | None] = mapped_column(String())
    service_name: Mapped[str | None] = mapped_column(Text)
    case_kind: Mapped[str | None] = mapped_column(CODE)
    channel: Mapped[str | None] = mapped_column(CODE)
    window_id: Mapped[str | None] = mapped_column(ID)
    applicant_kind: Mapped[str | None] = mapped_column(CODE)
    applicant_id_type: Mapped[str | None] = mapped_column(CODE)
    applicant_id_hash: Mapped[str | None] = mapped_column(HASH)
    applicant_id_masked: Mapped[str | None] = mapped_column(ID)
    applicant_name: Mapped[str | None] = mapped_column(Text)
    promise_amount: Mapped[int | None] = mapped_column(Integer)
    promise_unit: Mapped[str | None] = mapped_column(CODE)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_date: Mapped[date | None] = mapped_column(Date)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_event_id: Mapped[str | None] = mapped_column(ID)
    #: Kafka timestamp of the input record that produced this state.
    source_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # progress lookup by ID (hash of the query), newest first
        Index(None, "applicant_id_type", "applicant_id_hash", "accepted_at"),
        # screens: open cases by status, ordered by deadline
        Index(None, "status", "due_at"),
        # screens/reports: by service and acceptance day
        Index(None, "service_code", "accepted_at"),
        Index(None, "accepted_at"),
        Index(None, "window_id", "accepted_at"),
        # the supervisor view: closed per day, the open ones (closed_at IS NULL), the
        # open ones when a period starts from the index alone (migration 0003)
        Index(None, "closed_at", "accepted_at"),
    )


class Task(Base):
    """The tasks of a case's newest state (replaced together with the case row)."""

    __tablename__ = "tasks"

    case_id: Mapped[str] = mapped_column(
        ID, ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True)
    task_id: Mapped[str] = mapped_column(ID, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    department: Mapped[str] = mapped_column(CODE)
    name: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(CODE)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # a department's queue: its tasks by status, oldest update first
        Index(None, "department", "status", "updated_at"),
        # the supervisor view: tasks decided in a period, every department (0003); the
        # cases with a task of a department, from the index alone (0004)
        Index(None, "status", "updated_at"),
        Index(None, "department", "case_id"),
    )


class TimelineEntry(Base):
    """One applied event of a case (``onewindow.case-activity``); first copy wins."""

    __tablename__ = "timeline_entries"

    case_id: Mapped[str] = mapped_column(ID, primary_key=True)
    event_id: Mapped[str] = mapped_column(ID, primary_key=True)
    event_type: Mapped[str] = mapped_column(CODE)
    department: Mapped[str] = mapped_column(CODE)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(BigInteger)
    task_id: Mapped[str | None] = mapped_column(ID)
    status: Mapped[str | None] = mapped_column(CODE)
    material_id: Mapped[str | None] = mapped_column(ID)
    #: the event's JSON form with every ID number masked and hashed
    event_json: Mapped[str] = mapped_column(Text)
    source_topic: Mapped[str] = mapped_column(String(255))
    source_partition: Mapped[int] = mapped_column(Integer)
    source_offset: Mapped[int] = mapped_column(BigInteger)
    source_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: a TaskUpdated from another department than its task's, as of when it was applied
    #: (domain.md section 3; docs/state-rules.md): shown marked, it did not change the task
    out_of_role: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        Index(None, "case_id", "occurred_at", "event_id"),  # the timeline, in order
        Index(None, "department", "occurred_at"),  # activity reports per department
        # the supervisor view: a decided task's events (receipt, pauses) from the index
        # alone, without reading the rows' redacted JSON (migration 0003)
        Index("ix_timeline_entries_task_events", "case_id", "task_id", "event_type",
              "occurred_at", "status", "event_id", "out_of_role"),
    )


class Material(Base):
    """A material on file: MaterialSubmitted or CertificateIssued (from the activity topic)."""

    __tablename__ = "materials"

    material_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(CODE)
    material_type: Mapped[str] = mapped_column(CODE)
    name: Mapped[str | None] = mapped_column(Text)
    holder_id_type: Mapped[str] = mapped_column(CODE)
    holder_id_hash: Mapped[str] = mapped_column(HASH)
    holder_id_masked: Mapped[str] = mapped_column(ID)
    holder_name: Mapped[str | None] = mapped_column(Text)
    #: the normalised number, only when it is not an ID number (else null)
    document_number: Mapped[str | None] = mapped_column(String())
    document_number_hash: Mapped[str | None] = mapped_column(HASH)
    document_number_masked: Mapped[str | None] = mapped_column(String())
    sha256: Mapped[str] = mapped_column(HASH)
    form: Mapped[str | None] = mapped_column(CODE)
    pages: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    #: JSON object of the declared fields as sent (format characters dropped, white space
    #: collapsed, not NFKC'd: ``display_value``), ID numbers in values masked
    declared_fields: Mapped[str] = mapped_column(Text)
    valid_until: Mapped[date | None] = mapped_column(Date)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    case_id: Mapped[str] = mapped_column(ID)
    department: Mapped[str] = mapped_column(CODE)
    task_id: Mapped[str | None] = mapped_column(ID)
    event_id: Mapped[str] = mapped_column(ID)
    #: a MaterialSubmitted linked by EXACT/SAME_DOCUMENT to an earlier one of its holder
    avoidable: Mapped[bool] = mapped_column(Boolean, default=False)
    source_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "holder_id_type", "holder_id_hash", "occurred_at"),  # holder's documents
        Index(None, "case_id"),
        Index(None, "material_type", "document_number_hash"),
        Index(None, "sha256"),
        # avoidable-submission reports; the supervisor view's documents handed in again,
        # from the index alone (0004: it was (avoidable, occurred_at))
        Index("ix_materials_avoidable", "avoidable", "occurred_at", "kind", "material_type",
              "name", "holder_id_hash", "department", "pages"),
        # the supervisor view: a period's submissions counted from the index alone (0003)
        Index("ix_materials_report", "occurred_at", "kind", "department", "material_type",
              "avoidable", "pages"),
        # the supervisor view: a department's materials, for its conflicts (0004)
        Index(None, "department", "material_id"),
    )


class MaterialLink(Base):
    """A link or conflict between two materials, ``material_a < material_b``."""

    __tablename__ = "material_links"

    material_a: Mapped[str] = mapped_column(ID, primary_key=True)
    material_b: Mapped[str] = mapped_column(ID, primary_key=True)
    verdict: Mapped[str] = mapped_column(CODE)
    #: JSON array of declared-field keys that differ (CONFLICT)
    differing_fields: Mapped[str] = mapped_column(Text)
    holders_differ: Mapped[bool] = mapped_column(Boolean, default=False)
    avoidable_material: Mapped[str | None] = mapped_column(ID)
    case_a: Mapped[str | None] = mapped_column(ID)
    case_b: Mapped[str | None] = mapped_column(ID)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "material_b"),  # links of a material from either side
        Index(None, "avoidable_material"),
        Index(None, "verdict", "found_at"),  # conflict alerts, reports by verdict
    )


class TaskDecision(Base):
    """A decided task's time from receipt to decision, pauses apart: a summary of ``tasks``
    and ``timeline_entries`` kept by the sink in the same transaction as the rows it comes
    from (``sinks.decisions``; rules: ``onewindow.domain.decision_time``), for the
    supervisor view's decision-time chart (migration 0004). One row per task whose status
    is APPROVED or REJECTED and that has at least one in-role TaskUpdated of its own."""

    __tablename__ = "task_decisions"

    case_id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(ID, primary_key=True)
    department: Mapped[str] = mapped_column(CODE)
    #: the case's service (``cases.service_code``), for the view's service filter
    service_code: Mapped[str | None] = mapped_column(String())
    decision: Mapped[str] = mapped_column(CODE)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: the decision: the task row's ``updated_at``
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: seconds from receipt to decision, and of them paused (exact to the microsecond)
    elapsed_s: Mapped[float] = mapped_column(Float)
    paused_s: Mapped[float] = mapped_column(Float)
    #: the chart's values: hours to a tenth, times ten (``tenths_of_hours``); active is
    #: elapsed minus paused; ``paused_tenths`` is null when the task never paused
    elapsed_tenths: Mapped[int] = mapped_column(Integer)
    active_tenths: Mapped[int] = mapped_column(Integer)
    paused_tenths: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        # a period's decisions counted from the index alone: every department, and one
        Index("ix_task_decisions_period", "decided_at", "department", "service_code",
              "elapsed_tenths", "active_tenths", "paused_tenths"),
        Index("ix_task_decisions_department", "department", "decided_at", "service_code",
              "elapsed_tenths", "active_tenths", "paused_tenths"),
    )


class DeadLetter(Base):
    """An input record that was not applied, keyed by where it was read."""

    __tablename__ = "dead_letters"

    source_topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    source_partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reason: Mapped[str] = mapped_column(CODE)
    detail: Mapped[str] = mapped_column(Text)  # ID numbers masked
    department: Mapped[str | None] = mapped_column(CODE)
    record_key: Mapped[str | None] = mapped_column(String())
    event_type: Mapped[str | None] = mapped_column(CODE)
    case_id: Mapped[str | None] = mapped_column(ID)
    event_id: Mapped[str | None] = mapped_column(ID)
    original_sha256: Mapped[str] = mapped_column(HASH)
    original_size: Mapped[int] = mapped_column(Integer)
    #: the event's JSON form, redacted, when the original decodes (else null)
    original_json: Mapped[str | None] = mapped_column(Text)
    dead_lettered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "reason", "dead_lettered_at"),
        Index(None, "department", "dead_lettered_at"),
        Index(None, "dead_lettered_at"),
        Index(None, "case_id"),
    )


class ConsumedOffset(Base):
    """Next offset to read per output-topic partition, committed with the rows."""

    __tablename__ = "consumed_offsets"

    topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Core Table objects, for the sinks' bulk upserts and the read queries (one place).
CASES: Table = Case.__table__  # type: ignore[assignment]
TASKS: Table = Task.__table__  # type: ignore[assignment]
TIMELINE: Table = TimelineEntry.__table__  # type: ignore[assignment]
MATERIALS: Table = Material.__table__  # type: ignore[assignment]
LINKS: Table = MaterialLink.__table__  # type: ignore[assignment]
DEAD: Table = DeadLetter.__table__  # type: ignore[assignment]
TASK_DECISIONS: Table = TaskDecision.__table__  # type: ignore[assignment]
OFFSETS: Table = ConsumedOffset.__table__  # type: ignore[assignment]
