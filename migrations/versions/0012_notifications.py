"""notifications, task reminders and the county's working-day calendar (issue 6)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.db import UTCDateTime

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'notification',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('dedup_key', sa.String(length=200), nullable=False),
        sa.Column('recipient_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=True),
        sa.Column('instance_id', sa.Integer(), nullable=True),
        sa.Column('org_unit_id', sa.Integer(), nullable=True),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('link', sa.String(length=300), nullable=True),
        sa.Column('address', sa.String(length=500), nullable=True),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('transport', sa.String(length=10), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('next_attempt_at', UTCDateTime(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('sent_at', UTCDateTime(), nullable=True),
        sa.Column('read_at', UTCDateTime(), nullable=True),
        sa.Column('digest_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['recipient_id'], ['app_user.id'], name=op.f('fk_notification_recipient_id_app_user')),
        sa.ForeignKeyConstraint(['task_id'], ['human_task.id'], name=op.f('fk_notification_task_id_human_task'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'],
                                name=op.f('fk_notification_instance_id_process_instance'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_notification_org_unit_id_org_unit')),
        sa.ForeignKeyConstraint(['digest_id'], ['notification.id'], name=op.f('fk_notification_digest_id_notification')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
        sa.UniqueConstraint('dedup_key', name=op.f('uq_notification_dedup_key')),
    )
    op.create_index('ix_notification_bell', 'notification', ['recipient_id', 'channel', 'read_at'])
    op.create_index('ix_notification_due', 'notification', ['status', 'next_attempt_at'])
    op.create_index(op.f('ix_notification_org_unit_id'), 'notification', ['org_unit_id'])

    op.create_table(
        'notification_preference',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('in_app', sa.Boolean(), nullable=False),
        sa.Column('email', sa.Boolean(), nullable=False),
        sa.Column('email_address', sa.String(length=254), nullable=True),
        sa.Column('webhook', sa.Boolean(), nullable=False),
        sa.Column('webhook_url', sa.String(length=500), nullable=True),
        sa.Column('digest', sa.Boolean(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_notification_preference_user_id_app_user')),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_preference')),
    )

    op.create_table(
        'task_reminder',
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('next_at', UTCDateTime(), nullable=True),
        sa.Column('due_at', UTCDateTime(), nullable=False),
        sa.Column('last_step', sa.String(length=60), nullable=True),
        sa.Column('escalated_at', UTCDateTime(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['task_id'], ['human_task.id'], name=op.f('fk_task_reminder_task_id_human_task'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('task_id', name=op.f('pk_task_reminder')),
    )
    op.create_index(op.f('ix_task_reminder_next_at'), 'task_reminder', ['next_at'])
    op.create_index(op.f('ix_task_reminder_escalated_at'), 'task_reminder', ['escalated_at'])
    # Tasks already open get their first look at the next scan.
    op.execute("INSERT INTO task_reminder (task_id, next_at, due_at) "
               "SELECT id, created_at, due_at FROM human_task WHERE status = 'open' AND due_at IS NOT NULL")

    for table, column, kind in (('work_calendar_day', 'day', sa.Date()), ('work_calendar_year', 'year', sa.Integer())):
        extra = [sa.Column('working', sa.Boolean(), nullable=False)] if table == 'work_calendar_day' else []
        op.create_table(
            table,
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('org_unit_id', sa.Integer(), nullable=False),
            sa.Column(column, kind, nullable=False),
            *extra,
            sa.Column('note', sa.String(length=100), nullable=False),
            sa.Column('created_by_id', sa.Integer(), nullable=True),
            sa.Column('created_at', UTCDateTime(), nullable=False),
            sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f(f'fk_{table}_org_unit_id_org_unit')),
            sa.ForeignKeyConstraint(['created_by_id'], ['app_user.id'], name=op.f(f'fk_{table}_created_by_id_app_user')),
            sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}')),
            sa.UniqueConstraint('org_unit_id', column, name=op.f(f'uq_{table}_org_unit_id')),
        )


def downgrade() -> None:
    op.drop_table('work_calendar_year')
    op.drop_table('work_calendar_day')
    op.drop_table('task_reminder')
    op.drop_table('notification_preference')
    op.drop_table('notification')
