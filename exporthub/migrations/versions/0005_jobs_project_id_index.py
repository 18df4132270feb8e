"""jobs (project_id, id): the job list's own index.

The job list shows a project's jobs newest first (``ORDER BY id DESC``), and the only index by project
was ``(project_id, created_at)``, so every call sorted the project's whole history: 67 ms for a page of
50 out of 10k jobs, against about 20 ms when the index hands the rows over in order.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_project_id", "jobs", ["project_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_project_id", table_name="jobs")
