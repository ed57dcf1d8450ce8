"""student search indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Measured in bench/RESULTS.md (student search). `postgresql_ops` is ignored on SQLite, where a plain
index serves the prefix match because registry/student_lists.py matches names there with GLOB.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_student_student_number', 'student', ['student_number'])
    op.create_index('ix_student_school_id_name', 'student', ['school_id', 'name'],
                    postgresql_ops={'name': 'varchar_pattern_ops'})
    # (school_id, id) serves everything (school_id) did, and a school's first page in id order.
    op.create_index('ix_student_school_id_id', 'student', ['school_id', 'id'])
    op.drop_index('ix_student_school_id', table_name='student')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_org_unit_path', table_name='org_unit')
        op.create_index('ix_org_unit_path', 'org_unit', ['path'], postgresql_ops={'path': 'varchar_pattern_ops'})


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_org_unit_path', table_name='org_unit')
        op.create_index('ix_org_unit_path', 'org_unit', ['path'])
    op.create_index('ix_student_school_id', 'student', ['school_id'])
    op.drop_index('ix_student_school_id_id', table_name='student')
    op.drop_index('ix_student_school_id_name', table_name='student')
    op.drop_index('ix_student_student_number', table_name='student')
