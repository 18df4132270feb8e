"""The About block (exporters._about): its rows in local time, its JSON in UTC, and what it refuses."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from exporters._about import About
from tests.exporters._writer_samples import UNICODE_NAME, make_about


def test_about_rows_show_variables_and_local_times(about: About) -> None:
    rows = dict(about.rows())
    assert rows["Project"] == f"{UNICODE_NAME} (harbour)"
    assert rows["Export type"] == "scans"
    assert rows["Variable: dateFrom"] == "2026-03-01"
    assert rows["Variable: zones"] == "A1, B2"
    assert rows["Variable: includeDeleted"] == "No"
    # 10:00 UTC is 12:00 in Berlin in July (CEST).
    assert rows["Data cut-off"] == "2026-07-01 12:00:00 (Europe/Berlin)"
    assert rows["Generated at"] == "2026-07-01 12:05:30 (Europe/Berlin)"
    assert rows["Generator version"] == "0.1.0"


def test_about_json_is_utc_and_round_trips(about: About) -> None:
    data = json.loads(about.to_json())
    assert data["data_cutoff"] == "2026-07-01T10:00:00Z"
    assert data["variables"] == {"dateFrom": "2026-03-01", "zones": ["A1", "B2"], "includeDeleted": False}
    assert data["project_name"] == UNICODE_NAME


def test_about_refuses_naive_times_and_unknown_zones() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_about(generated_at=dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="unknown timezone"):
        make_about(timezone="Mars/Olympus")
