"""The hidden explore export: the statistics page's ad-hoc table as csv or xlsx."""

from __future__ import annotations

import json

import duckdb
import openpyxl
import pytest

from exporthub.errors import InvalidVariable, PermissionDenied
from exporthub.models import AuditEvent
from exporthub.stats import ExploreSpec, ResultCache, StatsFilter, StatsService
from tests._lake import lake_sql
from tests.exporters._support import completed_job


def lake(hub, table: str) -> str:
    return lake_sql(hub.settings, "demo-open", table)


def run(hub, variables: dict, user: str = "analyst"):
    return completed_job(hub, "explore", variables, user=user)


def test_csv_is_the_view_and_adds_up_to_the_lake(demo_hub):
    job = run(demo_hub, {"measure": "scans", "dim1": "zone", "dim2": "day", "format": "csv"})
    csv = next(f.path for f in job.files if f.name.endswith(".csv"))
    sidecar = next(f.path for f in job.files if f.name.endswith(".about.json"))
    con = duckdb.connect()
    got = con.execute(f"SELECT count(*), sum(scans), count(DISTINCT zone) FROM read_csv('{csv}')").fetchone()
    total, zones = con.execute(
        f"SELECT count(*), count(DISTINCT zone_id) FROM {lake(demo_hub, 'scans')} WHERE NOT deleted"
    ).fetchone()
    assert got[1] == total and got[2] == zones
    header = [d[0] for d in con.execute(f"SELECT * FROM read_csv('{csv}') LIMIT 0").description]
    assert header == ["zone", "day", "scans"]
    assert json.loads(sidecar.read_text())["variables"]["measure"] == "scans"
    view = StatsService(demo_hub.db, demo_hub.settings, cache=ResultCache()).explore(
        "analyst", "demo-open", StatsFilter(), ExploreSpec("scans", "zone", "day")
    )
    assert got[0] == view.table.num_rows


def test_xlsx_with_filters(demo_hub):
    con = duckdb.connect()
    zones = [
        r[0]
        for r in con.execute(
            f"SELECT code FROM {lake(demo_hub, 'zones')} WHERE NOT deleted ORDER BY code LIMIT 3"
        ).fetchall()
    ]
    job = run(
        demo_hub,
        {
            "measure": "cost",
            "dim1": "user",
            "format": "xlsx",
            "zones": zones,
            "dateRange": "custom",
            "dateFrom": "2026-11-01",
            "dateTo": "2026-11-20",
        },
    )
    (path,) = [f.path for f in job.files]
    rows = list(openpyxl.load_workbook(path, read_only=True)["Explore"].iter_rows(values_only=True))
    assert rows[0] == ("user", "cost")
    expected = con.execute(
        f"SELECT sum(amount) FROM {lake(demo_hub, 'costs')} "
        "WHERE date BETWEEN DATE '2026-11-01' AND DATE '2026-11-20' "
        f"AND zone_id IN (SELECT zone_id FROM {lake(demo_hub, 'zones')} WHERE code IN (SELECT unnest(?)))",
        [zones],
    ).fetchone()[0]
    assert sum(r[1] for r in rows[1:]) == pytest.approx(expected, abs=1e-6)
    assert all(isinstance(r[1], float) for r in rows[1:])


def test_nonsense_is_refused_at_start_and_audited(demo_hub):
    service = demo_hub.service()
    with pytest.raises(InvalidVariable) as err:
        service.start("analyst", "demo-open", "explore", {"measure": "cost", "dim1": "hour"})
    assert err.value.key == "dim1"
    with pytest.raises(InvalidVariable) as err:
        service.start("analyst", "demo-open", "explore", {"measure": "scans", "dim1": "day", "dim2": "day"})
    assert err.value.key == "dim2"
    with demo_hub.db.read() as s:
        refused = (
            s.query(AuditEvent)
            .filter(AuditEvent.outcome == "refused", AuditEvent.target == "explore")
            .count()
        )
    assert refused == 2


def test_hidden_but_registered_and_permission_checked(demo_hub):
    service = demo_hub.service()
    assert service.definition("explore").is_hidden
    with pytest.raises(PermissionDenied):
        service.start("viewer", "demo-open", "explore", {"measure": "scans", "dim1": "day"})
