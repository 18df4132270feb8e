"""Alembic environment: always run online, on the connection that Database.migrate hands over."""

from __future__ import annotations

from alembic import context

from exporthub.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the alembic CLI gets here
    raise RuntimeError("run migrations through exporthub.db.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
