"""Every figure that two exports or the statistics page share, against hand counts.

The reference below reads the hand-made project's csv texts with the csv module and counts in plain
Python, following the README's definitions; it shares no code with the exporters or the queries.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime

import duckdb
import openpyxl
import pytest

from exporthub.stats import StatsFilter, StatsService
from tests import _handmade as hm
from tests.exporters._support import completed_job, data_file


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def reference(ids: dict[str, int]) -> dict[str, dict]:
    """Per user, zone and session: the figures, counted by hand from the csv texts."""
    zones = {int(z["zone_id"]): z for z in _rows(hm.ZONES_CSV)}
    sessions = {int(s["session_id"]): s for s in _rows(hm.SESSIONS_CSV)}
    scans = [s for s in _rows(hm.SCANS_CSV) if s["deleted"] != "true"]
    by_id = {v: k for k, v in ids.items()}
    scans += [dict(s, user=by_id[int(s["user_id"])]) for s in _rows(hm.scans2_csv(ids))]

    def hours(s: dict[str, str]) -> float | None:
        if not s["ended_at"]:
            return None
        delta = datetime.fromisoformat(s["ended_at"]) - datetime.fromisoformat(s["started_at"])
        return delta.total_seconds() / 3600

    per_session = defaultdict(int)
    for scan in scans:
        per_session[int(scan["session_id"])] += 1
    users: dict[str, dict] = defaultdict(lambda: {"scans": 0, "quantity": 0, "sessions": 0, "hours": 0.0,
                                                  "closed_scans": 0})
    for scan in scans:
        users[scan["user"]]["scans"] += 1
        users[scan["user"]]["quantity"] += int(scan["quantity"])
    for sid, s in sessions.items():
        if s["deleted"] == "true":
            continue
        u = users[s["user"]]
        u["sessions"] += 1
        if hours(s) is not None:
            u["hours"] += hours(s)
            u["closed_scans"] += per_session[sid]
    for u in users.values():
        u["scans_per_hour"] = u["closed_scans"] / u["hours"] if u["hours"] else None
    zone_items: dict[int, int] = defaultdict(int)
    for scan in scans:
        zone_items[int(scan["zone_id"])] += int(scan["quantity"])
    zone_figures = {
        z["code"]: {
            "items": zone_items[zid],
            "completion": zone_items[zid] / int(z["expected_items"]) if z["expected_items"] else None,
        }
        for zid, z in zones.items() if z["deleted"] != "true"
    }
    session_figures = {
        sid: {"scans": per_session[sid],
              "scans_per_hour": per_session[sid] / hours(s) if hours(s) else None}
        for sid, s in sessions.items() if s["deleted"] != "true"
    }
    cost = sum(float(c["amount"]) for c in _rows(hm.COSTS_CSV))
    total_scans = len(scans)
    headline = {"scans": total_scans, "items": sum(int(s["quantity"]) for s in scans),
                "hours": sum(u["hours"] for u in users.values()), "cost": cost,
                "cost_per_scan": cost / total_scans}
    return {"users": dict(users), "zones": zone_figures, "sessions": session_figures, "headline": headline}


@pytest.fixture
def handmade(hub, tmp_path):  # type: ignore[no-untyped-def]
    from exporthub.accounts import SystemActor
    from exporthub.importer import ImportFile, import_files

    ids = hm.make_project(hub)
    folder = tmp_path / "scans"
    import_files(hub.db, hub.settings, SystemActor("pytest"), hm.SLUG, "scans",
                 [ImportFile.from_path(hm.write(folder, "scans.csv", hm.SCANS_CSV)),
                  ImportFile.from_path(hm.write(folder, "scans2.csv", hm.scans2_csv(ids)))])
    return hub, reference(ids)


def _parquet(job, ext: str = "parquet") -> list[dict]:  # type: ignore[no-untyped-def]
    return duckdb.sql(f"SELECT * FROM read_parquet('{data_file(job, ext)}')").to_arrow_table().to_pylist()


def test_users_sessions_zones_exports_and_statistics_agree_with_hand_counts(handmade):  # type: ignore[no-untyped-def]
    hub, ref = handmade
    run = lambda kind: completed_job(hub, kind, {"format": "parquet"}, user=hm.ADMIN, slug=hm.SLUG)  # noqa: E731
    users = {r["username"]: r for r in _parquet(run("users"))}
    sessions = {r["session_id"]: r for r in _parquet(run("sessions"))}
    zones = {r["code"]: r for r in _parquet(run("zones"))}
    stats = StatsService(hub.db, hub.settings)
    everything = StatsFilter()
    productivity = {r["username"]: r for r in
                    stats.query(hm.ADMIN, hm.SLUG, "productivity", everything).table.to_pylist()}
    completion = {r["code"]: r for r in
                  stats.query(hm.ADMIN, hm.SLUG, "zone_completion", everything).table.to_pylist()}
    (headline,) = stats.query(hm.ADMIN, hm.SLUG, "headline", everything).table.to_pylist()

    for name in hm.STAFF:
        want = ref["users"][name]
        got, page = users[name], productivity[name]
        assert (got["scans"], got["quantity"], got["sessions"]) == (want["scans"], want["quantity"], want["sessions"])
        assert (page["scans"], page["items"], page["sessions"]) == (want["scans"], want["quantity"], want["sessions"])
        assert got["hours_worked"] == pytest.approx(want["hours"], abs=1e-4)
        assert page["hours"] == pytest.approx(want["hours"], abs=1e-9)
        assert got["scans_per_hour"] == pytest.approx(want["scans_per_hour"], abs=0.005)
        assert page["scans_per_hour"] == pytest.approx(want["scans_per_hour"], abs=1e-9)
    # ann: 3 live scans in her closed session 100 (2.5 h); her open session 102 adds no hours.
    assert ref["users"]["ann"]["scans_per_hour"] == pytest.approx(1.2)
    for sid, want in ref["sessions"].items():
        assert sessions[sid]["scans"] == want["scans"]
        if want["scans_per_hour"] is None:
            assert sessions[sid]["scans_per_hour"] is None
        else:
            assert sessions[sid]["scans_per_hour"] == pytest.approx(want["scans_per_hour"], abs=0.005)
    for code, want in ref["zones"].items():
        assert zones[code]["items"] == completion[code]["items"] == want["items"]
        assert zones[code]["completion"] == pytest.approx(want["completion"], abs=1e-4)
        assert completion[code]["completion"] == pytest.approx(want["completion"], abs=1e-9)
    want = ref["headline"]
    assert (headline["scans"], headline["items"]) == (want["scans"], want["items"])
    assert headline["hours"] == pytest.approx(want["hours"])
    assert headline["cost"] == pytest.approx(want["cost"])
    assert headline["cost_per_scan"] == pytest.approx(want["cost_per_scan"])
    assert sum(u["scans"] for u in users.values()) == want["scans"]


def test_statistics_report_tables_agree_with_hand_counts(handmade):  # type: ignore[no-untyped-def]
    hub, ref = handmade
    job = completed_job(hub, "statistics", {"format": "xlsx"}, user=hm.ADMIN, slug=hm.SLUG)
    book = openpyxl.load_workbook(data_file(job, "xlsx"), read_only=True)
    sheets = {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}

    def table(name: str) -> dict[str, dict]:
        header, *rows = sheets[name]
        return {row[0]: dict(zip(header, row, strict=True)) for row in rows}

    for name, row in table("Productivity").items():
        want = ref["users"][name]
        assert (row["Scans"], row["Items"], row["Sessions"]) == (want["scans"], want["quantity"], want["sessions"])
        assert row["Hours"] == pytest.approx(want["hours"])
        assert row["Scans per hour"] == pytest.approx(want["scans_per_hour"])
    assert set(table("Productivity")) == set(hm.STAFF)
    for code, row in table("Zone completion").items():
        assert row["Items"] == ref["zones"][code]["items"]
        assert row["Completion"] == pytest.approx(ref["zones"][code]["completion"])
    summary = {figure: value for figure, value in sheets["Summary"][1:]}
    assert (summary["Total scans"], summary["Items"]) == (ref["headline"]["scans"], ref["headline"]["items"])
    assert summary["Hours worked"] == pytest.approx(ref["headline"]["hours"])
