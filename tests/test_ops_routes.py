"""``/healthz`` names the failing part with 503; ``/metrics`` is Prometheus text read from the database."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass

import pytest

from exporthub.db import forget_databases
from exporthub.settings import reload_settings
from tests._hubs import make_hub


@dataclass
class _Answer:
    status_code: int
    text: str

    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.text)


class _Client:
    """Calls the route handlers as the server does (``exporthub web`` serves them in the process tests)."""

    def get(self, path: str) -> _Answer:
        from web import ops_routes

        handler = {"/healthz": ops_routes.healthz, "/metrics": ops_routes.prometheus}[path]
        response = asyncio.run(handler(None))  # type: ignore[arg-type]
        return _Answer(response.status_code, bytes(response.body).decode())


def _client() -> _Client:
    return _Client()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def _fresh_worker_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """``worker`` builds its queue from the settings at import: import it again for these settings."""
    import sys

    monkeypatch.delitem(sys.modules, "worker", raising=False)


def test_healthz_is_200_when_every_part_answers(demo_hub, monkeypatch):
    _fresh_worker_module(monkeypatch)
    response = _client().get("/healthz")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok" and body["failing"] == []
    assert set(body["checks"]) == {"database", "queue", "storage"}


@pytest.mark.redis
def test_healthz_is_503_naming_the_queue_when_redis_is_unreachable(tmp_path, monkeypatch):
    make_hub(tmp_path, monkeypatch, REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0", SECRET_KEY="s" * 32)
    _fresh_worker_module(monkeypatch)
    response = _client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["queue"] and "Connection" in response.json()["checks"]["queue"]["detail"]
    forget_databases()


@pytest.mark.postgres
def test_healthz_is_503_naming_the_database_when_it_is_unreachable(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EXPORTHUB_DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/x")
    monkeypatch.setenv("EXPORTHUB_SECRET_KEY", "s" * 32)
    monkeypatch.delenv("EXPORTHUB_REDIS_URL", raising=False)
    forget_databases()
    reload_settings()
    _fresh_worker_module(monkeypatch)
    response = _client().get("/healthz")
    assert response.status_code == 503 and response.json()["failing"] == ["database"]
    forget_databases()


def test_metrics_count_jobs_by_status_and_type_and_time_completed_runs(demo_hub, monkeypatch):
    from exporthub.states import JobStatus

    _fresh_worker_module(monkeypatch)
    service = demo_hub.service()
    done = service.start("analyst", "demo-open", "zones", {})
    assert demo_hub.run(done.id) is JobStatus.COMPLETED
    service.start("analyst", "demo-open", "scans", {})  # stays ready: no worker here
    text = _client().get("/metrics").text
    assert 'exporthub_jobs{status="completed",type="zones"} 1.0' in text
    assert 'exporthub_jobs{status="ready",type="scans"} 1.0' in text
    assert 'exporthub_job_duration_seconds_gcount{type="zones"} 1.0' in text
    assert "exporthub_queue_ready_jobs 1.0" in text
    assert 'exporthub_workers{state="running"} 0.0' in text
