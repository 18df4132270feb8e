"""The baselines: what an analyst could use instead of Exporthub, run as their own processes.

    python -m benchmarks.baselines NAME SPEC_JSON OUT_PATH

``SPEC_JSON`` (written by the harness) names the lake files of the project, its timezone, the users
as a Parquet file and the number of rows an XLSX baseline writes. Each baseline imports only what it
needs, so its whole process is what the analyst would wait for. In-process figures (the preview's
aggregates) are printed as JSON on the last line of stdout.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def _views(con: Any, spec: dict[str, Any]) -> None:
    for table, files in spec["files"].items():
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listing}])")
    con.execute(f"CREATE VIEW users AS SELECT * FROM read_parquet('{spec['users']}')")


def scans_query(timezone: str, limit: int | None = None) -> str:
    """The scans export's query and columns (``exporters/scans.py``, all time, deleted left out)."""
    return f"""
        SELECT s.scan_id, timezone('{timezone}', s.scanned_at) AS scanned_at,
               z.code AS zone_code, z.name AS zone_name, z.area AS area,
               s.session_id, zs.kind AS session_kind,
               u.username AS username, u.display_name AS user_name,
               s.barcode, s.quantity, s.device
        FROM scans s
        LEFT JOIN zones z ON z.zone_id = s.zone_id
        LEFT JOIN zone_sessions zs ON zs.session_id = s.session_id
        LEFT JOIN users u ON u.user_id = s.user_id
        WHERE NOT s.deleted {f'LIMIT {limit}' if limit else ''}
    """


def duckdb_copy(spec: dict[str, Any], out: Path, fmt: str) -> None:
    import duckdb

    con = duckdb.connect(config={"threads": spec["threads"]})
    con.execute("SET TimeZone = 'UTC'")
    _views(con, spec)
    options = "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT parquet, COMPRESSION zstd"
    con.execute(f"COPY ({scans_query(spec['timezone'])}) TO '{out}' ({options})")


def _scans_frame(spec: dict[str, Any], kind: str) -> Any:
    import duckdb

    con = duckdb.connect(config={"threads": spec["threads"]})
    con.execute("SET TimeZone = 'UTC'")
    _views(con, spec)
    rel = con.sql(scans_query(spec["timezone"], spec["xlsx_rows"]))
    return rel.pl() if kind == "polars" else rel.df()


def polars_xlsx(spec: dict[str, Any], out: Path) -> None:
    _scans_frame(spec, "polars").write_excel(out, worksheet="Scans", autofilter=True, freeze_panes=(1, 0))


def pandas_openpyxl_xlsx(spec: dict[str, Any], out: Path) -> None:
    frame = _scans_frame(spec, "pandas")
    frame.to_excel(out, sheet_name="Scans", index=False, engine="openpyxl")


# ------------------------------------------------------------------ statistics in pandas


