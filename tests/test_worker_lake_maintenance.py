"""The worker's housekeeping runs the lake's maintenance once per period across all workers."""

from __future__ import annotations

import threading

from exporthub.lake import maintenance as lake_maintenance
from exporthub.models import PeriodicRun
from exporthub.settings import reload_settings


def test_lake_maintenance_runs_once_per_period_across_workers(demo_hub, monkeypatch):
    import worker

    real, reports = lake_maintenance.maintain_all, []
    monkeypatch.setattr(lake_maintenance, "maintain_all", lambda db, settings: reports.append(real(db, settings)))
    a, b = worker._Worker(demo_hub.settings), worker._Worker(demo_hub.settings)
    a.id, b.id = "host-a:1:aaaaaa", "host-b:2:bbbbbb"
    assert demo_hub.settings.lake_maintenance_interval_seconds == 24 * 3600  # daily by default
    for w in (a, b, a):
        thread = w.maintain_lake()
        assert thread is not None
        thread.join(120)
    (run,) = reports  # one run in the period, whoever asked
    assert {r.project for r in run} == {"demo-open", "demo-closed"}
    with demo_hub.db.read() as s:
        row = s.get(PeriodicRun, worker.LAKE_MAINTENANCE)
        assert (row.holder, row.runs) == (a.id, 1) and row.finished_at is not None

    # A period of 0 s: the next ask runs it again.
    monkeypatch.setenv("EXPORTHUB_LAKE_MAINTENANCE_INTERVAL_SECONDS", "0")
    b.settings = reload_settings()
    b.maintain_lake().join(120)
    assert len(reports) == 2
    with demo_hub.db.read() as s:
        assert s.get(PeriodicRun, worker.LAKE_MAINTENANCE).holder == b.id


def test_a_long_maintenance_is_not_started_twice_by_one_worker(demo_hub, monkeypatch):
    import worker

    release, calls = threading.Event(), []
    monkeypatch.setattr(lake_maintenance, "maintain_all", lambda db, settings: calls.append(1) or release.wait(30))
    w = worker._Worker(demo_hub.settings)
    first = w.maintain_lake()
    assert first is not None and w.maintain_lake() is None  # the housekeeping round goes on meanwhile
    release.set()
    first.join(30)
    assert calls == [1]
