"""The cost report: every breakdown adds up to the lake's costs, read back with real readers."""

from __future__ import annotations

import duckdb
import openpyxl
import pytest
from pypdf import PdfReader
from python_calamine import CalamineWorkbook

from exporthub.errors import PermissionDenied
from tests._lake import lake_sql
from tests.exporters._support import completed_job

CATEGORIES = ("labor", "travel", "equipment", "other")


def lake(hub, slug: str, table: str) -> str:
    return lake_sql(hub.settings, slug, table)


def lake_costs(
    hub, slug: str = "demo-open", where: str = "TRUE", params: list | None = None
) -> dict[str, float]:
    """Amount per category and in total, straight from the lake."""
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT category, sum(amount) FROM {lake(hub, slug, 'costs')} c WHERE {where} GROUP BY 1",
            params or [],
        )
        .fetchall()
    )
    out = {c: float(a) for c, a in rows}
    out["total"] = sum(out.values())
    return out


def run(hub, variables: dict, user: str = "analyst", slug: str = "demo-open"):
    job = completed_job(hub, "cost", variables, user=user, slug=slug)
    (path,) = [f.path for f in job.files]
    return job, path


def sheet_rows(path, name: str) -> list[tuple]:
    wb = openpyxl.load_workbook(path, read_only=True)
    return [r for r in wb[name].iter_rows(values_only=True) if any(v is not None for v in r)]


def test_xlsx_breakdowns_and_summary_add_up_to_the_lake(demo_hub):
    _, path = run(demo_hub, {"format": "xlsx"})
    expected = lake_costs(demo_hub)
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == ["Summary", "By category", "By user", "By zone", "By day", "About"]

    summary = {r[0]: (r[1], r[2]) for r in sheet_rows(path, "Summary")[1:]}
    assert summary["Total cost"][0] == pytest.approx(expected["total"], abs=1e-6)
    for c in CATEGORIES:
        assert summary[f"{c.capitalize()} cost"][0] == pytest.approx(expected.get(c, 0.0), abs=1e-6)
    entries = (
        duckdb.connect().execute(f"SELECT count(*) FROM {lake(demo_hub, 'demo-open', 'costs')}").fetchone()[0]
    )
    assert summary["Cost entries"][1] == entries and isinstance(summary["Cost entries"][1], int)

    for name in ("By user", "By zone", "By day"):
        rows = sheet_rows(path, name)
        header, body, total = rows[0], rows[1:-1], rows[-1]
        assert total[0] == "Total"
        col = {h: i for i, h in enumerate(header)}
        assert total[col["Total"]] == pytest.approx(expected["total"], abs=1e-6)
        assert sum(r[col["Total"]] for r in body) == pytest.approx(expected["total"], abs=1e-6)
        for c in CATEGORIES:  # the category subtotals
            assert total[col[c.capitalize()]] == pytest.approx(expected.get(c, 0.0), abs=1e-6)
        for r in body:  # each row's total is its categories' sum
            assert r[col["Total"]] == pytest.approx(sum(r[col[c.capitalize()]] for c in CATEGORIES), abs=1e-6)

    cat = sheet_rows(path, "By category")
    assert [r[0] for r in cat[1:-1]] == list(CATEGORIES)
    assert cat[-1][cat[0].index("Amount")] == pytest.approx(expected["total"], abs=1e-6)


def test_labor_is_never_added_on_top(demo_hub):
    """Labor in the lake already is session hours × rate; the report takes it once, from the lake."""
    from sqlalchemy import select

    from exporthub.models import User

    _, path = run(demo_hub, {"format": "xlsx"})
    summary = {r[0]: r[1] for r in sheet_rows(path, "Summary")[1:]}
    expected = lake_costs(demo_hub)
    with demo_hub.db.read() as s:
        rates = [(u.id, u.hourly_rate) for u in s.scalars(select(User))]
    con = duckdb.connect()
    con.execute("CREATE TABLE rates(user_id INTEGER, rate DOUBLE)")
    con.executemany("INSERT INTO rates VALUES (?, ?)", rates)
    from_sessions = con.execute(
        f"SELECT sum(round(epoch(ended_at - started_at) / 3600.0 * r.rate, 2)) FROM "
        f"{lake(demo_hub, 'demo-open', 'zone_sessions')} zs JOIN rates r USING (user_id) "
        "WHERE NOT deleted AND ended_at IS NOT NULL"
    ).fetchone()[0]
    assert expected["labor"] == pytest.approx(from_sessions, rel=1e-3)  # the lake's labor is that product
    assert summary["Labor cost"] == pytest.approx(expected["labor"], abs=1e-6)
    assert summary["Total cost"] == pytest.approx(expected["total"], abs=1e-6)  # …counted once


def test_filters_by_dates_and_zones(demo_hub):
    con = duckdb.connect()
    zones = [
        r[0]
        for r in con.execute(
            f"SELECT code FROM {lake(demo_hub, 'demo-open', 'zones')} WHERE NOT deleted ORDER BY code LIMIT 4"
        ).fetchall()
    ]
    _, path = run(
        demo_hub,
        {
            "format": "xlsx",
            "dateRange": "custom",
            "dateFrom": "2026-10-15",
            "dateTo": "2026-11-10",
            "zones": zones,
        },
    )
    expected = lake_costs(
        demo_hub,
        where=f"date BETWEEN DATE '2026-10-15' AND DATE '2026-11-10' AND zone_id IN "
        f"(SELECT zone_id FROM {lake(demo_hub, 'demo-open', 'zones')} WHERE code IN (SELECT unnest(?)))",
        params=[zones],
    )
    assert expected["total"] > 0
    # A second real reader: calamine.
    book = CalamineWorkbook.from_path(str(path))
    summary = {r[0]: r[1] for r in book.get_sheet_by_name("Summary").to_python()[1:]}
    assert summary["Total cost"] == pytest.approx(expected["total"], abs=1e-6)
    by_zone = book.get_sheet_by_name("By zone").to_python()
    codes = {r[0] for r in by_zone[1:-1]}
    assert codes <= set(zones) and "(no zone)" not in codes
    days = [r[0] for r in book.get_sheet_by_name("By day").to_python()[1:-1]]
    assert min(days).isoformat() >= "2026-10-15" and max(days).isoformat() <= "2026-11-10"


def test_pdf_has_titles_breakdowns_and_the_grand_total(demo_hub):
    job, path = run(demo_hub, {"format": "pdf"}, user="manager", slug="demo-closed")
    assert path.suffix == ".pdf" and path.name.startswith("cost_export_")
    text = "\n".join(p.extract_text() for p in PdfReader(path).pages)
    expected = lake_costs(demo_hub, slug="demo-closed")
    for title in (
        "Cost Report",
        "Summary",
        "Cost by category",
        "Cost by user",
        "Cost by zone",
        "Cost by day",
        "Cost over time by category",
        "Demo Store (closed)",
    ):
        assert title in text, title
    assert f"{expected['total']:,.2f}" in text
    assert text.count(f"{expected['total']:,.2f}") >= 5  # summary and each breakdown's total row
    assert "Page 1 of" in text
    assert not job.warnings


def test_viewer_may_not_start_it(demo_hub):
    with pytest.raises(PermissionDenied):
        demo_hub.service().start("viewer", "demo-open", "cost", {"format": "pdf"})
