"""The export dialog's content: its estimate, starting or scheduling the job, refusals, the publish dialog."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import duckdb
from sqlalchemy import select

from exporters import REGISTRY
from exporthub.jobs import JobService
from exporthub.models import Job
from exporthub.states import JobStatus
from tests._lake import lake_sql
from tests.pages.conftest import shown, texts
from ui import forms
from ui import hub as ui_hub
from ui import session as ui_session


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


def test_the_dialog_says_what_it_does(app_hub):
    config = app_hub.service().config
    assert ui_hub.dialog_title(config["scans"]) == "Export scans"
    assert ui_hub.dialog_title(config["publish"]) == "Publish project"
    assert ui_hub.dialog_title(config["backup"]) == "Back up project"
    assert ui_hub.dialog_title(config["sessions"]) == "Export zone sessions"
