"""a deployed version can be retired: new instances then start on the newest version still in use (issue 8)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.db import UTCDateTime

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('process_version') as batch:
        batch.add_column(sa.Column('retired_at', UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('process_version') as batch:
        batch.drop_column('retired_at')
