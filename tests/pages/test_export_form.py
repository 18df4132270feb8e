"""The "Export Variables" form (ui.forms): a widget per variable type, presets, estimates, scheduling."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import duckdb

from exporters.registry import Estimate
from exporthub.excel import split_warning
from tests._lake import lake_sql
from ui import forms

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
