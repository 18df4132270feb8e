"""Benchmark the Iceberg lake: a scans CSV export reading an Iceberg snapshot against the same export
reading the same rows as part files (the lake format before Iceberg), and a 1M-scan import.

    python benchmarks/lake_read.py [--scans 10000000] [--repeat 3] [--import-rows 1000000]

* iceberg: the scans CSV export through the real job engine (``run_job`` in a fresh process), reading
  the demo's Iceberg snapshot (catalog, manifests, data files).
* parts: the same process, the same exporter code, but the lake views are ``read_parquet`` over
  part files holding the same rows, written as the old lake wrote them (1M rows a part, zstd, 256k row
  groups) and listed by glob as the old lake did: what reading the lake cost before.
* Runs are paired (iceberg, parts, iceberg, parts, ...) so both see the same machine load; medians.
* import: ``exporthub import`` of a CSV of ``--import-rows`` scans without ids, in a fresh process; it
  must commit exactly one snapshot and add exactly those rows.

Results go to ``benchmarks/results/lake_read.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "lake_read.json"


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env["EXPORTHUB_DATA_DIR"] = str(data_dir)
    env["EXPORTHUB_ZIP_THRESHOLD_BYTES"] = str(1 << 40)  # measure the CSV itself, not zipping
    return env


def _child(mode: str, parts_dir: str) -> None:
    from exporters import REGISTRY
    from exporthub import lake
    from exporthub.db import get_database
    from exporthub.dispatch import NullDispatcher
    from exporthub.jobs import JobService
    from exporthub.runner import run_job
    from exporthub.settings import get_settings

    settings = get_settings()
    db = get_database(settings)
    if mode == "parts":
        _read_part_files(lake, Path(parts_dir))
    started = time.perf_counter()
    service = JobService(db, settings, NullDispatcher(), registry=REGISTRY)
    job = service.start("admin", "demo-open", "scans", {"format": "csv"})
    status = run_job(db, settings, job.id, dispatcher=NullDispatcher(), registry=REGISTRY)
    assert str(status) == "completed", service.get("admin", job.id).error
    seconds = time.perf_counter() - started
    size = sum(f.size for f in service.get("admin", job.id).files if f.name.endswith(".csv"))
    service.remove("admin", job.id)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "bytes": size, "peak_rss_mb": peak_mb}))


def _read_part_files(lake, parts: Path) -> None:  # type: ignore[no-untyped-def]
    """Point ``lake.open_project`` at the part files, listed by glob in name order as the old lake did."""
    import pyarrow.parquet as pq

    from exporthub.lake.snapshot import DataFileRef, LakeSnapshot, TableSnapshot

    def open_project(settings, slug):  # type: ignore[no-untyped-def]
        tables = {}
        for table in lake.TABLES:
            files = sorted((parts / table).glob("part-*.parquet"))
            refs = tuple(DataFileRef(p.as_uri(), pq.ParquetFile(p).metadata.num_rows, p.stat().st_size, None, None)
                         for p in files)
            tables[table] = TableSnapshot(table, None, None, refs)
        snap = LakeSnapshot(slug=slug, tables=tables)
        con = lake.connect(settings)
        snap.register(con)
        return con, snap

    lake.open_project = open_project


def _write_part_files(data_dir: Path, parts: Path) -> None:
    """The demo's rows as the old lake stored them: part-NNNNN.parquet, 1M rows each."""
    code = f"""
import pyarrow.parquet as pq
from pathlib import Path
from exporthub import lake
from exporthub.settings import get_settings
con, _ = lake.open_project(get_settings(), "demo-open")
for table in lake.TABLES:
    folder = Path({str(parts)!r}) / table
    folder.mkdir(parents=True)
    reader = con.sql(f"SELECT * FROM {{table}}").to_arrow_reader(1_000_000)
    for i, batch in enumerate(reader):
        pq.write_table(__import__("pyarrow").Table.from_batches([batch]), folder / f"part-{{i:05d}}.parquet",
                       compression="zstd", row_group_size=256 * 1024)
"""
    subprocess.run([sys.executable, "-c", code], env=_env(data_dir), check=True)


