"""the autumn cycle keeps the scans of its latest roster round, which are the ones filed once the county
accepts the roster (Art. 16 备案): after a return the instance holds both rounds' scans

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.db import JSONType

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('annual_cycle') as batch:
        batch.add_column(sa.Column('roster_scans', JSONType, nullable=True))
    # Cycles already past a roster round (filed, or with the county): that round's task's attachments, the
    # best record there is of what was sent, so that a filing after the upgrade does not file nothing.
    conn = op.get_bind()
    cycle = sa.table('annual_cycle', sa.column('id', sa.Integer()), sa.column('roster_scans', JSONType))
    rounds = conn.execute(sa.text(
        "SELECT c.id, max(t.id) FROM annual_cycle c JOIN human_task t ON t.instance_id = c.instance_id "
        "WHERE t.task_id = 'upload_roster' AND t.status = 'completed' GROUP BY c.id")).all()
    for cycle_id, task_id in rounds:
        scans = conn.execute(sa.text("SELECT id, file_name FROM attachment WHERE task_id = :task ORDER BY id"),
                             {"task": task_id}).all()
        conn.execute(cycle.update().where(cycle.c.id == cycle_id)
                     .values(roster_scans=[{"id": i, "file_name": name} for i, name in scans]))


def downgrade() -> None:
    with op.batch_alter_table('annual_cycle') as batch:
        batch.drop_column('roster_scans')
