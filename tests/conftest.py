"""Shared fixtures: a fresh instance per test (its own data dir), and the demo data in it.

Settings come from the environment, as in production: fixtures set ``EXPORTHUB_*`` and reload.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from exporthub.db import forget_databases
from tests._hubs import Hub, make_hub

ANCHOR = date(2026, 11, 20)
DEMO_SCANS = 20_000


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    """An empty instance: migrated metadata DB, no projects."""
    yield make_hub(tmp_path, monkeypatch)
    forget_databases()


@pytest.fixture
def demo_hub(hub: Hub) -> Hub:
    """An instance with the demo projects and users, with a small deterministic lake."""
    from exporthub.demo import create_demo

    create_demo(hub.db, hub.settings, scans=DEMO_SCANS, seed=7, anchor=ANCHOR)
    return hub


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throw-away database on the machine's PostgreSQL server, dropped afterwards."""
    import psycopg

    name = f"exporthub_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    forget_databases()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