def _export(mode: str, data_dir: Path, parts: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--parts", str(parts)], env=_env(data_dir),
                         capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _import(data_dir: Path, rows: int, folder: Path) -> dict[str, float]:
    """Import ``rows`` scans without ids from one CSV; returns seconds and the snapshots/rows it added."""
    code = f"""
import json
from exporthub import lake
from exporthub.lake.catalog import load_table
from exporthub.settings import get_settings
s = get_settings()
con, snap = lake.open_project(s, "demo-open")
sid, zone, user = con.execute(
    "SELECT session_id, zone_id, user_id FROM zone_sessions WHERE NOT deleted LIMIT 1").fetchall()[0]
con.execute(f"COPY (SELECT {{zone}} AS zone_id, {{sid}} AS session_id, {{user}} AS user_id, 'IMP-' || i AS barcode, "
            f"1 AS quantity, TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) AS scanned_at, 'DEV-I' AS device "
            f"FROM range({rows}) t(i)) TO '{folder / 'import.csv'}' (HEADER)")
snapshots = len(load_table(s, "demo-open", "scans").metadata.snapshots)
print(json.dumps({{"snapshots": snapshots, "rows": snap.tables["scans"].rows}}))
"""
    folder.mkdir(parents=True, exist_ok=True)
    before = json.loads(subprocess.run([sys.executable, "-c", code], env=_env(data_dir), check=True,
                                       capture_output=True, text=True).stdout.strip().splitlines()[-1])
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli", "import", "demo-open", "scans", str(folder / "import.csv")],
                   env=_env(data_dir), check=True, capture_output=True)
    seconds = time.perf_counter() - started
    after = json.loads(subprocess.run([sys.executable, "-c", code], env=_env(data_dir), check=True,
                                      capture_output=True, text=True).stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "snapshots_added": after["snapshots"] - before["snapshots"],
            "rows_added": after["rows"] - before["rows"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["iceberg", "parts"])
    parser.add_argument("--parts", default="")
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.parts)
        return

    with tempfile.TemporaryDirectory(prefix="exporthub-lake-bench-") as tmp:
        data_dir, parts = Path(tmp) / "data", Path(tmp) / "parts"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cli", "demo", "--scans", str(args.scans), "--anchor",
                        date.today().isoformat()], env=_env(data_dir), check=True, capture_output=True)
        demo_seconds = time.perf_counter() - started
        _write_part_files(data_dir, parts)
        pairs = [(_export("iceberg", data_dir, parts), _export("parts", data_dir, parts)) for _ in range(args.repeat)]
        assert all(i["bytes"] == p["bytes"] for i, p in pairs), "the two reads must export the same CSV"
        imported = _import(data_dir, args.import_rows, Path(tmp) / "import")

    iceberg = statistics.median(i["seconds"] for i, _ in pairs)
    parts_s = statistics.median(p["seconds"] for _, p in pairs)
    result = {
        "scans": args.scans,
        "repeat": args.repeat,
        "demo_generation_seconds_both_projects": round(demo_seconds, 2),
        "export_csv_iceberg_median_seconds": round(iceberg, 2),
        "export_csv_part_files_median_seconds": round(parts_s, 2),
        "iceberg_vs_part_files_ratio": round(iceberg / parts_s, 3),
        "paired_ratios": [round(i["seconds"] / p["seconds"], 3) for i, p in pairs],
        "csv_bytes": pairs[0][0]["bytes"],
        "export_peak_rss_mb_iceberg": round(max(i["peak_rss_mb"] for i, _ in pairs)),
        "export_peak_rss_mb_part_files": round(max(p["peak_rss_mb"] for _, p in pairs)),
        "import_rows": args.import_rows,
        "import_seconds": round(imported["seconds"], 2),
        "import_snapshots_committed": imported["snapshots_added"],
        "import_rows_added": imported["rows_added"],
        "measured_on": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, shared",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
