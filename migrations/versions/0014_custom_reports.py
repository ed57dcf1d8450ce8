"""saved custom report definitions and other departments' statistics per township (issue 7, Art. 12 and 18)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.db import JSONType, UTCDateTime

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'custom_report',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('county_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('definition', JSONType, nullable=False),
        sa.Column('shared', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['app_user.id'], name=op.f('fk_custom_report_owner_id_app_user')),
        sa.ForeignKeyConstraint(['county_id'], ['org_unit.id'], name=op.f('fk_custom_report_county_id_org_unit')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_custom_report')),
    )
    op.create_index(op.f('ix_custom_report_owner_id'), 'custom_report', ['owner_id'])
    op.create_index(op.f('ix_custom_report_county_id'), 'custom_report', ['county_id'])
    op.create_table(
        'external_statistic',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('county_id', sa.Integer(), nullable=False),
        sa.Column('township_id', sa.Integer(), nullable=False),
        sa.Column('school_year', sa.Integer(), nullable=False),
        sa.Column('indicator', sa.String(length=60), nullable=False),
        sa.Column('source', sa.String(length=100), nullable=False),
        sa.Column('value', sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column('imported_by_id', sa.Integer(), nullable=False),
        sa.Column('imported_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['county_id'], ['org_unit.id'], name=op.f('fk_external_statistic_county_id_org_unit')),
        sa.ForeignKeyConstraint(['township_id'], ['org_unit.id'],
                                name=op.f('fk_external_statistic_township_id_org_unit')),
        sa.ForeignKeyConstraint(['imported_by_id'], ['app_user.id'],
                                name=op.f('fk_external_statistic_imported_by_id_app_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_external_statistic')),
        sa.UniqueConstraint('county_id', 'school_year', 'indicator', 'township_id',
                            name=op.f('uq_external_statistic_county_id')),
    )


def downgrade() -> None:
    op.drop_table('external_statistic')
    op.drop_index(op.f('ix_custom_report_county_id'), table_name='custom_report')
    op.drop_index(op.f('ix_custom_report_owner_id'), table_name='custom_report')
    op.drop_table('custom_report')
