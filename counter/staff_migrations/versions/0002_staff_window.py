"""staff store: the counter window a member of staff works at (users and sessions)

Revision ID: s0002
Revises: s0001
Create Date: 2026-12-02

The home page lists the latest cases of the signed-in user's window (issue 16); the
local user store keeps it per user (``onewindow users add --window W07``,
``users set-window``), a session carries it as the principal had it at sign-in (as it
carries the roles). Nullable: a supervisor or an auditor sits at no window. Added in
place on both databases (SQLite adds a nullable column without a table copy).

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 's0002'
down_revision: str | Sequence[str] | None = 's0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('staff_users', sa.Column('window_id', sa.String(length=64), nullable=True))
    op.add_column('staff_sessions', sa.Column('window_id', sa.String(length=64),
                                              nullable=True))


def downgrade() -> None:
    raise NotImplementedError("the access log is append-only: the staff store has no "
                              "downgrade")
