"""county policy

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('county_policy',
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('key_field_grace_days', sa.Integer(), nullable=False),
    sa.Column('key_field_lock_dates', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_county_policy_org_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('org_unit_id', name=op.f('pk_county_policy'))
    )


def downgrade() -> None:
    op.drop_table('county_policy')
