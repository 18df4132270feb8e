"""The hub (pages/exports.py) for each demo role: cards, the publish button, the job list with its
actions, filters and paging, and the "Export Variables" form with its estimate, scheduling and
refusals. The form and the dialog's content are plain functions, run here through AppTest."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest
from sqlalchemy import select

from exporters import REGISTRY
from exporters.registry import Estimate
from exporthub.excel import split_warning
from exporthub.export_config import parse_config
from exporthub.jobs import JobService
from exporthub.models import Job
from exporthub.states import JobStatus
from tests._lake import lake_sql
from tests.pages.conftest import ROLES, labels, open_app, page_links, shown, texts
from ui import forms
from ui import hub as ui_hub
from ui import session as ui_session

STARTERS = {"admin", "manager", "analyst"}


def _run_scans(hub, user: str = "analyst", **variables):
    service = hub.service()
    job = service.start(user, "demo-open", "scans", {"format": "csv", **variables})
    hub.run_queued()
    return service.get(user, job.id)


def _visible_types(hub) -> list[str]:
    return [
        d.type
        for group in ui_hub.grouped_types(hub.service().config, hub.service().registry).values()
        for d in group
    ]


# ---------------------------------------------------------------------------- cards and header


@pytest.mark.parametrize("role", [r for r in ROLES if r != "outsider"])
def test_cards_groups_and_generate_buttons_follow_the_role(app_hub, role):
    at = open_app(role, project="demo-open")
    visible = _visible_types(app_hub)
    assert "scans" in visible and "publish" not in visible  # publish has the header button instead
    service = app_hub.service()
    hidden = [t for t, d in service.config.items() if d.is_hidden]
    subheaders = [s.value for s in at.subheader]
    markdown = [m.value for m in at.markdown]
    cards = [m for m in markdown if m.startswith("##### ")]
    generate = [b.key for b in at.button if b.label == "Generate"]
    assert subheaders[0] == "Jobs"  # the jobs and their files first, the catalogue under them
    if role in STARTERS:
        assert subheaders == ["Jobs", "New export"]
        for group in ui_hub.grouped_types(service.config, service.registry):
            assert f"**{group}**" in markdown
        # Each type with its own Material icon (no emoji font needed), secondary buttons.
        assert cards == [f"##### {ui_hub.TYPE_ICONS[t]} {service.config[t].title}" for t in visible]
        assert generate == [f"generate-{t}" for t in visible]
        assert all(b.proto.type == "secondary" for b in at.button if b.label == "Generate")
    else:
        # Nothing run yet: no tiles with nothing to click.
        assert subheaders == ["Jobs"] and cards == [] and generate == []
    for t in hidden:
        assert not any(c.endswith(f" {service.config[t].title}") for c in cards)
    publish_shown = "Publish Project Files" in labels(at)
    assert publish_shown == (role in STARTERS and "publish" in service.registry)
    assert ("**Project Management**" in [m.value for m in at.markdown]) == publish_shown


def test_outsider_has_no_hub(app_hub):
    at = open_app("outsider")
    assert "Generate" not in labels(at)
    assert "Jobs" not in [s.value for s in at.subheader]


def test_card_shows_the_latest_job_status(app_hub):
    job = _run_scans(app_hub)
    assert job.status is JobStatus.COMPLETED
    at = open_app("analyst", project="demo-open")
    scans_card = [m.value for m in at.markdown if "#1 ·" in m.value and "badge" in m.value]
    assert scans_card and scans_card[0].startswith(":green-badge[:material/check_circle: Completed]")
    assert ":gray-badge[Not run yet]" in [m.value for m in at.markdown]  # the other cards
    # The scans card offers its latest file; the others have none.
    latest = [b for b in at.get("link_button") if b.proto.label == "Latest"]
    assert len(latest) == 1 and latest[0].proto.url.startswith("/download/")


def test_viewer_sees_only_the_types_with_a_file_to_download(app_hub):
    _run_scans(app_hub)
    at = open_app("viewer", project="demo-open")
    assert [s.value for s in at.subheader] == ["Jobs", "Latest files"]
    cards = [m.value for m in at.markdown if m.value.startswith("##### ")]
    assert cards == [f"##### {ui_hub.TYPE_ICONS['scans']} {app_hub.service().config['scans'].title}"]
    assert [b.proto.label for b in at.get("link_button")] == ["Latest"]
    assert "Generate" not in labels(at)


def test_card_of_a_scheduled_job_says_when_it_runs(app_hub):
    at_time = datetime(2099, 1, 2, 7, 30, tzinfo=UTC)
    JobService(app_hub.db, app_hub.settings, app_hub.dispatcher, registry=REGISTRY).start(
        "analyst", "demo-open", "scans", {"format": "csv"}, run_at=at_time
    )
    at = open_app("analyst", project="demo-open")
    card = [m.value for m in at.markdown if "#1 ·" in m.value and "badge" in m.value]
    assert card and "Waiting" in card[0] and "runs 02 Jan 2099, 08:30:00" in card[0]  # Berlin time
    # Another scans job cannot start while this one waits: Generate says so before the click.
    generate = at.button(key="generate-scans")
    assert generate.disabled and "already running (#1)" in generate.help
    assert any("already running" in c.value for c in at.caption)


def test_generate_opens_the_export_variables_dialog(app_hub):
    at = open_app("analyst", project="demo-open")
    at.button(key="generate-scans").click().run()
    assert "Generate Export" in labels(at) and "Cancel" in labels(at)
    assert [s.label for s in at.selectbox if s.key and s.key.startswith("export-scans")] == [
        "Date range",
        "Format",
        "CSV dialect",
    ]
    at.run()  # the next full run does not open it again
    assert "Generate Export" not in labels(at)


# ---------------------------------------------------------------------------- the job list


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


# ---------------------------------------------------------------------------- the form builder


def _form(definition_json: dict, export_type: str, dynamic: dict | None = None, today: str = "2026-11-20"):
    from datetime import date as _date

    import streamlit as st

    from exporthub.export_config import parse_config as _parse
    from ui.forms import variable_form

    definition = _parse(definition_json)[export_type]
    st.session_state["values"] = variable_form(
        definition, dynamic_options=dynamic or {}, key_prefix="t", today=_date.fromisoformat(today)
    )


def test_form_builder_maps_each_variable_type_to_its_widget(run_function):
    config = {
        "demo": {
            "title": "Demo",
            "group": "System",
            "exportVariables": [
                {"key": "label", "title": "Label", "type": "string", "value": "hello"},
                {"key": "limit", "title": "Limit", "type": "number", "value": 10, "min": 1, "max": 100},
                {"key": "since", "title": "Since", "type": "date", "value": "2026-11-01"},
                {"key": "verbose", "title": "Verbose", "value": True},
                {"key": "format", "title": "Format", "type": "array", "value": ["csv", "xlsx"]},
                {"key": "areas", "title": "Areas", "type": "array", "multiple": True, "value": []},
            ],
        }
    }
    at = run_function(
        _form,
        "analyst",
        "demo-open",
        kwargs={"definition_json": config, "export_type": "demo", "dynamic": {"areas": ["North", "South"]}},
    )
    assert [w.label for w in at.text_input] == ["Label"]
    (number,) = at.number_input
    assert (number.label, number.value, number.min, number.max) == ("Limit", 10, 1, 100)
    assert [(w.label, w.value) for w in at.date_input] == [("Since", date(2026, 11, 1))]
    assert [(w.label, w.value) for w in at.checkbox] == [("Verbose", True)]
    assert [(w.label, w.options) for w in at.selectbox] == [("Format", ["CSV", "Excel (xlsx)"])]
    assert [(w.label, w.options) for w in at.multiselect] == [("Areas", ["North", "South"])]
    assert at.session_state["values"] == {
        "label": "hello",
        "limit": 10,
        "since": date(2026, 11, 1),
        "verbose": True,
        "format": "csv",
        "areas": [],
    }
    at.text_input[0].input("bye")
    at.number_input[0].set_value(42)
    at.checkbox[0].uncheck()
    at.selectbox[0].select("xlsx")
    at.multiselect[0].select("South")
    at.run()
    assert at.session_state["values"] == {
        "label": "bye",
        "limit": 42,
        "since": date(2026, 11, 1),
        "verbose": False,
        "format": "xlsx",
        "areas": ["South"],
    }


def _scans_form(run_function, app_hub):
    raw = json.loads(app_hub.settings.export_config_path.read_text())
    zones = app_hub.service().dynamic_options("demo-open", "scans")["zones"]
    return run_function(
        _form,
        "analyst",
        "demo-open",
        kwargs={
            "definition_json": {"scans": raw["scans"]},
            "export_type": "scans",
            "dynamic": {"zones": zones},
        },
    )


def test_scans_form_shows_presets_and_dates_only_for_a_custom_range(run_function, app_hub):
    at = _scans_form(run_function, app_hub)
    con = duckdb.connect()
    codes = [
        r[0]
        for r in con.execute(
            f"SELECT code FROM {lake_sql(app_hub.settings, 'demo-open', 'zones')} WHERE NOT deleted ORDER BY code"
        ).fetchall()
    ]
    assert at.multiselect[0].options == codes and at.multiselect[0].label == "Zones (empty = all)"
    assert at.selectbox(key="t_dateRange").options == [
        "All time",
        "Last 7 days",
        "Last 30 days",
        "Custom range",
    ]
    assert not at.date_input  # From/To only for a custom range
    assert "dateFrom" not in at.session_state["values"]
    at.selectbox(key="t_dateRange").select("custom").run()
    assert [(d.label, d.value) for d in at.date_input] == [
        ("From", date(2026, 11, 14)),
        ("To", date(2026, 11, 20)),
    ]
    assert at.session_state["values"]["dateFrom"] == date(2026, 11, 14)
    # The CSV dialect only applies to CSV.
    assert at.selectbox(key="t_csvDialect").label == "CSV dialect"
    at.selectbox(key="t_format").select("parquet").run()
    assert "csvDialect" not in at.session_state["values"]
    assert not [s for s in at.selectbox if s.key == "t_csvDialect"]


# ---------------------------------------------------------------------------- the dialog content


def _dialog(export_type: str) -> None:
    from ui import hub

    hub.dialog_body(export_type)


def _count(hub, where: str, params: list | None = None) -> int:
    con = duckdb.connect()
    return int(
        con.execute(
            f"SELECT count(*) FROM {lake_sql(hub.settings, 'demo-open', 'scans')} s "
            f"JOIN {lake_sql(hub.settings, 'demo-open', 'zones')} z USING (zone_id) WHERE {where}",
            params or [],
        ).fetchone()[0]
    )


def test_dialog_estimate_matches_an_independent_count(app_hub, run_function):
    at = run_function(_dialog, "analyst", "demo-open", kwargs={"export_type": "scans"})
    expected = _count(app_hub, "NOT s.deleted")
    assert f"About **{expected:,} rows**" in texts(at)
    tz = ZoneInfo("Europe/Berlin")
    busiest = (
        duckdb.connect()
        .execute(
            "SELECT timezone('Europe/Berlin', scanned_at)::DATE AS d "
            f"FROM {lake_sql(app_hub.settings, 'demo-open', 'scans')} GROUP BY d ORDER BY count(*) DESC, d LIMIT 1"
        )
        .fetchone()[0]
    )
    first, last = busiest - timedelta(days=1), busiest + timedelta(days=1)
    start = datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
    window = "NOT s.deleted AND s.scanned_at >= ? AND s.scanned_at < ?"
    busy = [
        r[0]
        for r in duckdb.connect()
        .execute(
            f"SELECT z.code FROM {lake_sql(app_hub.settings, 'demo-open', 'scans')} s "
            f"JOIN {lake_sql(app_hub.settings, 'demo-open', 'zones')} z USING (zone_id) WHERE {window} "
            "GROUP BY z.code ORDER BY count(*) DESC, z.code LIMIT 2",
            [start, end],
        )
        .fetchall()
    ]
    widget = at.multiselect(key="export-scans_zones")
    for code in busy:
        widget = widget.select(code)
    at.selectbox(key="export-scans_dateRange").select("custom").run()
    at.date_input(key="export-scans_dateFrom").set_value(first)
    at.date_input(key="export-scans_dateTo").set_value(last).run()
    expected = _count(app_hub, f"{window} AND z.code IN (?, ?)", [start, end, *busy])
    assert 0 < expected < _count(app_hub, window, [start, end])
    assert f"About **{expected:,} rows**" in texts(at)


def test_generate_export_starts_the_job_with_the_chosen_variables(app_hub, run_function):
    at = run_function(_dialog, "analyst", "demo-open", kwargs={"export_type": "scans"})
    at.selectbox(key="export-scans_format").select("xlsx")
    at.checkbox(key="export-scans_includeDeleted").check().run()
    at.button(key="export-scans-generate").click().run()
    (job,) = app_hub.service().list("analyst", "demo-open")
    assert job.status is JobStatus.READY and job.user == "analyst"
    assert job.variables["format"] == "xlsx" and job.variables["includeDeleted"] is True
    assert app_hub.dispatcher.enqueued == [(job.id, None)]
    assert at.session_state["_flash"] == (":material/check_circle:", f"Scans: job #{job.id} queued")
    app_hub.run_queued()
    assert app_hub.service().get("analyst", job.id).status is JobStatus.COMPLETED


def test_run_at_schedules_the_job_in_project_time(app_hub, run_function):
    at = run_function(_dialog, "analyst", "demo-open", kwargs={"export_type": "scans"})
    at.radio(key="export-scans-schedule_when").set_value(forms.RUN_AT).run()
    day = datetime.now(ZoneInfo("Europe/Berlin")).date() + timedelta(days=2)
    at.date_input(key="export-scans-schedule_date").set_value(day)
    at.time_input(key="export-scans-schedule_time").set_value(time(6, 30)).run()
    at.button(key="export-scans-generate").click().run()
    (job,) = app_hub.service().list("analyst", "demo-open")
    expected = datetime.combine(day, time(6, 30), tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    assert job.status is JobStatus.WAITING and job.run_at == expected
    assert app_hub.dispatcher.enqueued == [(job.id, expected)]


def test_run_at_in_the_past_is_refused_before_sending(app_hub, run_function):
    at = run_function(_dialog, "analyst", "demo-open", kwargs={"export_type": "scans"})
    at.radio(key="export-scans-schedule_when").set_value(forms.RUN_AT).run()
    at.date_input(key="export-scans-schedule_date").set_value(date(2020, 1, 1)).run()
    assert "Pick a time in the future, or choose “Run now”." in texts(at)
    assert at.button(key="export-scans-generate").disabled


def test_refusals_appear_in_the_dialog_in_plain_words(app_hub, run_function):
    # Permission denied: a viewer who reached the dialog anyway (the domain is the guard).
    at = run_function(_dialog, "viewer", "demo-open", kwargs={"export_type": "scans"})
    at.button(key="export-scans-generate").click().run()
    assert shown(at.error) == ["Permission denied"]
    # Export job already running.
    app_hub.service().start("manager", "demo-open", "scans", {})
    at = run_function(_dialog, "analyst", "demo-open", kwargs={"export_type": "scans"})
    assert "A Scans job is already queued" in texts(at)
    at.button(key="export-scans-generate").click().run()
    assert shown(at.error) == [
        "Export job already running: Scans. Wait for it to finish or cancel it first."
    ]


def test_a_backwards_date_range_is_said_once_next_to_the_dates(app_hub, run_function):
    at = run_function(_dialog, "analyst", "demo-open", kwargs={"export_type": "scans"})
    at.selectbox(key="export-scans_dateRange").select("custom").run()
    at.date_input(key="export-scans_dateFrom").set_value(date(2026, 11, 15))
    at.date_input(key="export-scans_dateTo").set_value(date(2026, 11, 10)).run()
    said = [e for e in shown(at.error) if "ends before it starts" in e]
    assert len(said) == 1 and "end date is before" not in texts(at)  # not again in the estimate box
    assert at.button(key="export-scans-generate").disabled  # no before the click
    assert app_hub.service().list("analyst", "demo-open") == []


def test_invalid_variable_is_named_by_its_title(app_hub):
    from exporthub.errors import InvalidVariable
    from ui.forms import plain_refusal

    definition = app_hub.service().config["scans"]
    refusal = plain_refusal(InvalidVariable("dateTo", "the end date is before the start date"), definition)
    assert refusal == "To: the end date is before the start date"


def test_project_must_be_closed_is_explained_up_front_and_refused(app_hub, run_function):
    service = app_hub.service()
    config = dict(service.config)
    from dataclasses import replace

    config["scans"] = replace(config["scans"], allow_when_project_not_closed=False)
    ui_session.use_services(JobService(app_hub.db, app_hub.settings, app_hub.dispatcher, registry=REGISTRY,
                                       config=config))
    at = run_function(_dialog, "analyst", "demo-open", kwargs={"export_type": "scans"})
    assert "Project must be closed before this export can run." in texts(at)
    at.button(key="export-scans-generate").click().run()
    assert shown(at.error) == ["Project must be closed"]
    with app_hub.db.read() as s:
        assert s.scalars(select(Job)).all() == []


# ---------------------------------------------------------------------------- pure helpers


def test_excel_row_limit_warning_suggests_csv_or_parquet():
    big = Estimate(rows=2_000_000, approx_bytes=140_000_000)
    text = forms.describe_estimate(big, {"format": "xlsx"})
    assert text.summary == "About **2,000,000 rows**, roughly **133.5 MB** as Excel (xlsx)."
    (warning,) = text.warnings
    assert "1,048,575" in warning and "CSV or Parquet" in warning
    assert forms.describe_estimate(big, {"format": "csv"}).warnings == ()
    # The exporter's own split warning (the same words, from exporthub.excel) is not repeated; another
    # warning that merely mentions Excel does not hide it.
    own = Estimate(rows=2_000_000, approx_bytes=1, warnings=(split_warning(2_000_000),))
    assert forms.describe_estimate(own, {"format": "xlsx"}).warnings == (split_warning(2_000_000),)
    other = Estimate(rows=2_000_000, approx_bytes=1, warnings=("Excel shows dates in the local time",))
    assert forms.describe_estimate(other, {"format": "xlsx"}).warnings == (
        "Excel shows dates in the local time", split_warning(2_000_000))
    assert forms.describe_estimate(None, {}) is None


def test_schedule_resolves_project_local_time_across_dst():
    now = datetime(2026, 3, 28, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    before = forms.resolve_schedule(date(2026, 3, 28), time(23, 0), "Europe/Berlin", now=now)
    after = forms.resolve_schedule(date(2026, 3, 29), time(23, 0), "Europe/Berlin", now=now)
    assert before.run_at == datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # CET, UTC+1
    assert after.run_at == datetime(2026, 3, 29, 21, 0, tzinfo=UTC)  # CEST, UTC+2
    past = forms.resolve_schedule(date(2026, 3, 28), time(11, 0), "Europe/Berlin", now=now)
    assert past.run_at is None and past.error
    assert forms.resolve_schedule(None, time(1, 0), "UTC", now=now).error


def test_grouped_types_orders_groups_and_skips_hidden_and_publish():
    config = parse_config(
        {
            "a": {"title": "A", "group": "Financial Reports"},
            "b": {"title": "B", "group": "Data Exports"},
            "c": {"title": "C", "group": "Data Exports", "isHidden": True},
            "publish": {"title": "Publish", "group": "System"},
            "d": {"title": "D", "group": "Custom"},
            "e": {"title": "E", "group": "System"},
        }
    )
    grouped = ui_hub.grouped_types(config)
    assert {g: [d.type for d in ds] for g, ds in grouped.items()} == {
        "System": ["e"],
        "Data Exports": ["b"],
        "Financial Reports": ["a"],
        "Custom": ["d"],
    }
    assert list(ui_hub.grouped_types(config, registered={"a"})) == ["Financial Reports"]


def test_publish_dialog_preselects_reports_and_shows_no_empty_estimate(app_hub, run_function):
    at = run_function(_dialog, "manager", "demo-closed", kwargs={"export_type": "publish"})
    (reports,) = at.multiselect
    assert reports.label == "Reports to publish"
    assert reports.value == ["scans", "zones", "cost", "statistics"]
    assert "Statistics Report" in reports.options  # labelled with the export titles
    assert "**Estimate**" not in [m.value for m in at.markdown]
    reports.unselect("cost").unselect("statistics").run()
    at.button(key="export-publish-generate").click().run()
    (job,) = app_hub.service().list("manager", "demo-closed", top_level_only=True)
    assert job.export_type == "publish" and job.variables["reports"] == ["scans", "zones"]
    assert sorted(c.export_type for c in app_hub.service().get("manager", job.id).children) == ["scans", "zones"]


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


def test_the_dialog_says_what_it_does(app_hub):
    config = app_hub.service().config
    assert ui_hub.dialog_title(config["scans"]) == "Export scans"
    assert ui_hub.dialog_title(config["publish"]) == "Publish project"
    assert ui_hub.dialog_title(config["backup"]) == "Back up project"
    assert ui_hub.dialog_title(config["sessions"]) == "Export zone sessions"
