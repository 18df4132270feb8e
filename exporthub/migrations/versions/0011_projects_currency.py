"""projects.currency: the currency a project's costs are in (shown on cost figures), EUR by default.

Revision ID: 0011
Revises: 0006 (when merged after 0007–0010, this revises the newest of them)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("currency", sa.String(3), nullable=False, server_default="EUR"))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("currency")
