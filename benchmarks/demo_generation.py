"""Time the demo lake generator: ``python benchmarks/demo_generation.py [--scans N]``.

Generates one project's lake into a temporary directory (deleted afterwards) and prints one JSON object
with the wall-clock seconds and scans per second.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import types
from datetime import date
from pathlib import Path

from exporthub.demo_lake import StaffMember, generate_project_lake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scans", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--staff", type=int, default=40)
    parser.add_argument("--part-rows", type=int, default=1_000_000)
    args = parser.parse_args()

    staff = [StaffMember(user_id=i + 1, hourly_rate=18.0 + (i % 9) * 2.5) for i in range(args.staff)]
    with tempfile.TemporaryDirectory(prefix="exporthub-bench-") as tmp:
        settings = types.SimpleNamespace(lake_dir=Path(tmp) / "lake")
        started = time.perf_counter()
        summary = generate_project_lake(
            settings,  # type: ignore[arg-type]  # only lake_dir is used
            "bench",
            n_scans=args.scans,
            seed=args.seed,
            anchor=date(2024, 6, 30),
            timezone="Europe/Berlin",
            staff=staff,
            part_rows=args.part_rows,
        )
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in settings.lake_dir.rglob("*.parquet"))
    print(
        json.dumps(
            {
                "scans": summary.scans,
                "sessions": summary.sessions,
                "zones": summary.zones,
                "costs": summary.costs,
                "seconds": round(seconds, 3),
                "rows_per_second": round(summary.scans / seconds) if seconds > 0 else None,
                "parquet_bytes": size,
            }
        )
    )


if __name__ == "__main__":
    main()
