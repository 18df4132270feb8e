"""What migrations that add whole tables share: create them in order on upgrade, drop them in reverse on
downgrade.

A migration lists its new tables once, in a function that builds fresh :class:`~sqlalchemy.Column`
objects on each call (a column belongs to one table, and Alembic may run a migration more than once in
a process), and hands that function's result to :func:`create_tables` and :func:`drop_tables`. What a
migration creates must never change once released: this module only loops, it defines no tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

Tables = Mapping[str, Sequence[sa.Column[Any]]]


def create_tables(tables: Tables) -> None:
    """``op.create_table`` for each table, in the mapping's order."""
    for name, columns in tables.items():
        op.create_table(name, *columns)


def drop_tables(tables: Tables) -> None:
    """``op.drop_table`` for each table, in the reverse of the mapping's order."""
    for name in reversed(list(tables)):
        op.drop_table(name)
