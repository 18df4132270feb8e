"""Helpers shared by the exporter tests: run an export to completion, find its file, read the lake."""

from __future__ import annotations

from pathlib import Path

from exporthub.states import JobStatus
from exporthub.views import JobView
from tests._lake import lake_sql


def completed_job(hub, export_type: str, variables: dict, *, user: str = "analyst",  # type: ignore[no-untyped-def]
                  slug: str = "demo-open") -> JobView:
    """Start an export as ``user``, run it in this process and return it; fails unless it completed."""
    service = hub.service()
    job = service.start(user, slug, export_type, variables)
    assert hub.run(job.id) is JobStatus.COMPLETED, service.get(user, job.id).error
    return service.get(user, job.id)


def data_file(job: JobView, ext: str) -> Path:
    """The job's one file with this extension (the csv's About sidecar is ``.about.json``, not ``.csv``)."""
    (path,) = [f.path for f in job.files if f.name.endswith("." + ext)]
    return path


def parts(hub, slug: str, table: str) -> str:  # type: ignore[no-untyped-def]
    """A DuckDB ``read_parquet`` over a lake table's part files, for independent checks."""
    return lake_sql(hub.settings, slug, table)
