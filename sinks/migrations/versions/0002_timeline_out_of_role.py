"""timeline: out_of_role, the mark of a TaskUpdated from another department than its task's

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

CaseActivity v2 carries ``out_of_role`` (domain.md section 3, "Who may change a task");
the timeline keeps it. Rows written before are not out of role (the fold did not tell
then), so the column is NOT NULL with a server default of false, on SQLite as on
PostgreSQL. SQLite alters through a batch (copy and move), PostgreSQL in place.

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('timeline_entries') as batch_op:
        batch_op.add_column(sa.Column('out_of_role', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('timeline_entries') as batch_op:
        batch_op.drop_column('out_of_role')
