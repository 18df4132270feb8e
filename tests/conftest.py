"""Shared fixtures: a fresh instance per test (its own data dir), and the demo data in it.

Settings come from the environment, as in production: fixtures set ``EXPORTHUB_*`` and reload.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from exporthub.db import Database, forget_databases, get_database
from exporthub.dispatch import RecordingDispatcher
from exporthub.settings import Settings, reload_settings

ANCHOR = date(2026, 11, 20)
DEMO_SCANS = 20_000


@dataclass
class Hub:
    """One isolated Exporthub instance for a test."""

    settings: Settings
    db: Database
    dispatcher: RecordingDispatcher

    def service(self):  # type: ignore[no-untyped-def]
        from exporthub.jobs import JobService

        return JobService(self.db, self.settings, self.dispatcher)

    def run(self, job_id: int):  # type: ignore[no-untyped-def]
        """Run a queued job in this process, then any job it woke (a publish parent)."""
        from exporthub.runner import run_job

        status = run_job(self.db, self.settings, job_id, dispatcher=self.dispatcher)
        return status

    def run_queued(self) -> None:
        from exporthub.runner import run_job

        while self.dispatcher.enqueued:
            job_id, _eta = self.dispatcher.enqueued.pop(0)
            run_job(self.db, self.settings, job_id, dispatcher=self.dispatcher)


def make_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Hub:
    monkeypatch.setenv("EXPORTHUB_DATA_DIR", str(tmp_path / "data"))
    for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        monkeypatch.delenv(f"EXPORTHUB_{key}", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(f"EXPORTHUB_{key}", value)
    forget_databases()
    settings = reload_settings()
    return Hub(settings=settings, db=get_database(settings), dispatcher=RecordingDispatcher())


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
