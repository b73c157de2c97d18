"""staff store: users, API tokens, sessions, OIDC login states, the access log

Revision ID: s0001
Revises: (none)
Create Date: 2026-11-29

The access log is append-only in the database itself, not only in the app: triggers
refuse every UPDATE, and a DELETE of a row younger than 180 days (the retention minimum
of GB/T 22239-2019 level 3 and of the Cybersecurity Law, art. 21: logs kept at least six
months). The retention purge (onewindow.staff.access_log.purge) deletes only older rows.

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from onewindow.read_model.types import UTCDateTime

revision: str = 's0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('staff',)
depends_on: str | Sequence[str] | None = None

MIN_RETENTION_DAYS = 180

_SQLITE = [
    """CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
       BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END""",
    f"""CREATE TRIGGER access_log_no_early_delete BEFORE DELETE ON access_log
       WHEN OLD.at > strftime('%Y-%m-%d %H:%M:%f', 'now', '-{MIN_RETENTION_DAYS} days')
       BEGIN SELECT RAISE(ABORT, 'access_log rows are kept {MIN_RETENTION_DAYS} days'); END""",
]
_POSTGRES = [
    f"""CREATE FUNCTION access_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' THEN
            RAISE EXCEPTION 'access_log is append-only';
          END IF;
          IF OLD.at > now() - interval '{MIN_RETENTION_DAYS} days' THEN
            RAISE EXCEPTION 'access_log rows are kept {MIN_RETENTION_DAYS} days';
          END IF;
          RETURN OLD;
        END $$""",
    """CREATE TRIGGER access_log_guard BEFORE UPDATE OR DELETE ON access_log
       FOR EACH ROW EXECUTE FUNCTION access_log_guard()""",
    # TRUNCATE fires no row trigger: refuse it too
    """CREATE FUNCTION access_log_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'access_log is append-only'; END $$""",
    """CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
       FOR EACH STATEMENT EXECUTE FUNCTION access_log_no_truncate()""",
]


def upgrade() -> None:
    op.create_table(
        'staff_users',
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('display_name', sa.Text(), nullable=False),
        sa.Column('roles', sa.Text(), nullable=False),
        sa.Column('password_hash', sa.Text(), nullable=False),
        sa.Column('disabled', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False),
        sa.Column('locked_until', UTCDateTime(), nullable=True),
        sa.Column('password_changed_at', UTCDateTime(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('last_login_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('username', name=op.f('pk_staff_users')))
    op.create_table(
        'staff_api_tokens',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('label', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('revoked_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['username'], ['staff_users.username'],
                                name=op.f('fk_staff_api_tokens_username_staff_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_staff_api_tokens')))
    op.create_index(op.f('ix_staff_api_tokens_username'), 'staff_api_tokens', ['username'])
    op.create_table(
        'staff_sessions',
        sa.Column('session_hash', sa.String(length=64), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('roles', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('last_seen_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('session_hash', name=op.f('pk_staff_sessions')))
    op.create_index(op.f('ix_staff_sessions_expires_at'), 'staff_sessions', ['expires_at'])
    op.create_index(op.f('ix_staff_sessions_subject'), 'staff_sessions', ['subject'])
    op.create_table(
        'staff_login_states',
        sa.Column('state_hash', sa.String(length=64), nullable=False),
        sa.Column('data', sa.Text(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_staff_login_states')))
    op.create_table(
        'access_log',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('roles', sa.Text(), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('target', sa.Text(), nullable=True),
        sa.Column('client', sa.String(length=64), nullable=False),
        sa.Column('result', sa.String(length=32), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_access_log')))
    op.create_index(op.f('ix_access_log_at'), 'access_log', ['at'])
    op.create_index(op.f('ix_access_log_subject_at'), 'access_log', ['subject', 'at'])
    op.create_index(op.f('ix_access_log_action_at'), 'access_log', ['action', 'at'])
    op.create_index(op.f('ix_access_log_target_at'), 'access_log', ['target', 'at'])
    for stmt in _POSTGRES if op.get_bind().dialect.name == 'postgresql' else _SQLITE:
        op.execute(stmt)


def downgrade() -> None:
    raise NotImplementedError("the access log is append-only: the staff store has no "
                              "downgrade")
