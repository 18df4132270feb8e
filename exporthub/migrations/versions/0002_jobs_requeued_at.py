"""jobs.requeued_at: when housekeeping last handed a ready job back to the queue.

Without it every tick of every process re-queued every ready job older than 30 s, so a job waiting
behind busy workers piled up duplicate queue messages.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("requeued_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("requeued_at")
