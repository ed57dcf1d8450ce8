"""data releases (信息提供审批, Art. 24): the request, its file and its download grant

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.db import JSONType, UTCDateTime

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'data_release',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=True),
        sa.Column('requested_by_id', sa.Integer(), nullable=False),
        sa.Column('requester_role', sa.String(length=40), nullable=False),
        sa.Column('org_unit_id', sa.Integer(), nullable=False),
        sa.Column('scope', JSONType, nullable=False),
        sa.Column('fields', JSONType, nullable=False),
        sa.Column('full', JSONType, nullable=False),
        sa.Column('purpose', sa.Text(), nullable=False),
        sa.Column('recipient_department', sa.String(length=100), nullable=False),
        sa.Column('recipient_person', sa.String(length=50), nullable=False),
        sa.Column('valid_days', sa.Integer(), nullable=False),
        sa.Column('max_downloads', sa.Integer(), nullable=False),
        sa.Column('rows_requested', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('requested_at', UTCDateTime(), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', UTCDateTime(), nullable=True),
        sa.Column('close_comment', sa.Text(), nullable=True),
        sa.Column('rows', sa.Integer(), nullable=True),
        sa.Column('file_key', sa.String(length=64), nullable=True),
        sa.Column('file_size', sa.Integer(), nullable=True),
        sa.Column('token', sa.String(length=64), nullable=True),
        sa.Column('expires_at', UTCDateTime(), nullable=True),
        sa.Column('downloads', sa.Integer(), nullable=False),
        sa.Column('purged_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id']),
        sa.ForeignKeyConstraint(['requested_by_id'], ['app_user.id']),
        sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id']),
        sa.ForeignKeyConstraint(['decided_by_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token'),
    )
    op.create_index('ix_data_release_instance_id', 'data_release', ['instance_id'])
    op.create_index('ix_data_release_requested_by_id', 'data_release', ['requested_by_id'])
    op.create_index('ix_data_release_org_unit_id', 'data_release', ['org_unit_id'])


def downgrade() -> None:
    op.drop_index('ix_data_release_org_unit_id', table_name='data_release')
    op.drop_index('ix_data_release_requested_by_id', table_name='data_release')
    op.drop_index('ix_data_release_instance_id', table_name='data_release')
    op.drop_table('data_release')
