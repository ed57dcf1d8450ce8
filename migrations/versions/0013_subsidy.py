"""subsidy rates with effective months (national ones seeded), the county's school calendar, schools'
meal models by month, submitted report snapshots (issue 7), and the autumn cycle per school and year
with the county's start day (issue 5)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.db import JSONType, UTCDateTime

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The national standards (DESIGN.md): the meal subsidy 3 元/天 from autumn 2011, 4 from November 2014,
# 5 from autumn 2021, 200 days a year; 一补 for boarders 4 (primary) and 5 (junior) 元/天, 250 days.
NATIONAL_RATES = [
    ('meal', '2011-09', '3.00', 200, '营养改善计划启动（国办发〔2011〕54号）'),
    ('meal', '2014-11', '4.00', 200, '标准提高到每生每天 4 元'),
    ('meal', '2021-09', '5.00', 200, '标准提高到每生每天 5 元（2021 年秋季学期起）'),
    ('allowance_primary', '2011-09', '4.00', 250, '家庭经济困难寄宿生生活补助，小学'),
    ('allowance_junior', '2011-09', '5.00', 250, '家庭经济困难寄宿生生活补助，初中'),
]


def upgrade() -> None:
    rate = op.create_table(
        'subsidy_rate',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('county_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('effective_month', sa.String(length=7), nullable=False),
        sa.Column('per_day', sa.Numeric(precision=8, scale=2), nullable=False),
        sa.Column('days_per_year', sa.Integer(), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['county_id'], ['org_unit.id'], name=op.f('fk_subsidy_rate_county_id_org_unit')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_subsidy_rate')),
        sa.UniqueConstraint('county_id', 'kind', 'effective_month',
                            name=op.f('uq_subsidy_rate_county_id')),
    )
    op.bulk_insert(rate, [{'county_id': None, 'kind': k, 'effective_month': m, 'per_day': d, 'days_per_year': n,
                           'note': note} for k, m, d, n, note in NATIONAL_RATES])
    op.create_table(
        'school_calendar_month',
        sa.Column('county_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('school_days', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['county_id'], ['org_unit.id'],
                                name=op.f('fk_school_calendar_month_county_id_org_unit')),
        sa.PrimaryKeyConstraint('county_id', 'month', name=op.f('pk_school_calendar_month')),
    )
    op.create_table(
        'school_meal_model',
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('effective_month', sa.String(length=7), nullable=False),
        sa.Column('meal_model', sa.String(length=2), nullable=True),
        sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], name=op.f('fk_school_meal_model_school_id_org_unit')),
        sa.PrimaryKeyConstraint('school_id', 'effective_month', name=op.f('pk_school_meal_model')),
    )
    op.create_table(
        'report_snapshot',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_unit_id', sa.Integer(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('month', sa.Integer(), nullable=True),
        sa.Column('figures', JSONType, nullable=False),
        sa.Column('submitted_by_id', sa.Integer(), nullable=False),
        sa.Column('submitted_at', UTCDateTime(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_report_snapshot_org_unit_id_org_unit')),
        sa.ForeignKeyConstraint(['submitted_by_id'], ['app_user.id'],
                                name=op.f('fk_report_snapshot_submitted_by_id_app_user')),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'],
                                name=op.f('fk_report_snapshot_instance_id_process_instance')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_snapshot')),
    )
    op.create_index('ix_report_snapshot_unit_period', 'report_snapshot', ['org_unit_id', 'year', 'month'])
    op.create_table(
        'annual_cycle',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('school_year', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=True),
        sa.Column('starts_at', UTCDateTime(), nullable=False),
        sa.Column('new_students', JSONType, nullable=True),
        sa.Column('roster_filed_at', UTCDateTime(), nullable=True),
        sa.Column('roster_filed_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], name=op.f('fk_annual_cycle_school_id_org_unit')),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'],
                                name=op.f('fk_annual_cycle_instance_id_process_instance')),
        sa.ForeignKeyConstraint(['roster_filed_by_id'], ['app_user.id'],
                                name=op.f('fk_annual_cycle_roster_filed_by_id_app_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_annual_cycle')),
        sa.UniqueConstraint('school_id', 'school_year', name=op.f('uq_annual_cycle_school_id')),
    )
    with op.batch_alter_table('county_policy') as batch:
        batch.add_column(sa.Column('cycle_start', sa.String(length=5), nullable=False, server_default='09-01'))
    # The reports read a county's enrolment periods by school.
    op.create_index('ix_enrolment_period_school_id_from_month', 'enrolment_period', ['school_id', 'from_month'])


def downgrade() -> None:
    op.drop_index('ix_enrolment_period_school_id_from_month', table_name='enrolment_period')
    with op.batch_alter_table('county_policy') as batch:
        batch.drop_column('cycle_start')
    op.drop_table('annual_cycle')
    op.drop_index('ix_report_snapshot_unit_period', table_name='report_snapshot')
    op.drop_table('report_snapshot')
    op.drop_table('school_meal_model')
    op.drop_table('school_calendar_month')
    op.drop_table('subsidy_rate')