def pandas_statistics(spec: dict[str, Any]) -> dict[str, Any]:
    """The statistics report's tables computed with pandas from the same Parquet files."""
    import pandas as pd

    tz = spec["timezone"]

    def read(table: str, columns: list[str] | None = None) -> Any:
        frames = [pd.read_parquet(f, columns=columns) for f in spec["files"][table]]
        return pd.concat(frames, ignore_index=True)

    scans = read("scans", ["zone_id", "user_id", "session_id", "quantity", "scanned_at", "deleted"])
    scans = scans[~scans["deleted"]]
    sessions = read("zone_sessions")
    sessions = sessions[~sessions["deleted"]]
    zones = read("zones")
    costs = read("costs")
    users = pd.read_parquet(spec["users"])
    local_day = scans["scanned_at"].dt.tz_convert(tz).dt.floor("D").dt.date
    sessions = sessions.assign(hours=(sessions["ended_at"] - sessions["started_at"]).dt.total_seconds() / 3600)
    closed = sessions[sessions["ended_at"].notna()]
    per_session = scans.groupby("session_id").agg(n=("quantity", "size"), q=("quantity", "sum"))
    by_user = scans.groupby("user_id").agg(scans=("quantity", "size"), items=("quantity", "sum"))
    ses_user = sessions.groupby("user_id").agg(sessions=("session_id", "size"), hours=("hours", "sum"))
    productivity = by_user.join(ses_user, how="outer").join(users.set_index("user_id")[["username"]])
    productivity["scans_per_hour"] = productivity["scans"] / productivity["hours"]
    closed_day = closed.assign(day=closed["started_at"].dt.tz_convert(tz).dt.date).join(per_session, on="session_id")
    by_zone = scans.groupby("zone_id").agg(scans=("quantity", "size"), items=("quantity", "sum"),
                                           last=("scanned_at", "max"))
    by_zone["last"] = by_zone["last"].dt.tz_convert(tz).dt.tz_localize(None)  # shown in local time
    minutes = (closed["ended_at"] - closed["started_at"]).dt.total_seconds() / 60
    bounds = [0, 15, 30, 60, 90, 120, 180, 240, float("inf")]
    return {
        "headline": pd.DataFrame([{
            "scans": len(scans), "items": int(scans["quantity"].sum()), "active_users": scans["user_id"].nunique(),
            "sessions": len(sessions), "hours": float(closed["hours"].sum()), "cost": float(costs["amount"].sum()),
        }]),
        "scans_over_time": scans.groupby(local_day).agg(scans=("quantity", "size"), items=("quantity", "sum")),
        "daily_productivity": closed_day.groupby("day").agg(scans=("n", "sum"), hours=("hours", "sum")),
        "productivity": productivity.reset_index(),
        "zone_completion": zones.join(by_zone, on="zone_id"),
        "session_durations": pd.cut(minutes, bounds, right=False).value_counts(sort=False).to_frame("sessions"),
        "cost_by_category": costs.groupby("category").agg(entries=("amount", "size"), amount=("amount", "sum")),
        "cost_over_time": costs.pivot_table(index="date", columns="category", values="amount", aggfunc="sum"),
        "cost_per_scan": costs.groupby("date")["amount"].sum().to_frame("cost").join(
            scans.groupby(local_day).size().to_frame("scans"), how="outer"),
    }


def pandas_statistics_xlsx(spec: dict[str, Any], out: Path) -> None:
    import pandas as pd

    tables = pandas_statistics(spec)
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        for name, frame in tables.items():
            frame.to_excel(writer, sheet_name=name[:31])


def pandas_statistics_pdf(spec: dict[str, Any], out: Path) -> None:
    """The aggregates, then their tables in a PDF with reportlab (no charts: a baseline in favour of
    pandas, since our report also draws nine charts)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import LongTable, PageBreak, Paragraph, SimpleDocTemplate

    tables = pandas_statistics(spec)
    style = getSampleStyleSheet()["Heading2"]
    story: list[Any] = []
    for name, frame in tables.items():
        frame = frame.reset_index().head(100)
        rows = [list(map(str, frame.columns))] + [[str(v) for v in row] for row in frame.itertuples(index=False)]
        story += [Paragraph(name, style), LongTable(rows, repeatRows=1), PageBreak()]
    SimpleDocTemplate(str(out), pagesize=A4).build(story)


def pandas_preview(spec: dict[str, Any]) -> dict[str, float]:
    """The preview's queries in pandas, timed in the process (the page's server is already running)."""
    import pandas  # noqa: F401 - imported before the clock starts, like a running server

    started = time.perf_counter()
    pandas_statistics(spec)
    return {"seconds": time.perf_counter() - started}


def imports() -> None:
    import duckdb  # noqa: F401
    import pyarrow  # noqa: F401
    import sqlalchemy  # noqa: F401


def main(argv: list[str]) -> None:
    name = argv[0]
    if name == "imports":
        imports()
        return
    spec = json.loads(Path(argv[1]).read_text())
    out = Path(argv[2])
    runners = {
        "duckdb_copy_csv": lambda: duckdb_copy(spec, out, "csv"),
        "duckdb_copy_parquet": lambda: duckdb_copy(spec, out, "parquet"),
        "polars_xlsx": lambda: polars_xlsx(spec, out),
        "pandas_openpyxl_xlsx": lambda: pandas_openpyxl_xlsx(spec, out),
        "pandas_statistics_pdf": lambda: pandas_statistics_pdf(spec, out),
        "pandas_statistics_xlsx": lambda: pandas_statistics_xlsx(spec, out),
        "pandas_preview": lambda: print(json.dumps(pandas_preview(spec))),
    }
    runners[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
