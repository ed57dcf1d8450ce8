"""key-field change requests and graduation lists

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.db import JSONType, UTCDateTime

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'key_field_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('student_id', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=True),
        sa.Column('changes', JSONType, nullable=False),
        sa.Column('before', JSONType, nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('filed_by_id', sa.Integer(), nullable=False),
        sa.Column('filed_at', UTCDateTime(), nullable=False),
        sa.Column('closed_at', UTCDateTime(), nullable=True),
        sa.Column('close_comment', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['student_id'], ['student.id']),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id']),
        sa.ForeignKeyConstraint(['filed_by_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_key_field_request_student_id', 'key_field_request', ['student_id'])
    op.create_index('ix_key_field_request_instance_id', 'key_field_request', ['instance_id'])
    op.create_table(
        'graduation_batch',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('grade', sa.Integer(), nullable=False),
        sa.Column('effective_month', sa.String(length=7), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=True),
        sa.Column('filed_by_id', sa.Integer(), nullable=False),
        sa.Column('filed_at', UTCDateTime(), nullable=False),
        sa.Column('closed_at', UTCDateTime(), nullable=True),
        sa.Column('close_comment', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['school_id'], ['org_unit.id']),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id']),
        sa.ForeignKeyConstraint(['filed_by_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_graduation_batch_school_id', 'graduation_batch', ['school_id'])
    op.create_index('ix_graduation_batch_instance_id', 'graduation_batch', ['instance_id'])
    op.create_table(
        'graduation_entry',
        sa.Column('batch_id', sa.Integer(), nullable=False),
        sa.Column('student_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['graduation_batch.id']),
        sa.ForeignKeyConstraint(['student_id'], ['student.id']),
        sa.PrimaryKeyConstraint('batch_id', 'student_id'),
    )
    op.create_index('ix_graduation_entry_student_id', 'graduation_entry', ['student_id'])


def downgrade() -> None:
    op.drop_index('ix_graduation_entry_student_id', table_name='graduation_entry')
    op.drop_table('graduation_entry')
    op.drop_index('ix_graduation_batch_instance_id', table_name='graduation_batch')
    op.drop_index('ix_graduation_batch_school_id', table_name='graduation_batch')
    op.drop_table('graduation_batch')
    op.drop_index('ix_key_field_request_instance_id', table_name='key_field_request')
    op.drop_index('ix_key_field_request_student_id', table_name='key_field_request')
    op.drop_table('key_field_request')
