"""Exporthub's side of the cases measured inside a running process (a page refresh, a job pickup).

    python -m benchmarks.probes NAME [REPEAT]

Run with ``EXPORTHUB_DATA_DIR`` set. Prints one JSON object on its last line of stdout: ``seconds``
(the median of REPEAT runs) and any detail.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

PROJECT, USER = "demo-open", "admin"


def preview(repeat: int) -> dict[str, Any]:
    """The statistics page's preview with empty caches: every query, then every Plotly figure.

    ``seconds`` counts all nine figures; ``open_tab_seconds`` only those of the tab a page opens on
    (the others are built when their tab is opened), which is what an analyst waits for.
    """
    from exporthub.charts import preview_charts
    from exporthub.db import get_database
    from exporthub.settings import get_settings
    from exporthub.stats import ResultCache, StatsFilter, StatsService
    from ui.charts_plotly import figure
    from ui.stats_view import CHART_TABS

    first_tab = set(next(iter(CHART_TABS.values())))
    settings = get_settings()
    db = get_database(settings)
    queries, figures, open_tab = [], [], []
    # One untimed pass first: a running server has imported Plotly and built figures before, and
    # the timed passes still start from empty result and cube caches.
    for i in range(repeat + 1):
        started = time.perf_counter()
        result = StatsService(db, settings, cache=ResultCache()).preview(USER, PROJECT, StatsFilter())
        middle = time.perf_counter()
        shown = 0.0
        for spec in preview_charts(result.tables, granularity="day", timezone=result.timezone):
            built = time.perf_counter()
            figure(spec)
            if spec.key in first_tab:
                shown += time.perf_counter() - built
        if i:
            queries.append(middle - started)
            figures.append(time.perf_counter() - middle)
            open_tab.append(middle - started + shown)
    totals = [q + f for q, f in zip(queries, figures, strict=True)]
    return {"seconds": statistics.median(totals), "queries": statistics.median(queries),
            "figures": statistics.median(figures), "open_tab_seconds": statistics.median(open_tab)}


def job_list(repeat: int, history: int = 10_000) -> dict[str, Any]:
    """One refresh of the hub's job list with ``history`` jobs: the count for the pager and a page."""
    from sqlalchemy import func, insert, select

    from exporters import REGISTRY
    from exporthub.db import get_database
    from exporthub.dispatch import RecordingDispatcher
    from exporthub.jobs import JobService
    from exporthub.models import Job, Project, User
    from exporthub.settings import get_settings

    settings = get_settings()
    db = get_database(settings)
    with db.write() as s:
        project_id = s.scalar(select(Project.id).where(Project.slug == PROJECT))
        user_id = s.scalar(select(User.id).where(User.username == USER))
        missing = history - (s.scalar(select(func.count()).select_from(Job)) or 0)
        if missing > 0:
            s.execute(insert(Job), [
                {"project_id": project_id, "export_type": "scans", "status": "completed", "progress": 100,
                 "variables": {"format": "csv"}, "user_id": user_id, "cancel_requested": False,
                 "export_sessions_reset": False, "attempt": 1}
                for _ in range(missing)
            ])
    service = JobService(db, settings, RecordingDispatcher(), registry=REGISTRY)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        service.count(USER, PROJECT, top_level_only=True)
        service.list(USER, PROJECT, limit=10, top_level_only=True)
        times.append(time.perf_counter() - started)
    return {"seconds": statistics.median(times), "p95": sorted(times)[int(0.95 * (len(times) - 1))]}


def job_pickup(repeat: int) -> dict[str, Any]:
    """Insert a job and wait until a worker runs it: the time a user waits to see it start."""
    from exporters import REGISTRY
    from exporthub.db import get_database
    from exporthub.jobs import JobService
    from exporthub.settings import get_settings
    from exporthub.states import JobStatus

    sys.path.insert(0, os.getcwd())
    import worker  # the edge that wires the queue in, as the CLI does

    settings = get_settings()
    db = get_database(settings)
    service = JobService(db, settings, worker.HueyDispatcher(), registry=REGISTRY)
    proc = subprocess.Popen([sys.executable, "-m", "cli", "worker"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    waits = []
    try:
        for i in range(repeat + 1):
            started = time.perf_counter()
            job = service.start(USER, PROJECT, "zones", {"format": "csv"})
            deadline = started + 120
            while service.get(USER, job.id).status in (JobStatus.READY, JobStatus.WAITING):
                if time.perf_counter() > deadline:
                    raise RuntimeError("no worker picked the job up within 120 s")
                time.sleep(0.005)
            if i:  # the first job waits for the worker to start
                waits.append(time.perf_counter() - started)
            while service.get(USER, job.id).status is JobStatus.RUNNING:
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    waits.sort()
    return {"seconds": statistics.median(waits), "p95": waits[int(0.95 * (len(waits) - 1))]}


def job_cancel(repeat: int) -> dict[str, Any]:
    """Cancel a job while DuckDB is inside one long query: the time from the committed cancel to the job
    being ``cancelled`` (the runner interrupts the query). The suite asserts that it happens; this
    measures how soon."""
    import threading

    from exporters.registry import BaseExporter, Registry
    from exporthub.db import get_database
    from exporthub.dispatch import RecordingDispatcher
    from exporthub.export_config import parse_config
    from exporthub.jobs import JobService
    from exporthub.runner import run_job
    from exporthub.settings import get_settings
    from exporthub.states import JobStatus

    class LongQuery(BaseExporter):
        export_type = "bench_longquery"
        formats: tuple[str, ...] = ("csv",)

        def run(self, ctx: Any) -> None:
            con = ctx.sql()
            con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
            under_way.append(con)
            con.execute("SELECT count(*) FROM range(50000000000) t(x) WHERE hash(x) % 1000003 = 7").fetchall()

    settings = get_settings()
    db = get_database(settings)
    config = parse_config({"bench_longquery": {"title": "Long query", "group": "Bench", "exportVariables": []}})
    registry = Registry()
    registry.register(LongQuery())
    dispatcher = RecordingDispatcher()
    service = JobService(db, settings, dispatcher, registry=registry, config=config)
    waits = []
    for _ in range(repeat):
        under_way: list[Any] = []
        job = service.start(USER, PROJECT, "bench_longquery")
        runner = threading.Thread(target=run_job, args=(db, settings, job.id),
                                  kwargs={"dispatcher": dispatcher, "registry": registry, "config": config})
        runner.start()
        deadline = time.perf_counter() + 60
        while not under_way or under_way[0].query_progress() <= 0:
            if time.perf_counter() > deadline:
                raise RuntimeError("the long query never got going")
            time.sleep(0.01)
        service.cancel(USER, job.id)
        cancelled_at = time.perf_counter()
        while service.get(USER, job.id).status is JobStatus.RUNNING:
            if time.perf_counter() > cancelled_at + 60:
                raise RuntimeError("the job was not cancelled within 60 s")
            time.sleep(0.005)
        waits.append(time.perf_counter() - cancelled_at)
        runner.join(60)
    waits.sort()
    return {"seconds": statistics.median(waits), "p95": waits[int(0.95 * (len(waits) - 1))]}


PROBES = {"preview": preview, "job_list": job_list, "job_pickup": job_pickup, "job_cancel": job_cancel}

if __name__ == "__main__":
    name, repeat = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(json.dumps(PROBES[name](repeat)))
