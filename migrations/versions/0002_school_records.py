"""school records

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('school',
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('sponsor_type', sa.String(length=3), nullable=True),
    sa.Column('urban_rural', sa.String(length=3), nullable=True),
    sa.Column('school_type', sa.String(length=3), nullable=True),
    sa.Column('subsidy_rate', sa.Numeric(precision=6, scale=2), nullable=True),
    sa.Column('meal_model', sa.String(length=2), nullable=True),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('postcode', sa.String(length=6), nullable=True),
    sa.Column('phone', sa.String(length=30), nullable=True),
    sa.Column('fax', sa.String(length=30), nullable=True),
    sa.Column('email', sa.String(length=100), nullable=True),
    sa.Column('website', sa.String(length=200), nullable=True),
    sa.Column('principal_name', sa.String(length=50), nullable=True),
    sa.Column('principal_phone', sa.String(length=30), nullable=True),
    sa.Column('principal_mobile', sa.String(length=11), nullable=True),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_school_org_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('org_unit_id', name=op.f('pk_school'))
    )
    # Schools entered before this revision get an empty record for the county to complete.
    op.execute("INSERT INTO school (org_unit_id) SELECT id FROM org_unit WHERE kind = 'school'")


def downgrade() -> None:
    op.drop_table('school')
