"""The hub's job list: rows and their files, each role's actions, filters, paging, the finished-job toast."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from exporthub.models import Job
from exporthub.states import JobStatus
from tests.pages._hub_helpers import _run_scans
from tests.pages.conftest import open_app, page_links, shown, texts


def test_job_row_shows_status_times_user_files_and_details(app_hub):
    job = _run_scans(app_hub)
    at = open_app("viewer", project="demo-open")
    rows = [m.value for m in at.markdown if f"**Scans** · #{job.id}" in m.value]
    assert rows == [f":green-badge[:material/check_circle: Completed] &nbsp; **Scans** · #{job.id}"]
    tz = ZoneInfo("Europe/Berlin")
    started = job.started_at.astimezone(tz).strftime("%d %b %Y, %H:%M:%S")
    captions = [c.value for c in at.caption if c.value.startswith("Started")]
    assert captions and captions[0].startswith(f"Started {started}")
    assert f"by {job.user_display}" in captions[0] and job.user_display != "analyst"  # the person's name
    html = "\n".join(m.value for m in at.markdown if "eh-files" in m.value)
    data_file = next(f for f in job.files if f.name.endswith(".csv"))
    assert data_file.name in html and 'href="/download/' in html and " download=" in html
    # The file icon is a Material Symbols ligature, not an emoji that needs an emoji font.
    assert 'class="eh-icon"' in html and not any(ord(ch) > 0x2000 for ch in html.replace("·", ""))
    assert ("Details", f"job={job.id}") in page_links(at)
    # A viewer gets no action buttons at all.
    assert not [b for b in at.button if b.key and b.key.startswith("jobs-")]


def test_download_links_stay_the_same_across_refreshes(app_hub):
    _run_scans(app_hub)
    at = open_app("viewer", project="demo-open")
    first = [m.value for m in at.markdown if "eh-files" in m.value]
    at.run()
    assert [m.value for m in at.markdown if "eh-files" in m.value] == first


def _action_keys(at, job_id: int) -> set[str]:
    return {
        b.key.rsplit("-", 1)[0]
        for b in at.button
        if b.key and b.key.endswith(f"-{job_id}") and b.key.startswith("jobs-")
    }


def test_actions_follow_permission_and_state(app_hub):
    service = app_hub.service()
    done = _run_scans(app_hub)  # completed, with export sessions recorded
    queued = service.start("analyst", "demo-open", "users", {})  # ready, not run
    cancelled = service.start("analyst", "demo-open", "zones", {})
    service.cancel("analyst", cancelled.id)
    expected = {
        "viewer": ({}, {}, {}),
        "analyst": (set(), {"jobs-cancel"}, {"jobs-retry"}),
        "manager": (
            {"jobs-remove", "jobs-reset_export_sessions"},
            {"jobs-cancel"},
            {"jobs-retry", "jobs-remove"},
        ),
        "admin": (
            {"jobs-remove", "jobs-reset_export_sessions"},
            {"jobs-cancel"},
            {"jobs-retry", "jobs-remove"},
        ),
    }
    for role, (on_done, on_queued, on_cancelled) in expected.items():
        at = open_app(role, project="demo-open")
        assert _action_keys(at, done.id) == set(on_done), role
        assert _action_keys(at, queued.id) == set(on_queued), role
        assert _action_keys(at, cancelled.id) == set(on_cancelled), role


def test_cancel_from_the_list(app_hub):
    job = app_hub.service().start("analyst", "demo-open", "scans", {})
    at = open_app("analyst", project="demo-open")
    at.button(key=f"jobs-cancel-{job.id}").click().run()
    assert app_hub.service().get("analyst", job.id).status is JobStatus.READY  # it asks first
    assert any("Stops the job" in c.value for c in at.caption)
    at.button(key=f"jobs-cancel-{job.id}-confirm").click().run()
    assert app_hub.service().get("analyst", job.id).status is JobStatus.CANCELLED
    assert shown(at.toast) == [f"Cancelled job #{job.id}"]
    assert f"jobs-cancel-{job.id}" not in [b.key for b in at.button]
    assert f"jobs-retry-{job.id}" in [b.key for b in at.button]


def test_cancelling_a_running_job_says_cancelling_until_the_worker_stopped_it(app_hub):
    from exporthub import lifecycle

    job = app_hub.service().start("analyst", "demo-open", "scans", {})
    assert lifecycle.claim(app_hub.db, job.id, "test-worker") is not None  # a worker runs it
    at = open_app("analyst", project="demo-open")
    at.button(key=f"jobs-cancel-{job.id}").click().run()
    at.button(key=f"jobs-cancel-{job.id}-confirm").click().run()  # Cancel asks first
    assert app_hub.service().get("analyst", job.id).status is JobStatus.RUNNING  # not stopped yet
    assert shown(at.toast) == [f"Cancelling job #{job.id}…"]
    assert f"jobs-cancel-{job.id}" not in [b.key for b in at.button]
    assert any("Cancelling…" in m.value and f"#{job.id}" in m.value for m in at.markdown)
    assert not any("Cancelled" in m.value and f"#{job.id}" in m.value for m in at.markdown)


def test_retry_starts_a_new_job_with_the_same_variables(app_hub):
    service = app_hub.service()
    job = service.start("analyst", "demo-open", "scans", {"format": "parquet", "zones": ["Z-002"]})
    service.cancel("analyst", job.id)
    at = open_app("analyst", project="demo-open")
    at.button(key=f"jobs-retry-{job.id}").click().run()
    newest = service.list("analyst", "demo-open", limit=1)[0]
    assert newest.id != job.id and newest.status is JobStatus.READY
    assert newest.variables == service.get("analyst", job.id).variables
    assert (newest.id, None) in app_hub.dispatcher.enqueued
    assert shown(at.toast) == [f"Started job #{newest.id} again as a retry of #{job.id}"]


def test_remove_asks_for_confirmation_then_deletes_the_files(app_hub):
    job = _run_scans(app_hub)
    paths = [f.path for f in job.files]
    assert paths and all(p.exists() for p in paths)
    at = open_app("manager", project="demo-open")
    at.button(key=f"jobs-remove-{job.id}").click().run()
    assert all(p.exists() for p in paths)  # nothing happens before the confirmation
    assert f"jobs-remove-{job.id}-keep" in [b.key for b in at.button]
    at.button(key=f"jobs-remove-{job.id}-confirm").click().run()
    assert not any(p.exists() for p in paths)
    with app_hub.db.read() as s:
        assert s.get(Job, job.id).removed_at is not None
    assert f"**Scans** · #{job.id}" not in texts(at)


def test_keep_cancels_the_removal(app_hub):
    job = _run_scans(app_hub)
    at = open_app("manager", project="demo-open")
    at.button(key=f"jobs-remove-{job.id}").click().run()
    at.button(key=f"jobs-remove-{job.id}-keep").click().run()
    assert f"jobs-remove-{job.id}" in [b.key for b in at.button]
    with app_hub.db.read() as s:
        assert s.get(Job, job.id).removed_at is None


def test_reset_sessions_from_the_list(app_hub):
    job = _run_scans(app_hub)
    assert job.export_session_count > 0
    at = open_app("manager", project="demo-open")
    at.button(key=f"jobs-reset_export_sessions-{job.id}").click().run()
    assert app_hub.service().get("manager", job.id).export_session_count > 0  # it asks first, saying why
    assert any("next" in c.value and "includes them again" in c.value for c in at.caption)
    confirm = at.button(key=f"jobs-reset_export_sessions-{job.id}-confirm")
    assert confirm.proto.type == "primary"
    confirm.click().run()
    after = app_hub.service().get("manager", job.id)
    assert after.export_sessions_reset and after.export_session_count == 0
    assert f"jobs-reset_export_sessions-{job.id}" not in [b.key for b in at.button]


def test_refused_action_is_shown_in_plain_words(app_hub):
    job = app_hub.service().start("analyst", "demo-open", "scans", {})
    at = open_app("analyst", project="demo-open")
    at.button(key=f"jobs-cancel-{job.id}").click().run()
    app_hub.service().cancel("manager", job.id)  # someone else was faster
    at.button(key=f"jobs-cancel-{job.id}-confirm").click().run()
    toasts = shown(at.toast)
    assert toasts == [f"Job {job.id} is cancelled and can no longer be cancelled"]


def _many_cancelled(hub, n: int) -> list[int]:
    service = hub.service()
    ids = []
    for _ in range(n):
        job = service.start("analyst", "demo-open", "scans", {})
        service.cancel("analyst", job.id)
        ids.append(job.id)
    return ids


def test_filters_by_type_and_status(app_hub):
    done = _run_scans(app_hub)
    cancelled = _many_cancelled(app_hub, 2)
    users_job = app_hub.service().start("analyst", "demo-open", "users", {})
    at = open_app("analyst", project="demo-open")
    at.selectbox(key="jobs-status").select("Completed").run()
    shown = [m.value for m in at.markdown if "&nbsp; **" in m.value]
    assert shown == [f":green-badge[:material/check_circle: Completed] &nbsp; **Scans** · #{done.id}"]
    at.selectbox(key="jobs-status").select("All statuses").run()
    at.selectbox(key="jobs-type").select("users").run()
    shown = [m.value for m in at.markdown if "&nbsp; **" in m.value]
    assert shown == [f":violet-badge[:material/inbox: Queued] &nbsp; **Users** · #{users_job.id}"]
    at.selectbox(key="jobs-type").select("scans").run()
    at.selectbox(key="jobs-status").select("Cancelled").run()
    shown = [m.value for m in at.markdown if "&nbsp; **" in m.value]
    assert shown == [f":gray-badge[:material/block: Cancelled] &nbsp; **Scans** · #{i}" for i in reversed(cancelled)]


def test_paging_through_a_long_history(app_hub):
    ids = _many_cancelled(app_hub, 23)
    at = open_app("analyst", project="demo-open")

    def shown() -> list[int]:
        return [int(m.value.rsplit("#", 1)[1]) for m in at.markdown if "&nbsp; **Scans** · #" in m.value]

    newest_first = list(reversed(ids))
    assert shown() == newest_first[:10]
    assert "Jobs 1–10 of 23 · page 1 of 3" in [c.value for c in at.caption]
    assert at.button(key="jobs-page-prev").disabled
    at.button(key="jobs-page-next").click().run()
    assert shown() == newest_first[10:20]
    at.button(key="jobs-page-next").click().run()
    assert shown() == newest_first[20:]
    assert at.button(key="jobs-page-next").disabled
    at.selectbox(key="jobs-status").select("Cancelled").run()  # a new filter starts on page 1
    assert shown() == newest_first[:10]


def test_a_toast_with_the_download_link_when_my_job_finishes(app_hub):
    service = app_hub.service()
    job = service.start("analyst", "demo-open", "scans", {"format": "csv"})
    at = open_app("analyst", project="demo-open")  # sees it queued
    assert not at.toast
    app_hub.run_queued()
    at.run()
    (toast,) = [t.value for t in at.toast]
    assert toast.startswith(f"Scans #{job.id}: completed.") and "](/download/" in toast
    at.run()
    assert not at.toast  # once
