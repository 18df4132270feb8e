"""Time the demo lake generator: ``python benchmarks/demo_generation.py [--scans N] [--repeat 3]``.

Generates one project's lake into a temporary instance (deleted afterwards), as Iceberg tables (one
commit per table), and, paired with it in the same run, the same rows written as plain part files
the way the lake was written before Iceberg (``pq.write_table`` per part): the generator's own cost is
the same in both, so the ratio is what Iceberg adds. Prints one JSON object with the medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from exporthub import demo_lake
from exporthub.demo_lake import StaffMember, generate_project_lake
from exporthub.settings import Settings, get_settings


def _settings(root: Path) -> Settings:
    return dataclasses.replace(get_settings(), data_dir=root, database_url=f"sqlite:///{root / 'exporthub.db'}",
                               lake_url=(root / "lake").as_uri())


def _part_files(settings: Settings, slug: str, name: str, chunks: Iterable[pa.Table], part_rows: int) -> None:
    """The old lake's writer: part-NNNNN.parquet files of ``part_rows`` rows, zstd, 256k row groups."""
    folder = settings.data_dir / "parts" / slug / name
    folder.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(chunks):
        pq.write_table(chunk, folder / f"part-{i:05d}.parquet", compression="zstd", row_group_size=256 * 1024)


def _run(root: Path, args: argparse.Namespace, staff: list[StaffMember], *, parts: bool) -> tuple[float, object, int]:
    settings = _settings(root)
    from exporthub.db import get_database

    get_database(settings)  # the metadata DB's migrations are not the generator's cost
    original = demo_lake._write
    if parts:
        demo_lake._write = _part_files
        demo_lake.drop_project = lambda settings, slug: None  # type: ignore[attr-defined]  # patched on purpose
    try:
        started = time.perf_counter()
        summary = generate_project_lake(settings, "bench", n_scans=args.scans, seed=args.seed,
                                        anchor=date(2024, 6, 30), timezone="Europe/Berlin", staff=staff,
                                        part_rows=args.part_rows)
        seconds = time.perf_counter() - started
    finally:
        demo_lake._write = original
        from exporthub.lake.catalog import drop_project

        demo_lake.drop_project = drop_project  # type: ignore[attr-defined]
    size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    return seconds, summary, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scans", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--staff", type=int, default=40)
    parser.add_argument("--part-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    staff = [StaffMember(user_id=i + 1, hourly_rate=18.0 + (i % 9) * 2.5) for i in range(args.staff)]
    iceberg, plain = [], []
    for _ in range(args.repeat):  # paired: both see the same machine load
        with tempfile.TemporaryDirectory(prefix="exporthub-bench-") as tmp:
            seconds, summary, size = _run(Path(tmp) / "iceberg", args, staff, parts=False)
            iceberg.append(seconds)
            plain.append(_run(Path(tmp) / "parts", args, staff, parts=True)[0])
    median, baseline = statistics.median(iceberg), statistics.median(plain)
    print(json.dumps({
        "scans": summary.scans,  # type: ignore[attr-defined]
        "sessions": summary.sessions,  # type: ignore[attr-defined]
        "iceberg_median_seconds": round(median, 3),
        "part_files_median_seconds": round(baseline, 3),
        "iceberg_vs_part_files_ratio": round(median / baseline, 3),
        "rows_per_second": round(summary.scans / median) if median > 0 else None,  # type: ignore[attr-defined]
        "parquet_bytes": size,
    }))


if __name__ == "__main__":
    main()
