"""the supervisor view over a year: task_decisions kept at write time, three indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Measured on a year of a large district (``onewindow bench-supervision``,
docs/supervisor.md):

* ``task_decisions``: the decision-time chart over a year read each decided task's
  events (1.2 million of them) and ranked 340,000 tasks three times: 5.9 s on
  PostgreSQL. The sink now keeps one row per decided task with its receipt, its pauses
  and its hours to a tenth (``sinks.decisions``, rules in
  ``onewindow.domain.decision_time``), in the same transaction as the rows it comes
  from; the chart counts those values per department. Upgrade fills the table from the
  rows already there (a model migrated with its data): every decided task's events
  read once. This migration carries its own view of the columns it reads and writes,
  so a later change of the models cannot change it.
* ``tasks (department, case_id)``: the cases with a task of a department (every chart's
  department filter on cases) from the index alone, not a scan of the tasks;
* ``materials (department, material_id)``: whether a conflict's material is the
  department's, from the index alone;
* ``ix_materials_avoidable`` ``(avoidable, occurred_at, kind, material_type, name,
  holder_id_hash, department, pages)`` in place of ``(avoidable, occurred_at)``: the
  documents handed in again over a year counted from the index alone.

"""
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from onewindow.domain.decision_time import DECISIONS, task_time, tenths_of_hours
from onewindow.read_model.types import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: cases per step of the fill, and per IN (...) list
STEP, IN_LIST = 5000, 500

_cases = sa.table('cases', sa.column('case_id', sa.String()),
                  sa.column('service_code', sa.String()))
_tasks = sa.table('tasks', sa.column('case_id', sa.String()), sa.column('task_id', sa.String()),
                  sa.column('department', sa.String()), sa.column('status', sa.String()),
                  sa.column('updated_at', UTCDateTime()))
_timeline = sa.table('timeline_entries', sa.column('case_id', sa.String()),
                     sa.column('task_id', sa.String()), sa.column('event_id', sa.String()),
                     sa.column('event_type', sa.String()), sa.column('status', sa.String()),
                     sa.column('occurred_at', UTCDateTime()),
                     sa.column('out_of_role', sa.Boolean()))


def upgrade() -> None:
    """Upgrade schema."""
    table = op.create_table('task_decisions',
    sa.Column('case_id', sa.String(), nullable=False),
    sa.Column('task_id', sa.String(), nullable=False),
    sa.Column('department', sa.String(), nullable=False),
    sa.Column('service_code', sa.String(), nullable=True),
    sa.Column('decision', sa.String(), nullable=False),
    sa.Column('received_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('elapsed_s', sa.Float(), nullable=False),
    sa.Column('paused_s', sa.Float(), nullable=False),
    sa.Column('elapsed_tenths', sa.Integer(), nullable=False),
    sa.Column('active_tenths', sa.Integer(), nullable=False),
    sa.Column('paused_tenths', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('case_id', 'task_id', name=op.f('pk_task_decisions'))
    )
    op.create_index('ix_task_decisions_department', 'task_decisions',
                    ['department', 'decided_at', 'service_code', 'elapsed_tenths',
                     'active_tenths', 'paused_tenths'], unique=False)
    op.create_index('ix_task_decisions_period', 'task_decisions',
                    ['decided_at', 'department', 'service_code', 'elapsed_tenths',
                     'active_tenths', 'paused_tenths'], unique=False)
    op.create_index(op.f('ix_tasks_department_case_id'), 'tasks', ['department', 'case_id'],
                    unique=False)
    op.create_index(op.f('ix_materials_department_material_id'), 'materials',
                    ['department', 'material_id'], unique=False)
    op.drop_index(op.f('ix_materials_avoidable_occurred_at'), table_name='materials')
    op.create_index('ix_materials_avoidable', 'materials',
                    ['avoidable', 'occurred_at', 'kind', 'material_type', 'name',
                     'holder_id_hash', 'department', 'pages'], unique=False)
    conn = op.get_bind()
    for ids in _decided_cases(conn):
        rows = [r for i in range(0, len(ids), IN_LIST) for r in _rows(conn, ids[i:i + IN_LIST])]
        if rows:
            conn.execute(sa.insert(table), rows)


def _decided_cases(conn: sa.Connection) -> Iterator[list[str]]:
    """The ids of the cases with a decided task, in steps of :data:`STEP`."""
    after = ''
    while True:
        ids = list(conn.execute(
            sa.select(_tasks.c.case_id).where(_tasks.c.status.in_(DECISIONS),
                                              _tasks.c.case_id > after)
            .group_by(_tasks.c.case_id).order_by(_tasks.c.case_id).limit(STEP)).scalars())
        if not ids:
            return
        yield ids
        after = ids[-1]


def _rows(conn: sa.Connection, ids: list[str]) -> list[dict[str, Any]]:
    """The rows of these cases' decided tasks (as ``sinks.decisions.decision_rows``)."""
    decided = {(c, t): (d, s, u, svc) for c, t, d, s, u, svc in conn.execute(
        sa.select(_tasks.c.case_id, _tasks.c.task_id, _tasks.c.department, _tasks.c.status,
                  _tasks.c.updated_at, _cases.c.service_code)
        .join_from(_tasks, _cases, _cases.c.case_id == _tasks.c.case_id, isouter=True)
        .where(_tasks.c.case_id.in_(ids), _tasks.c.status.in_(DECISIONS),
               _tasks.c.updated_at.is_not(None)))}
    events: dict[tuple[str, str], list[Any]] = {}
    for c, t, at, status, event_id in conn.execute(
            sa.select(_timeline.c.case_id, _timeline.c.task_id, _timeline.c.occurred_at,
                      _timeline.c.status, _timeline.c.event_id)
            .where(_timeline.c.case_id.in_(ids), _timeline.c.event_type == 'TaskUpdated',
                   _timeline.c.out_of_role.is_(False))):
        if (c, t) in decided:
            events.setdefault((c, t), []).append((at, status, event_id))
    rows = []
    for (c, t), evs in sorted(events.items()):
        dept, status, decided_at, service = decided[(c, t)]
        figures = task_time(evs, decided_at)
        if figures is None:
            continue
        rows.append({'case_id': c, 'task_id': t, 'department': dept, 'service_code': service,
                     'decision': status, 'received_at': figures.received_at,
                     'decided_at': decided_at, 'elapsed_s': figures.elapsed.total_seconds(),
                     'paused_s': figures.paused.total_seconds(),
                     'elapsed_tenths': tenths_of_hours(figures.elapsed),
                     'active_tenths': tenths_of_hours(figures.active),
                     'paused_tenths': tenths_of_hours(figures.paused) if figures.paused
                     else None})
    return rows


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_materials_avoidable', table_name='materials')
    op.create_index(op.f('ix_materials_avoidable_occurred_at'), 'materials',
                    ['avoidable', 'occurred_at'], unique=False)
    op.drop_index(op.f('ix_materials_department_material_id'), table_name='materials')
    op.drop_index(op.f('ix_tasks_department_case_id'), table_name='tasks')
    op.drop_index('ix_task_decisions_period', table_name='task_decisions')
    op.drop_index('ix_task_decisions_department', table_name='task_decisions')
    op.drop_table('task_decisions')
