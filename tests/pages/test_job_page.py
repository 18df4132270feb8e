"""Job details (pages/job.py): status and timings, variables, files, log, child jobs, the error, and
the actions, for each demo role."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from exporthub.states import JobStatus
from tests._lake import lake_files
from tests.pages.conftest import ROLES, labels, open_app, page_links, plain, shown, texts


def _details(username: str, job_id: int | None, project: str = "demo-open"):
    at = open_app(username, project=project)
    if job_id is not None:
        at.query_params["job"] = str(job_id)
    return at.switch_page("pages/job.py").run()


def _run(hub, user: str = "analyst", project: str = "demo-open", export_type: str = "scans", **variables):
    service = hub.service()
    job = service.start(user, project, export_type, variables)
    hub.run_queued()
    return service.get(user, job.id)


def app_hub_display_name(hub, username: str) -> str:
    from exporthub.models import User

    with hub.db.read() as s:
        return s.scalar(select(User.display_name).where(User.username == username))


def test_a_retry_links_to_the_job_it_retried(app_hub):
    service = app_hub.service()
    first = service.start("analyst", "demo-open", "scans", {})
    service.cancel("analyst", first.id)
    again = service.retry("analyst", first.id)
    at = _details("analyst", again.id)
    links = [(p.label, p.proto.page) for p in at.get("page_link")]
    assert any(label == f"Retry of job #{first.id}" for label, _ in links), links


def test_completed_job_shows_status_timings_variables_files_and_log(app_hub):
    job = _run(app_hub, format="csv", includeDeleted=True)
    assert job.status is JobStatus.COMPLETED
    at = _details("viewer", job.id)
    assert [t.value for t in at.title] == [f"Scans · job #{job.id}"]
    assert ":green-badge[:material/check_circle: Completed]" in [m.value for m in at.markdown]
    tz = ZoneInfo("Europe/Berlin")
    for label, value in (
        ("Requested by", app_hub_display_name(app_hub, "analyst")),
        ("Started", job.started_at.astimezone(tz).strftime("%d %b %Y, %H:%M:%S")),
        ("Finished", job.finished_at.astimezone(tz).strftime("%d %b %Y, %H:%M:%S")),
    ):
        assert label in [c.value for c in at.caption]
        assert f"**{value}**" in [m.value for m in at.markdown]
    variables, log = at.dataframe
    table = dict(zip(variables.value["Variable"], variables.value["Value"], strict=True))
    assert table["Format"] == "CSV" and table["Zones (empty = all)"] == "all"
    assert table["Date range"] == "All time" and table["Include deleted scans"] == "Yes"
    # Only what applies: no From/To for a preset range (the CSV dialect applies to a CSV).
    assert not {"From", "To"} & set(table) and "CSV dialect" in table
    messages = list(log.value["Message"])
    assert len(messages) == len(job.log) and not any(":" in m for m in messages if m.startswith("Started"))
    assert any(m.startswith("Started on ") for m in (e.message for e in job.log))  # the server keeps it
    assert set(log.value["Level"]) <= {"Info", "Warning", "Error"}
    files = "\n".join(m.value for m in at.markdown if "eh-files" in m.value)
    for f in job.files:
        assert f.name in files
    assert "0 downloads" in files and 'href="/download/' in files
    assert "Export sessions recorded for" in texts(at)
    # The data cut-off: the Iceberg snapshot id of each lake table the job read.
    cutoff = "Data cut-off: lake snapshot " + ", ".join(f"{t} {i}" for t, i in job.lake_snapshot.items()) + "."
    assert cutoff in [c.value for c in at.caption]
    assert not at.error


@pytest.mark.parametrize("role", [r for r in ROLES if r != "outsider"])
def test_actions_on_the_details_page_follow_the_role(app_hub, role):
    job = _run(app_hub)
    at = _details(role, job.id)
    keys = {b.key.rsplit("-", 1)[0] for b in at.button if b.key and b.key.startswith("details-")}
    expected = {"details-remove", "details-reset_export_sessions"} if role in ("admin", "manager") else set()
    assert keys == expected
    assert ("Details", f"job={job.id}") not in page_links(at)  # no link to itself


def test_running_job_can_be_cancelled_from_the_details_page(app_hub):
    job = app_hub.service().start("analyst", "demo-open", "scans", {})
    at = _details("analyst", job.id)
    assert ":violet-badge[:material/inbox: Queued]" in [m.value for m in at.markdown]
    assert "Files appear when the job completes." in texts(at)
    at.button(key=f"details-cancel-{job.id}").click().run()
    at.button(key=f"details-cancel-{job.id}-confirm").click().run()
    assert app_hub.service().get("analyst", job.id).status is JobStatus.CANCELLED
    assert ":gray-badge[:material/block: Cancelled]" in [m.value for m in at.markdown]


def test_failed_job_shows_users_a_plain_sentence_and_admins_the_cause(app_hub):
    service = app_hub.service()
    job = service.start("analyst", "demo-open", "scans", {})
    part = Path(lake_files(app_hub.settings, "demo-open", "scans")[0])
    part.write_bytes(b"this is not parquet")  # a lake file damaged after the start: the run fails for real
    app_hub.run_queued()
    job = service.get("analyst", job.id)
    assert job.status is JobStatus.FAILED and job.error and part.name in job.error  # the detail is kept
    at = _details("analyst", job.id)
    assert ":red-badge[:material/error: Failed]" in [m.value for m in at.markdown]
    (error,) = at.error
    assert plain(error.value) == (
        "**Error:** The scans data of project demo-open could not be read: a data file is damaged or missing. "
        "An administrator can see the details."
    )
    log = at.dataframe[-1].value
    assert not any(part.name in m or str(app_hub.settings.data_dir) in m for m in log["Message"])
    assert f"details-retry-{job.id}" in [b.key for b in at.button]
    (admin_error,) = _details("admin", job.id).error
    assert admin_error.value.startswith("**Error:** The scans data") and part.name in plain(admin_error.value)
    hub = open_app("analyst", project="demo-open")
    assert not any(part.name in plain(c.value) for c in hub.caption)  # the job list shows the sentence too


def test_parent_job_links_its_children_and_back(app_hub):
    if "publish" not in app_hub.service().registry:
        pytest.fail("the publish exporter should be registered")
    service = app_hub.service()
    parent = service.start("manager", "demo-closed", "publish", {"reports": ["scans", "zones"]})
    parent = service.get("manager", parent.id)
    assert len(parent.children) == 2
    at = _details("manager", parent.id, project="demo-closed")
    assert "Child jobs" in [s.value for s in at.subheader]
    links = page_links(at)
    for child in parent.children:
        label = plain(next(text for text, query in links if query == f"job={child.id}"))
        assert label.startswith(f"#{child.id} · {service.config[child.export_type].title} · Queued")
    child = parent.children[0]
    at = _details("manager", child.id, project="demo-closed")
    assert (f"Part of job #{parent.id}", f"job={parent.id}") in page_links(at)


def test_job_of_a_project_without_access_is_refused(app_hub):
    job = _run(app_hub, user="manager", project="demo-closed")
    at = _details("analyst", job.id)
    # The same answer as for a job that does not exist: the page tells nothing about other projects.
    assert shown(at.error) == [f"Job {job.id} not found or not permitted"]
    assert "Generate" not in labels(at)
    missing = _details("analyst", job.id + 1000)
    assert shown(missing.error) == [f"Job {job.id + 1000} not found or not permitted"]


def test_removed_job_is_gone(app_hub):
    job = _run(app_hub)
    app_hub.service().remove("manager", job.id)
    at = _details("manager", job.id)
    assert shown(at.error) == [f"Job {job.id} was removed"]


def test_without_a_job_id_the_page_offers_recent_jobs(app_hub):
    first = _run(app_hub)
    second = _run(app_hub, export_type="zones")
    at = _details("analyst", None)
    (picker,) = at.main.selectbox
    assert picker.label == "Job" and picker.value == second.id
    assert picker.options[1].startswith(f"#{first.id} · Scans · Completed")
    picker.select(first.id).run()
    assert [t.value for t in at.title] == ["Job Details", f"Scans · job #{first.id}"]


def test_no_jobs_yet(app_hub):
    at = _details("viewer", None)
    assert "This project has no jobs yet." in texts(at)
