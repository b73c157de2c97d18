"""gateway key store: the departments' API keys (hashed)

Revision ID: g0001
Revises: (none)
Create Date: 2026-12-01

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from onewindow.read_model.types import UTCDateTime

revision: str = 'g0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('gateway',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'gateway_keys',
        sa.Column('key_id', sa.String(length=16), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('department', sa.String(length=64), nullable=False),
        sa.Column('label', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('revoked_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('key_id', name=op.f('pk_gateway_keys')),
        sa.UniqueConstraint('key_hash', name=op.f('uq_gateway_keys_key_hash')))
    op.create_index(op.f('ix_gateway_keys_department'), 'gateway_keys', ['department'])


def downgrade() -> None:
    op.drop_index(op.f('ix_gateway_keys_department'), table_name='gateway_keys')
    op.drop_table('gateway_keys')
