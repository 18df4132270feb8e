"""Workers and periodic runs: what each worker process reports, and the lease of each periodic task.

``workers`` lets operators see the fleet (``exporthub workers``, the admin page, /metrics);
``periodic_runs`` makes retention and housekeeping run once per period across all processes: a run
starts only by winning a conditional update of its row on the database's clock.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa

from exporthub.migrations.tables import Tables, create_tables, drop_tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(_tables())


def downgrade() -> None:
    drop_tables(_tables())


def _tables() -> Tables:
    return {
        "workers": [
            sa.Column("id", sa.String(200), primary_key=True),
            sa.Column("host", sa.String(200), nullable=False),
            sa.Column("pid", sa.Integer, nullable=False),
            sa.Column("version", sa.String(40), nullable=False),
            sa.Column("started_at", sa.DateTime, nullable=False),
            sa.Column("last_seen_at", sa.DateTime, nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("detail", sa.Text),
            sa.Column("threads", sa.Integer, nullable=False),
        ],
        "periodic_runs": [
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("started_at", sa.DateTime),
            sa.Column("finished_at", sa.DateTime),
            sa.Column("holder", sa.String(200)),
            sa.Column("runs", sa.Integer, nullable=False),
        ],
    }
