"""Server-side login sessions, single-use sign-in tickets and per-user API tokens.

- ``sessions``: one row per browser login. The cookie carries only the signed session id; the row
  (keyed by the id's sha256) says whose it is, when it was last seen and whether it ended, so logout,
  deactivation, a password change or an admin end it at once, on every web replica.
- ``login_tickets``: the one-time tickets the login form hands the browser, kept in the database so a
  ticket works once across all replicas, and bound to the browser that asked for it (the sha256 of a
  nonce cookie).
- ``api_tokens``: tokens for scripts (``Authorization: Bearer``), stored as sha256 only.
- ``login_attempts.pending`` / ``pending_until``: attempts admitted and still being checked, so the
  lockout counts an attempt before argon2 runs without counting it as a failure (see lockout.py).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("user_agent", sa.String(300)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime),
        sa.Column("end_reason", sa.String(32)),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "login_tickets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("browser", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("used_at", sa.DateTime),
    )
    op.create_index("ix_login_tickets_expires_at", "login_tickets", ["expires_at"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime),
        sa.Column("last_used_at", sa.DateTime),
        sa.Column("revoked_at", sa.DateTime),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    with op.batch_alter_table("login_attempts") as batch:
        batch.add_column(sa.Column("pending", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("pending_until", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("login_attempts") as batch:
        batch.drop_column("pending_until")
        batch.drop_column("pending")
    for table in ("api_tokens", "login_tickets", "sessions"):
        op.drop_table(table)
