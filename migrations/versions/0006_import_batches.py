"""import batches: staged uploads of student lists (batch_intake)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.db import JSONType, UTCDateTime

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'import_batch',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('file_name', sa.String(length=200), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('file_key', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('rows_total', sa.Integer(), nullable=False),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('counts', JSONType, nullable=False),
        sa.Column('problems', JSONType, nullable=False),
        sa.Column('columns', JSONType, nullable=False),
        sa.Column('report_key', sa.String(length=64), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('finished_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['school_id'], ['org_unit.id']),
        sa.ForeignKeyConstraint(['created_by_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_import_batch_school_id', 'import_batch', ['school_id'])
    op.create_index('ix_import_batch_status', 'import_batch', ['status'])
    op.create_index('ix_import_batch_school_sha256', 'import_batch', ['school_id', 'sha256'])
    op.create_table(
        'import_row',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=False),
        sa.Column('row_number', sa.Integer(), nullable=False),
        sa.Column('data', JSONType, nullable=False),
        sa.Column('errors', JSONType, nullable=False),
        sa.Column('warnings', JSONType, nullable=False),
        sa.Column('outcome', sa.String(length=12), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('id_number', sa.String(length=30), nullable=True),
        sa.Column('id_aux', sa.String(length=40), nullable=False),
        sa.Column('student_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['batch_id'], ['import_batch.id']),
        sa.ForeignKeyConstraint(['student_id'], ['student.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('uq_import_row_batch_row', 'import_row', ['batch_id', 'row_number'], unique=True)
    op.create_index('ix_import_row_id_number', 'import_row', ['id_number'])


def downgrade() -> None:
    op.drop_index('ix_import_row_id_number', table_name='import_row')
    op.drop_index('uq_import_row_batch_row', table_name='import_row')
    op.drop_table('import_row')
    op.drop_index('ix_import_batch_school_sha256', table_name='import_batch')
    op.drop_index('ix_import_batch_status', table_name='import_batch')
    op.drop_index('ix_import_batch_school_id', table_name='import_batch')
    op.drop_table('import_batch')
