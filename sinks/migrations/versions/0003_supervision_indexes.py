"""indexes of the supervisor view: cases by closing, tasks by decision, materials by day,
a task's events

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

The supervisor view (issue 16, docs/supervisor.md) reads a period of a year's model;
these keep each chart a range scan (measured in docs/supervisor.md):

* ``cases (closed_at, accepted_at)``: cases closed per day; the open ones
  (``closed_at IS NULL``); the cases open when a period starts, from the index alone;
* ``tasks (status, updated_at)``: the tasks decided in a period, of every department
  (``(department, status, updated_at)`` serves one department);
* ``ix_materials_report`` ``(occurred_at, kind, department, material_type, avoidable,
  pages)``: the submissions of a period counted from the index alone;
* ``ix_timeline_entries_task_events`` ``(case_id, task_id, event_type, occurred_at,
  status, event_id, out_of_role)``: a decided task's events, its receipt and pauses,
  from the index alone, without reading the rows (whose redacted JSON is most of the
  table). (A partial index over the TaskUpdated rows was tried: SQLite still read every
  row, to check the index's own condition.)

"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index(op.f('ix_cases_closed_at_accepted_at'), 'cases',
                    ['closed_at', 'accepted_at'], unique=False)
    op.create_index(op.f('ix_tasks_status_updated_at'), 'tasks', ['status', 'updated_at'],
                    unique=False)
    op.create_index('ix_materials_report', 'materials',
                    ['occurred_at', 'kind', 'department', 'material_type', 'avoidable',
                     'pages'], unique=False)
    op.create_index('ix_timeline_entries_task_events', 'timeline_entries',
                    ['case_id', 'task_id', 'event_type', 'occurred_at', 'status',
                     'event_id', 'out_of_role'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_timeline_entries_task_events', table_name='timeline_entries')
    op.drop_index('ix_materials_report', table_name='materials')
    op.drop_index(op.f('ix_tasks_status_updated_at'), table_name='tasks')
    op.drop_index(op.f('ix_cases_closed_at_accepted_at'), table_name='cases')
