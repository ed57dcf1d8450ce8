"""enrolment periods carry the pupil's grade, class, boarding mode, 一补, left-behind and migrant flags of their months, so that a
later change (from its month) never rewrites the figures of months already past (issue 7)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""
import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALUES = ('grade', 'class_name', 'boarding_mode', 'boarding_allowance', 'left_behind', 'migrant_child')


def upgrade() -> None:
    with op.batch_alter_table('enrolment_period') as batch:
        batch.add_column(sa.Column('grade', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('class_name', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('boarding_mode', sa.String(length=1), nullable=True))
        batch.add_column(sa.Column('boarding_allowance', sa.Boolean(), nullable=True))
        batch.add_column(sa.Column('left_behind', sa.String(length=1), nullable=True))
        batch.add_column(sa.Column('migrant_child', sa.Boolean(), nullable=True))
    # Until now the record's current values stood for every month: they are the best history there is.
    for column in VALUES:
        op.execute(f'UPDATE enrolment_period SET {column} = '
                   f'(SELECT student.{column} FROM student WHERE student.id = enrolment_period.student_id)')
    # SQLite rebuilds the table to make the columns NOT NULL, reflecting the tables it refers to on the
    # way; student's expression index (uq_student_active_id_number) is one reflection skips, with a warning.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        _not_null()


def _not_null() -> None:
    with op.batch_alter_table('enrolment_period') as batch:
        batch.alter_column('grade', existing_type=sa.Integer(), nullable=False)
        batch.alter_column('class_name', existing_type=sa.String(length=40), nullable=False)
        batch.alter_column('boarding_mode', existing_type=sa.String(length=1), nullable=False)
        batch.alter_column('boarding_allowance', existing_type=sa.Boolean(), nullable=False)
        batch.alter_column('migrant_child', existing_type=sa.Boolean(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('enrolment_period') as batch:
        for column in reversed(VALUES):
            batch.drop_column(column)
