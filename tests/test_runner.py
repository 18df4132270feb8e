"""The runner on its own: one job claimed, run by the registry it is given, and concluded once."""

from __future__ import annotations

from sqlalchemy import select

from exporters.registry import BaseExporter, Registry
from exporthub.export_config import parse_config
from exporthub.jobs import JobService
from exporthub.models import File, Job, JobLog
from exporthub.runner import run_job
from exporthub.states import JobStatus

CONFIG = parse_config({t: {"title": t, "group": "Test", "exportVariables": []} for t in ("writes", "breaks")})


class Writes(BaseExporter):
    export_type, formats, uses_lake = "writes", ("csv",), False

    def run(self, ctx):
        ctx.output_path("csv").write_text("id\n1\n2\n")
        ctx.progress(100)


class Breaks(BaseExporter):
    export_type, formats, uses_lake = "breaks", ("csv",), False

    def run(self, ctx):
        ctx.output_path("csv").write_text("id\n")  # partial output: must not be recorded
        raise RuntimeError("the disk is on fire")


def registry_of(*exporters: BaseExporter) -> Registry:
    registry = Registry()
    for exporter in exporters:
        registry.register(exporter)
    return registry


def start(hub, export_type: str) -> int:
    service = JobService(hub.db, hub.settings, hub.dispatcher, registry=registry_of(Writes(), Breaks()), config=CONFIG)
    return service.start("analyst", "demo-open", export_type).id


def job_and_files(hub, job_id: int) -> tuple[Job, list[File], list[str]]:
    with hub.db.read() as s:
        job = s.get(Job, job_id)
        files = list(s.scalars(select(File).where(File.job_id == job_id)))
        log = [e.message for e in s.scalars(select(JobLog).where(JobLog.job_id == job_id).order_by(JobLog.id))]
        return job, files, log


def test_a_job_runs_with_the_registry_it_is_given_and_records_its_file(demo_hub):
    job_id = start(demo_hub, "writes")
    status = run_job(demo_hub.db, demo_hub.settings, job_id, dispatcher=demo_hub.dispatcher,
                     registry=registry_of(Writes()), config=CONFIG)
    job, files, log = job_and_files(demo_hub, job_id)
    assert status is JobStatus.COMPLETED and job.status == JobStatus.COMPLETED and job.progress == 100
    assert [f.size for f in files] == [len("id\n1\n2\n")]
    assert any(m.startswith("Started on ") for m in log) and log[-1] == "Completed with 1 file(s)"


def test_an_exporter_that_raises_fails_its_job_with_the_message_and_keeps_no_file(demo_hub):
    job_id = start(demo_hub, "breaks")
    status = run_job(demo_hub.db, demo_hub.settings, job_id, dispatcher=demo_hub.dispatcher,
                     registry=registry_of(Breaks()), config=CONFIG)
    job, files, _ = job_and_files(demo_hub, job_id)
    assert status is JobStatus.FAILED and files == []
    plain, detail = (job.error or "").split("\n", 1)  # a plain sentence for users, then the detail
    assert "could not" not in plain and "unexpected problem" in plain and detail == "RuntimeError: the disk is on fire"


def test_a_type_missing_from_the_registry_fails_at_start_without_running(demo_hub):
    job_id = start(demo_hub, "writes")
    status = run_job(demo_hub.db, demo_hub.settings, job_id, dispatcher=demo_hub.dispatcher,
                     registry=registry_of(Breaks()), config=CONFIG)
    job, files, _ = job_and_files(demo_hub, job_id)
    assert status is JobStatus.FAILED and job.error is not None and job.error.startswith("The export could not start.")
    assert "writes" in job.error and files == []


def test_a_finished_job_is_not_claimed_again(demo_hub):
    job_id = start(demo_hub, "writes")
    registry = registry_of(Writes())
    first = run_job(demo_hub.db, demo_hub.settings, job_id, dispatcher=demo_hub.dispatcher, registry=registry,
                    config=CONFIG)
    second = run_job(demo_hub.db, demo_hub.settings, job_id, dispatcher=demo_hub.dispatcher, registry=registry,
                     config=CONFIG)
    _, files, _ = job_and_files(demo_hub, job_id)
    assert first is JobStatus.COMPLETED and second is None and len(files) == 1
