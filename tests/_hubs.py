"""An isolated Exporthub instance for a test: its own data dir, settings and metadata DB."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from exporters import REGISTRY
from exporthub.db import Database, forget_databases, get_database
from exporthub.dispatch import RecordingDispatcher
from exporthub.settings import Settings, reload_settings


@dataclass
class Hub:
    """One isolated Exporthub instance for a test."""

    settings: Settings
    db: Database
    dispatcher: RecordingDispatcher

    def service(self):  # type: ignore[no-untyped-def]
        from exporthub.jobs import JobService

        return JobService(self.db, self.settings, self.dispatcher, registry=REGISTRY)

    def run(self, job_id: int):  # type: ignore[no-untyped-def]
        """Run a queued job in this process, then any job it woke (a publish parent)."""
        from exporthub.runner import run_job

        status = run_job(self.db, self.settings, job_id, dispatcher=self.dispatcher, registry=REGISTRY)
        return status

    def run_queued(self) -> None:
        from exporthub.runner import run_job

        while self.dispatcher.enqueued:
            job_id, _eta = self.dispatcher.enqueued.pop(0)
            run_job(self.db, self.settings, job_id, dispatcher=self.dispatcher, registry=REGISTRY)


def make_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Hub:
    monkeypatch.setenv("EXPORTHUB_DATA_DIR", str(tmp_path / "data"))
    for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "LAKE_URL", "FILES_URL", "S3_ENDPOINT_URL", "S3_REGION"):
        monkeypatch.delenv(f"EXPORTHUB_{key}", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(f"EXPORTHUB_{key}", value)
    forget_databases()
    settings = reload_settings()
    return Hub(settings=settings, db=get_database(settings), dispatcher=RecordingDispatcher())
