"""Benchmark the demo generation and the scans CSV export, against baselines in the same run.

    python benchmarks/scans_export.py [--scans 10000000] [--repeat 3]

* demo: ``exporthub demo`` end to end (both demo projects: N scans and N/4 scans).
* export: the scans CSV export through the real job engine (``run_job`` in a fresh process).
* baseline: DuckDB's own ``COPY (SELECT …) TO 'x.csv'`` of the same rows: the floor for writing CSV.
* memory: the export's peak RSS at N/10 and at N scans, to show memory does not grow with the rows.

The machine is shared and noisy, so medians and ratios are reported. Results are written to
``benchmarks/results/scans_export.json``.
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

RESULTS = Path(__file__).resolve().parent / "results" / "scans_export.json"


def _child_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env["EXPORTHUB_DATA_DIR"] = str(data_dir)
    env["EXPORTHUB_ZIP_THRESHOLD_BYTES"] = str(1 << 40)  # measure the CSV itself, not zipping
    return env


def _run_child(mode: str, data_dir: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode], env=_child_env(data_dir),
                         capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _child(mode: str) -> None:
    from exporthub.db import get_database
    from exporthub.settings import get_settings

    settings = get_settings()
    db = get_database(settings)
    started = time.perf_counter()
    if mode == "export":
        from exporters import REGISTRY
        from exporthub.dispatch import NullDispatcher
        from exporthub.jobs import JobService
        from exporthub.runner import run_job

        service = JobService(db, settings, NullDispatcher(), registry=REGISTRY)
        job = service.start("admin", "demo-open", "scans", {"format": "csv"})
        status = run_job(db, settings, job.id, dispatcher=NullDispatcher(), registry=REGISTRY)
        assert str(status) == "completed", service.get("admin", job.id).error
        size = sum(f.size for f in service.get("admin", job.id).files)
        service.remove("admin", job.id)
    else:
        from exporthub import lake

        con, _ = lake.open_project(settings, "demo-open")
        target = settings.tmp_dir / "baseline.csv"
        con.execute(f"""
            COPY (SELECT s.scan_id, timezone('Europe/Berlin', s.scanned_at) AS scanned_at, z.code, z.name,
                         z.area, s.session_id, zs.kind, s.user_id, s.barcode, s.quantity, s.device
                  FROM scans s LEFT JOIN zones z USING (zone_id) LEFT JOIN zone_sessions zs USING (session_id)
                  WHERE NOT s.deleted) TO '{target}' (HEADER)
        """)
        size = target.stat().st_size
        target.unlink()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "bytes": size, "peak_rss_mb": peak_mb}))


def _make_demo(data_dir: Path, scans: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli", "demo", "--scans", str(scans), "--anchor",
                    date.today().isoformat()], env=_child_env(data_dir), check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=["export", "baseline"])
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return

    with tempfile.TemporaryDirectory(prefix="exporthub-bench-") as tmp:
        small_dir, big_dir = Path(tmp) / "small", Path(tmp) / "big"
        demo_seconds = _make_demo(big_dir, args.scans)
        _make_demo(small_dir, args.scans // 10)
        exports = [_run_child("export", big_dir) for _ in range(args.repeat)]
        baselines = [_run_child("baseline", big_dir) for _ in range(args.repeat)]
        small = _run_child("export", small_dir)

    export_s = statistics.median(r["seconds"] for r in exports)
    baseline_s = statistics.median(r["seconds"] for r in baselines)
    result = {
        "scans": args.scans,
        "repeat": args.repeat,
        "demo_generation_seconds_both_projects": round(demo_seconds, 2),
        "export_csv_median_seconds": round(export_s, 2),
        "export_csv_rows_per_second": round(args.scans / export_s),
        "duckdb_copy_baseline_median_seconds": round(baseline_s, 2),
        "export_vs_baseline_ratio": round(export_s / baseline_s, 2),
        "csv_bytes": exports[0]["bytes"],
        "export_peak_rss_mb": round(max(r["peak_rss_mb"] for r in exports)),
        "export_peak_rss_mb_at_one_tenth": round(small["peak_rss_mb"]),
        "memory_growth_ratio_10x_rows": round(max(r["peak_rss_mb"] for r in exports) / small["peak_rss_mb"], 2),
        "measured_on": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
