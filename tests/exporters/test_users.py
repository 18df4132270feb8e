"""The users export: who is listed, and activity figures equal to independent queries over the lake."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import openpyxl
import pytest
from sqlalchemy import select

from cli import main
from exporthub.models import Membership, Project, User
from tests.exporters._support import completed_job, data_file, parts


def run_export(hub, variables: dict, *, user: str = "analyst", slug: str = "demo-open"):
    return completed_job(hub, "users", variables, user=user, slug=slug)


def accounts(hub, slug: str) -> tuple[dict[int, User], set[int]]:
    """All users by id, and the ids of the project's members."""
    with hub.db.read() as s:
        users = {u.id: u for u in s.scalars(select(User))}
        project = s.scalar(select(Project).where(Project.slug == slug))
        members = set(s.scalars(select(Membership.user_id).where(Membership.project_id == project.id)))
    return users, members


def lake_activity(hub, slug: str, *, start=None, end=None, zone_codes=None) -> dict[int, dict]:
    """Per user id, computed with plain per-table queries (not the exporter's SQL)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    zone_ids = None
    if zone_codes:
        zone_ids = [
            r[0]
            for r in con.execute(
                f"SELECT zone_id FROM {parts(hub, slug, 'zones')} WHERE list_contains(?, code)", [zone_codes]
            ).fetchall()
        ]

    def keep(time_col: str) -> str:
        cond = "NOT deleted"
        if start is not None:
            cond += f" AND {time_col} >= '{start.isoformat()}' AND {time_col} < '{end.isoformat()}'"
        if zone_ids is not None:
            cond += f" AND list_contains({zone_ids}, zone_id)"
        return cond

    out: dict[int, dict] = {}
    for uid, n, qty, first, last in con.execute(
        f"SELECT user_id, count(scan_id), sum(quantity), min(scanned_at), max(scanned_at) "
        f"FROM {parts(hub, slug, 'scans')} WHERE {keep('scanned_at')} GROUP BY ALL"
    ).fetchall():
        out[uid] = {"scans": n, "quantity": qty, "sessions": 0, "seconds": 0, "times": [first, last],
                    "closed_scans": 0}
    scans_per_session = dict(
        con.execute(
            f"SELECT session_id, count(*) FROM {parts(hub, slug, 'scans')} WHERE {keep('scanned_at')} GROUP BY 1"
        ).fetchall()
    )
    for uid, session_id, started, ended in con.execute(
        f"SELECT user_id, session_id, started_at, ended_at FROM {parts(hub, slug, 'zone_sessions')} "
        f"WHERE {keep('started_at')}"
    ).fetchall():
        row = out.setdefault(
            uid, {"scans": 0, "quantity": 0, "sessions": 0, "seconds": 0, "times": [], "closed_scans": 0}
        )
        row["sessions"] += 1
        row["times"] += [started, ended or started]
        if ended is not None:
            row["seconds"] += (ended - started).total_seconds()
            # Scans per hour counts only the scans of closed sessions (README, "Definitions").
            row["closed_scans"] += scans_per_session.get(session_id, 0)
    return out


def lake_user_ids(hub, slug: str) -> set[int]:
    con = duckdb.connect()
    ids = set()
    for table in ("scans", "zone_sessions"):
        ids |= {
            r[0] for r in con.execute(f"SELECT DISTINCT user_id FROM {parts(hub, slug, table)}").fetchall()
        }
    return ids


def check_against_lake(hub, rows: list[dict], slug: str, tz: str, **window) -> None:
    activity = lake_activity(hub, slug, **window)
    users, _ = accounts(hub, slug)
    by_name = {u.username: uid for uid, u in users.items()}
    assert rows, "the export is empty"
    for row in rows:
        a = activity.get(
            by_name[row["username"]],
            {"scans": 0, "quantity": 0, "sessions": 0, "seconds": 0, "times": [], "closed_scans": 0},
        )
        assert (row["scans"], row["quantity"], row["sessions"]) == (a["scans"], a["quantity"], a["sessions"])
        assert row["hours_worked"] == pytest.approx(a["seconds"] / 3600, abs=1e-4)
        if a["times"]:
            local = [t.astimezone(ZoneInfo(tz)).replace(tzinfo=None) for t in a["times"]]
            assert (row["first_activity"], row["last_activity"]) == (min(local), max(local))
        else:
            assert row["first_activity"] is None and row["last_activity"] is None
        expected_rate = a["closed_scans"] / (a["seconds"] / 3600) if a["seconds"] else None
        assert row["scans_per_hour"] == (pytest.approx(expected_rate, abs=0.01) if expected_rate else None)
    # Every person with activity is listed, so the totals are the lake's (minus hidden deleted accounts).
    listed = {by_name[r["username"]] for r in rows}
    hidden = {uid for uid in activity if uid not in listed}
    assert all(users[uid].deleted_at is not None for uid in hidden)
    assert sum(r["scans"] for r in rows) == sum(a["scans"] for a in activity.values()) - sum(
        activity[uid]["scans"] for uid in hidden
    )


def read_parquet_rows(path) -> list[dict]:
    rel = duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}') ORDER BY username")
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


def test_users_parquet_lists_members_and_project_people_with_lake_figures(demo_hub):
    job = run_export(demo_hub, {"format": "parquet"})
    rows = read_parquet_rows(data_file(job, "parquet"))
    users, members = accounts(demo_hub, "demo-open")
    listed = {r["username"] for r in rows}
    expected = {
        users[i].username
        for i in (lake_user_ids(demo_hub, "demo-open") | members)
        if users[i].deleted_at is None
    }
    assert listed == expected
    # Members without activity are there with zeros; people idle in this project are not.
    assert {"manager", "analyst", "viewer"} <= listed and "admin" not in listed and "outsider" not in listed
    viewer = next(r for r in rows if r["username"] == "viewer")
    assert (viewer["scans"], viewer["sessions"], viewer["hours_worked"], viewer["project_role"]) == (
        0,
        0,
        0,
        "viewer",
    )
    assert "deleted_at" not in rows[0]
    check_against_lake(demo_hub, rows, "demo-open", "Europe/Berlin")


def test_deleted_users_only_with_include_deleted(demo_hub):
    users, _ = accounts(demo_hub, "demo-open")
    deleted = {u.username for u in users.values() if u.deleted_at is not None}
    with_history = deleted & {users[i].username for i in lake_user_ids(demo_hub, "demo-open")}
    assert with_history, "the demo has a deleted user with history in demo-open"
    plain_job = run_export(demo_hub, {"format": "parquet"})
    plain = read_parquet_rows(data_file(plain_job, "parquet"))
    assert not {r["username"] for r in plain} & deleted
    # Their scans are left out of the totals, and the job says so (found in QA).
    assert any("deleted user(s)" in w and "Include deleted" in w for w in plain_job.warnings)
    full = read_parquet_rows(
        data_file(run_export(demo_hub, {"format": "parquet", "includeDeleted": True}), "parquet")
    )
    shown = {r["username"]: r for r in full}
    assert with_history <= set(shown) and all(shown[n]["deleted_at"] is not None for n in with_history)
    assert sum(shown[n]["scans"] for n in with_history) > 0
    assert all(r["deleted_at"] is None for n, r in shown.items() if n not in deleted)
    check_against_lake(demo_hub, full, "demo-open", "Europe/Berlin")
    # demo-closed in its own timezone, as its manager.
    closed = read_parquet_rows(
        data_file(run_export(demo_hub, {"format": "parquet"}, user="manager", slug="demo-closed"), "parquet")
    )
    check_against_lake(demo_hub, closed, "demo-closed", "America/New_York")


def test_window_and_zones_filter_the_activity(demo_hub):
    con = duckdb.connect()
    codes = [
        r[0]
        for r in con.execute(
            f"SELECT code FROM {parts(demo_hub, 'demo-open', 'zones')} "
            "WHERE NOT deleted ORDER BY code LIMIT 6"
        ).fetchall()
    ]
    job = run_export(
        demo_hub,
        {
            "format": "csv",
            "dateRange": "custom",
            "dateFrom": "2026-10-15",
            "dateTo": "2026-11-10",
            "zones": codes,
        },
    )
    rel = duckdb.connect().execute(f"SELECT * FROM read_csv('{data_file(job, 'csv')}')")
    cols = [d[0] for d in rel.description]
    rows = [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]
    tz = ZoneInfo("Europe/Berlin")
    start, end = datetime(2026, 10, 15, tzinfo=tz), datetime(2026, 11, 11, tzinfo=tz)
    check_against_lake(demo_hub, rows, "demo-open", "Europe/Berlin", start=start, end=end, zone_codes=codes)
    assert any(r["scans"] == 0 for r in rows) and any(r["scans"] > 0 for r in rows)


def test_xlsx_is_typed_neutralised_and_has_about(demo_hub):
    job = run_export(demo_hub, {"format": "xlsx"})
    wb = openpyxl.load_workbook(data_file(job, "xlsx"))
    sheet = wb["Users"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["user_id", "username", "display_name"] and sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref and sheet[1][0].font.bold
    body = [dict(zip(header, (c.value for c in row), strict=True)) for row in sheet.iter_rows(min_row=2)]
    names = {r["display_name"] for r in body}
    assert "'=Formula Fred" in names and "=Formula Fred" not in names
    worker = next(r for r in body if r["scans"])
    assert isinstance(worker["scans"], int | float) and isinstance(worker["first_activity"], datetime)
    assert isinstance(worker["can_log_in"], bool)
    rows = read_parquet_rows(data_file(run_export(demo_hub, {"format": "parquet"}), "parquet"))
    assert sum(r["scans"] for r in body) == sum(r["scans"] for r in rows)
    assert sum(r["hours_worked"] for r in body) == pytest.approx(sum(r["hours_worked"] for r in rows))
    about = dict(wb["About"].iter_rows(values_only=True))
    assert about["Export type"] == "users" and "demo-open" in about["Project"]


@pytest.mark.parametrize(
    ("slug", "user", "code"),
    [
        ("demo-open", "analyst", 0),
        ("demo-closed", "manager", 0),
        ("demo-closed", "admin", 0),
        ("demo-open", "viewer", 2),
        ("demo-closed", "analyst", 2),
    ],
)
def test_cli_inline_as_each_role_allows(demo_hub, capsys, slug, user, code):
    rc = main(
        [
            "export",
            "users",
            "--project",
            slug,
            "--user",
            user,
            "--inline",
            "--json",
            "--var",
            "format=csv",
            "--var",
            "csvDialect=excel",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == code
    if code == 0:
        job = json.loads(out)["job"]
        assert job["status"] == "completed"
        (csv,) = [f["path"] for f in job["files"] if f["name"].endswith(".csv")]
        raw = Path(csv).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") and b";" in raw.splitlines()[0]
    else:
        assert json.loads(out)["error"]["message"] == "Permission denied"  # --json: refusals are JSON
