"""spot checks (抽查, Art. 25, 26): the check, its sampled schools and students, rectification rounds

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.db import JSONType, UTCDateTime

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'spot_check',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('county_id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('seed', sa.BigInteger(), nullable=False),
        sa.Column('params', JSONType, nullable=False),
        sa.Column('eligible_schools', JSONType, nullable=False),
        sa.Column('notes', JSONType, nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=True),
        sa.Column('started_by_id', sa.Integer(), nullable=False),
        sa.Column('started_at', UTCDateTime(), nullable=False),
        sa.Column('conclusion', sa.Text(), nullable=True),
        sa.Column('concluded_by_id', sa.Integer(), nullable=True),
        sa.Column('concluded_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['county_id'], ['org_unit.id']),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id']),
        sa.ForeignKeyConstraint(['started_by_id'], ['app_user.id']),
        sa.ForeignKeyConstraint(['concluded_by_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_spot_check_county_id', 'spot_check', ['county_id'])
    op.create_index('ix_spot_check_instance_id', 'spot_check', ['instance_id'])
    op.create_table(
        'spot_check_school',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('check_id', sa.Integer(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=True),
        sa.Column('eligible', sa.Integer(), nullable=False),
        sa.Column('candidate_ids', JSONType, nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('evidence_by_id', sa.Integer(), nullable=True),
        sa.Column('evidence_at', UTCDateTime(), nullable=True),
        sa.Column('findings_by_id', sa.Integer(), nullable=True),
        sa.Column('findings_at', UTCDateTime(), nullable=True),
        sa.Column('findings_summary', sa.Text(), nullable=True),
        sa.Column('closed_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['check_id'], ['spot_check.id']),
        sa.ForeignKeyConstraint(['school_id'], ['org_unit.id']),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id']),
        sa.ForeignKeyConstraint(['evidence_by_id'], ['app_user.id']),
        sa.ForeignKeyConstraint(['findings_by_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('check_id', 'school_id', name='uq_spot_check_school_check_id'),
    )
    op.create_index('ix_spot_check_school_check_id', 'spot_check_school', ['check_id'])
    op.create_index('ix_spot_check_school_school_id', 'spot_check_school', ['school_id'])
    op.create_index('ix_spot_check_school_instance_id', 'spot_check_school', ['instance_id'])
    op.create_index('ix_spot_check_school_status', 'spot_check_school', ['status'])
    op.create_table(
        'spot_check_student',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('part_id', sa.Integer(), nullable=False),
        sa.Column('student_id', sa.Integer(), nullable=False),
        sa.Column('matched', JSONType, nullable=False),
        sa.Column('recorded', JSONType, nullable=False),
        sa.Column('present', sa.Boolean(), nullable=True),
        sa.Column('evidence_note', sa.Text(), nullable=True),
        sa.Column('scan_id', sa.Integer(), nullable=True),
        sa.Column('finding', sa.String(length=20), nullable=True),
        sa.Column('finding_note', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['part_id'], ['spot_check_school.id']),
        sa.ForeignKeyConstraint(['student_id'], ['student.id']),
        sa.ForeignKeyConstraint(['scan_id'], ['attachment.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('part_id', 'student_id', name='uq_spot_check_student_part_id'),
    )
    op.create_index('ix_spot_check_student_part_id', 'spot_check_student', ['part_id'])
    op.create_index('ix_spot_check_student_student_id', 'spot_check_student', ['student_id'])
    op.create_table(
        'spot_check_rectification',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('part_id', sa.Integer(), nullable=False),
        sa.Column('round', sa.Integer(), nullable=False),
        sa.Column('report', sa.Text(), nullable=False),
        sa.Column('measures', JSONType, nullable=False),
        sa.Column('submitted_by_id', sa.Integer(), nullable=False),
        sa.Column('submitted_at', UTCDateTime(), nullable=False),
        sa.Column('decision', sa.String(length=20), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('verified_by_id', sa.Integer(), nullable=True),
        sa.Column('verified_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['part_id'], ['spot_check_school.id']),
        sa.ForeignKeyConstraint(['submitted_by_id'], ['app_user.id']),
        sa.ForeignKeyConstraint(['verified_by_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('part_id', 'round', name='uq_spot_check_rectification_part_id'),
    )
    op.create_index('ix_spot_check_rectification_part_id', 'spot_check_rectification', ['part_id'])


def downgrade() -> None:
    op.drop_index('ix_spot_check_rectification_part_id', table_name='spot_check_rectification')
    op.drop_table('spot_check_rectification')
    op.drop_index('ix_spot_check_student_student_id', table_name='spot_check_student')
    op.drop_index('ix_spot_check_student_part_id', table_name='spot_check_student')
    op.drop_table('spot_check_student')
    op.drop_index('ix_spot_check_school_status', table_name='spot_check_school')
    op.drop_index('ix_spot_check_school_instance_id', table_name='spot_check_school')
    op.drop_index('ix_spot_check_school_school_id', table_name='spot_check_school')
    op.drop_index('ix_spot_check_school_check_id', table_name='spot_check_school')
    op.drop_table('spot_check_school')
    op.drop_index('ix_spot_check_instance_id', table_name='spot_check')
    op.drop_index('ix_spot_check_county_id', table_name='spot_check')
    op.drop_table('spot_check')
