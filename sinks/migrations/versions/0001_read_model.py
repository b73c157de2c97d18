"""read model: cases, tasks, timeline, materials, links, dead letters, offsets

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-27

Every instant is DateTime(timezone=True) (onewindow.read_model.types.UTCDateTime in the
models: timestamptz on PostgreSQL, UTC text on SQLite). Names follow the naming
convention of onewindow.read_model.tables.

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('cases',
    sa.Column('case_id', sa.String(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('service_code', sa.String(), nullable=True),
    sa.Column('service_name', sa.Text(), nullable=True),
    sa.Column('case_kind', sa.String(), nullable=True),
    sa.Column('channel', sa.String(), nullable=True),
    sa.Column('window_id', sa.String(), nullable=True),
    sa.Column('applicant_kind', sa.String(), nullable=True),
    sa.Column('applicant_id_type', sa.String(), nullable=True),
    sa.Column('applicant_id_hash', sa.String(length=64), nullable=True),
    sa.Column('applicant_id_masked', sa.String(), nullable=True),
    sa.Column('applicant_name', sa.Text(), nullable=True),
    sa.Column('promise_amount', sa.Integer(), nullable=True),
    sa.Column('promise_unit', sa.String(), nullable=True),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_provisional', sa.Boolean(), nullable=False),
    sa.Column('paused_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_event_id', sa.String(), nullable=True),
    sa.Column('source_timestamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_cases'))
    )
    op.create_index(op.f('ix_cases_accepted_at'), 'cases', ['accepted_at'], unique=False)
    op.create_index(op.f('ix_cases_applicant_id_type_applicant_id_hash_accepted_at'), 'cases', ['applicant_id_type', 'applicant_id_hash', 'accepted_at'], unique=False)
    op.create_index(op.f('ix_cases_service_code_accepted_at'), 'cases', ['service_code', 'accepted_at'], unique=False)
    op.create_index(op.f('ix_cases_status_due_at'), 'cases', ['status', 'due_at'], unique=False)
    op.create_index(op.f('ix_cases_window_id_accepted_at'), 'cases', ['window_id', 'accepted_at'], unique=False)

    op.create_table('consumed_offsets',
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=False),
    sa.Column('next_offset', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('topic', 'partition', name=op.f('pk_consumed_offsets'))
    )
    op.create_table('dead_letters',
    sa.Column('source_topic', sa.String(length=255), nullable=False),
    sa.Column('source_partition', sa.Integer(), nullable=False),
    sa.Column('source_offset', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('department', sa.String(), nullable=True),
    sa.Column('record_key', sa.String(), nullable=True),
    sa.Column('event_type', sa.String(), nullable=True),
    sa.Column('case_id', sa.String(), nullable=True),
    sa.Column('event_id', sa.String(), nullable=True),
    sa.Column('original_sha256', sa.String(length=64), nullable=False),
    sa.Column('original_size', sa.Integer(), nullable=False),
    sa.Column('original_json', sa.Text(), nullable=True),
    sa.Column('dead_lettered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source_topic', 'source_partition', 'source_offset', name=op.f('pk_dead_letters'))
    )
    op.create_index(op.f('ix_dead_letters_case_id'), 'dead_letters', ['case_id'], unique=False)
    op.create_index(op.f('ix_dead_letters_dead_lettered_at'), 'dead_letters', ['dead_lettered_at'], unique=False)
    op.create_index(op.f('ix_dead_letters_department_dead_lettered_at'), 'dead_letters', ['department', 'dead_lettered_at'], unique=False)
    op.create_index(op.f('ix_dead_letters_reason_dead_lettered_at'), 'dead_letters', ['reason', 'dead_lettered_at'], unique=False)

    op.create_table('material_links',
    sa.Column('material_a', sa.String(), nullable=False),
    sa.Column('material_b', sa.String(), nullable=False),
    sa.Column('verdict', sa.String(), nullable=False),
    sa.Column('differing_fields', sa.Text(), nullable=False),
    sa.Column('holders_differ', sa.Boolean(), nullable=False),
    sa.Column('avoidable_material', sa.String(), nullable=True),
    sa.Column('case_a', sa.String(), nullable=True),
    sa.Column('case_b', sa.String(), nullable=True),
    sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source_timestamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('material_a', 'material_b', name=op.f('pk_material_links'))
    )
    op.create_index(op.f('ix_material_links_avoidable_material'), 'material_links', ['avoidable_material'], unique=False)
    op.create_index(op.f('ix_material_links_material_b'), 'material_links', ['material_b'], unique=False)
    op.create_index(op.f('ix_material_links_verdict_found_at'), 'material_links', ['verdict', 'found_at'], unique=False)

    op.create_table('materials',
    sa.Column('material_id', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('material_type', sa.String(), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('holder_id_type', sa.String(), nullable=False),
    sa.Column('holder_id_hash', sa.String(length=64), nullable=False),
    sa.Column('holder_id_masked', sa.String(), nullable=False),
    sa.Column('holder_name', sa.Text(), nullable=True),
    sa.Column('document_number', sa.String(), nullable=True),
    sa.Column('document_number_hash', sa.String(length=64), nullable=True),
    sa.Column('document_number_masked', sa.String(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('form', sa.String(), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('declared_fields', sa.Text(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('case_id', sa.String(), nullable=False),
    sa.Column('department', sa.String(), nullable=False),
    sa.Column('task_id', sa.String(), nullable=True),
    sa.Column('event_id', sa.String(), nullable=False),
    sa.Column('avoidable', sa.Boolean(), nullable=False),
    sa.Column('source_timestamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('material_id', name=op.f('pk_materials'))
    )
    op.create_index(op.f('ix_materials_avoidable_occurred_at'), 'materials', ['avoidable', 'occurred_at'], unique=False)
    op.create_index(op.f('ix_materials_case_id'), 'materials', ['case_id'], unique=False)
    op.create_index(op.f('ix_materials_holder_id_type_holder_id_hash_occurred_at'), 'materials', ['holder_id_type', 'holder_id_hash', 'occurred_at'], unique=False)
    op.create_index(op.f('ix_materials_material_type_document_number_hash'), 'materials', ['material_type', 'document_number_hash'], unique=False)
    op.create_index(op.f('ix_materials_sha256'), 'materials', ['sha256'], unique=False)

    op.create_table('timeline_entries',
    sa.Column('case_id', sa.String(), nullable=False),
    sa.Column('event_id', sa.String(), nullable=False),
    sa.Column('event_type', sa.String(), nullable=False),
    sa.Column('department', sa.String(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('task_id', sa.String(), nullable=True),
    sa.Column('status', sa.String(), nullable=True),
    sa.Column('material_id', sa.String(), nullable=True),
    sa.Column('event_json', sa.Text(), nullable=False),
    sa.Column('source_topic', sa.String(length=255), nullable=False),
    sa.Column('source_partition', sa.Integer(), nullable=False),
    sa.Column('source_offset', sa.BigInteger(), nullable=False),
    sa.Column('source_timestamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('case_id', 'event_id', name=op.f('pk_timeline_entries'))
    )
    op.create_index(op.f('ix_timeline_entries_case_id_occurred_at_event_id'), 'timeline_entries', ['case_id', 'occurred_at', 'event_id'], unique=False)
    op.create_index(op.f('ix_timeline_entries_department_occurred_at'), 'timeline_entries', ['department', 'occurred_at'], unique=False)

    op.create_table('tasks',
    sa.Column('case_id', sa.String(), nullable=False),
    sa.Column('task_id', sa.String(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_tasks_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('case_id', 'task_id', name=op.f('pk_tasks'))
    )
    op.create_index(op.f('ix_tasks_department_status_updated_at'), 'tasks', ['department', 'status', 'updated_at'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_tasks_department_status_updated_at'), table_name='tasks')

    op.drop_table('tasks')
    op.drop_index(op.f('ix_timeline_entries_department_occurred_at'), table_name='timeline_entries')
    op.drop_index(op.f('ix_timeline_entries_case_id_occurred_at_event_id'), table_name='timeline_entries')

    op.drop_table('timeline_entries')
    op.drop_index(op.f('ix_materials_sha256'), table_name='materials')
    op.drop_index(op.f('ix_materials_material_type_document_number_hash'), table_name='materials')
    op.drop_index(op.f('ix_materials_holder_id_type_holder_id_hash_occurred_at'), table_name='materials')
    op.drop_index(op.f('ix_materials_case_id'), table_name='materials')
    op.drop_index(op.f('ix_materials_avoidable_occurred_at'), table_name='materials')

    op.drop_table('materials')
    op.drop_index(op.f('ix_material_links_verdict_found_at'), table_name='material_links')
    op.drop_index(op.f('ix_material_links_material_b'), table_name='material_links')
    op.drop_index(op.f('ix_material_links_avoidable_material'), table_name='material_links')

    op.drop_table('material_links')
    op.drop_index(op.f('ix_dead_letters_reason_dead_lettered_at'), table_name='dead_letters')
    op.drop_index(op.f('ix_dead_letters_department_dead_lettered_at'), table_name='dead_letters')
    op.drop_index(op.f('ix_dead_letters_dead_lettered_at'), table_name='dead_letters')
    op.drop_index(op.f('ix_dead_letters_case_id'), table_name='dead_letters')

    op.drop_table('dead_letters')
    op.drop_table('consumed_offsets')
    op.drop_index(op.f('ix_cases_window_id_accepted_at'), table_name='cases')
    op.drop_index(op.f('ix_cases_status_due_at'), table_name='cases')
    op.drop_index(op.f('ix_cases_service_code_accepted_at'), table_name='cases')
    op.drop_index(op.f('ix_cases_applicant_id_type_applicant_id_hash_accepted_at'), table_name='cases')
    op.drop_index(op.f('ix_cases_accepted_at'), table_name='cases')

    op.drop_table('cases')
