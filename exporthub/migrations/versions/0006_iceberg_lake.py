"""The lake becomes Apache Iceberg: the SQL catalog's tables, a job's snapshot, snapshot watermarks.

- ``iceberg_tables`` and ``iceberg_namespace_properties``: pyiceberg's SQL catalog (schema v1), here
  so that the metadata DB's schema stays owned by our migrations (pyiceberg is told not to make them).
- ``jobs.lake_snapshot``: the Iceberg snapshot id of each lake table the job read (its data cut-off).
- ``export_sessions.snapshot_id``: the scans snapshot an export read; "only new since last export"
  starts there (an incremental append scan). Rows recorded before the Iceberg lake keep it empty and
  fall back to their scan-id watermark.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from exporthub.migrations.tables import Tables, create_tables, drop_tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(_catalog_tables())
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lake_snapshot", sa.JSON, nullable=True))
    with op.batch_alter_table("export_sessions") as batch:
        batch.add_column(sa.Column("snapshot_id", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("export_sessions") as batch:
        batch.drop_column("snapshot_id")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lake_snapshot")
    drop_tables(_catalog_tables())


def _catalog_tables() -> Tables:
    """pyiceberg's SQL catalog, schema v1."""
    return {
        "iceberg_tables": [
            sa.Column("catalog_name", sa.String(255), primary_key=True),
            sa.Column("table_namespace", sa.String(255), primary_key=True),
            sa.Column("table_name", sa.String(255), primary_key=True),
            sa.Column("metadata_location", sa.String(1000), nullable=True),
            sa.Column("previous_metadata_location", sa.String(1000), nullable=True),
            sa.Column("iceberg_type", sa.String(5), nullable=True),
        ],
        "iceberg_namespace_properties": [
            sa.Column("catalog_name", sa.String(255), primary_key=True),
            sa.Column("namespace", sa.String(255), primary_key=True),
            sa.Column("property_key", sa.String(255), primary_key=True),
            sa.Column("property_value", sa.String(1000), nullable=False),
        ],
    }
