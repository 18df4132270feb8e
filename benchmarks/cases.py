"""The cases of issue 15: what runs for Exporthub, what runs as its baseline, and the target.

Exporthub runs as a person would run it: ``exporthub export TYPE … --inline`` is the job engine end to
end in one process (validation, the export, zipping, hashing and recording the files). Pages run as
probes inside one process (:mod:`benchmarks.probes`). Baselines are in :mod:`benchmarks.baselines`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NO_ZIP = str(1 << 40)  # EXPORTHUB_ZIP_THRESHOLD_BYTES that never zips


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    reports_seconds: bool = False  # the process prints {"seconds": …} for the part that matters


def exporthub(*args: str, **env: str) -> Command:
    """The ``exporthub`` console script of this environment (what a user types)."""
    script = Path(sys.executable).with_name("exporthub")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "cli"]
    return Command(argv + list(args), env=dict(env))


def export(export_type: str, fmt: str, **env: str) -> Callable[[Any, Path], Command]:
    def command(dataset: Any, scratch: Path) -> Command:
        return exporthub("export", export_type, "--project", "demo-open", "--user", "admin", "--var",
                         f"format={fmt}", "--inline", "--json", **env)

    return command


def probe(name: str, repeat: int) -> Callable[[Any, Path], Command]:
    def command(dataset: Any, scratch: Path) -> Command:
        runs = 1 if dataset.quick else repeat
        return Command([sys.executable, "-m", "benchmarks.probes", name, str(runs)], reports_seconds=True)

    return command


def page_speed(repeat: int) -> Callable[[Any, Path], Command]:
    def command(dataset: Any, scratch: Path) -> Command:
        runs = 1 if dataset.quick else repeat
        return Command([sys.executable, "-m", "benchmarks.page_speed", str(runs)], reports_seconds=True)

    return command


def baseline_command(name: str, dataset: Any, scratch: Path) -> Command:
    if name == "imports":
        return Command([sys.executable, "-m", "benchmarks.baselines", "imports"])
    out = scratch / f"{name}.out"
    return Command([sys.executable, "-m", "benchmarks.baselines", name, str(dataset.spec_path), str(out)],
                   reports_seconds=name == "pandas_preview")


def _seconds(record: dict[str, Any], baseline: str | None = None) -> float | None:
    if baseline is None:
        return None
    return float(record["ours"]["seconds"] / record["baselines"][baseline]["seconds"])


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    dataset: str  # "big" (N scans), "mid" (N/10) or "small" (N/50)
    ours: Callable[[Any, Path], Command]
    baselines: tuple[str, ...] = ()
    target: str = ""
    # The ratio reported (ours ÷ first baseline, in seconds, unless a case says otherwise) and the test.
    ratio_of: Callable[[dict[str, Any]], float | None] | None = None
    passes: Callable[[dict[str, Any]], bool] | None = None

    def baseline(self, name: str, dataset: Any, scratch: Path) -> Command:
        return baseline_command(name, dataset, scratch)

    def rows(self, scans: int) -> int:
        return scans

    def ratio(self, record: dict[str, Any]) -> float | None:
        if self.ratio_of is not None:
            value = self.ratio_of(record)
        else:
            value = _seconds(record, self.baselines[0] if self.baselines else None)
        return None if value is None else round(value, 3)

    def met(self, record: dict[str, Any]) -> bool | None:
        return None if self.passes is None else bool(self.passes(record))


def _ratio_at_most(limit: float) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r["ratio"] is not None and r["ratio"] <= limit


def _seconds_at_most(limit: float, key: str = "seconds") -> Callable[[dict[str, Any]], bool]:
    return lambda r: r["ours"][key] <= limit


def _xlsx_ratio(record: dict[str, Any]) -> float:
    return float(record["ours"]["cpu_seconds"] / record["baselines"]["polars_xlsx"]["cpu_seconds"])


def _xlsx_met(record: dict[str, Any]) -> bool:
    return bool(record["ratio"] <= 0.5 and record["ours"]["peak_rss_mib"] <= 300)


def _page_met(record: dict[str, Any]) -> bool:
    ours = record["ours"]
    return bool(ours["headline_to_hub"] <= 1.0 and ours["charts_to_hub"] <= 2.0 and ours["tab_to_hub"] <= 2.0)


def _help_met(record: dict[str, Any]) -> bool:
    return bool(record["ours"]["seconds"] <= record["baselines"]["imports"]["seconds"])


CASES: tuple[Case, ...] = (
    Case("scans_csv_big", "scans CSV, zip off", "big", export("scans", "csv", EXPORTHUB_ZIP_THRESHOLD_BYTES=NO_ZIP),
         ("duckdb_copy_csv",), "≤ 1.3× DuckDB COPY; peak RSS ≤ 500 MiB",
         passes=lambda r: r["ratio"] <= 1.3 and r["ours"]["peak_rss_mib"] <= 500),
    Case("scans_csv_big_zipped", "scans CSV, default (zipped above 50 MB)", "big", export("scans", "csv"),
         ("duckdb_copy_csv",), "≤ 1.5× the unzipped export (see derived)"),
    Case("scans_csv_mid", "scans CSV", "mid", export("scans", "csv", EXPORTHUB_ZIP_THRESHOLD_BYTES=NO_ZIP),
         ("duckdb_copy_csv",), "≤ 1.3× DuckDB COPY", passes=_ratio_at_most(1.3)),
    Case("scans_csv_small", "scans CSV", "small", export("scans", "csv", EXPORTHUB_ZIP_THRESHOLD_BYTES=NO_ZIP),
         ("duckdb_copy_csv",), "≤ 1.3× DuckDB COPY", passes=_ratio_at_most(1.3)),
    Case("scans_parquet_big", "scans Parquet", "big", export("scans", "parquet"), ("duckdb_copy_parquet",),
         "≤ 1.3× DuckDB COPY; peak RSS ≤ 500 MiB",
         passes=lambda r: r["ratio"] <= 1.3 and r["ours"]["peak_rss_mib"] <= 500),
    Case("scans_parquet_mid", "scans Parquet", "mid", export("scans", "parquet"), ("duckdb_copy_parquet",),
         "≤ 1.3× DuckDB COPY", passes=_ratio_at_most(1.3)),
    Case("scans_xlsx_mid", "scans XLSX (ratio: CPU against polars)", "mid", export("scans", "xlsx"),
         ("polars_xlsx", "pandas_openpyxl_xlsx"), "≤ 0.5× polars' CPU; peak RSS ≤ 300 MiB",
         ratio_of=_xlsx_ratio, passes=_xlsx_met),
    Case("statistics_pdf_big", "statistics report PDF", "big", export("statistics", "pdf"),
         ("pandas_statistics_pdf",), "≤ 0.2× pandas", passes=_ratio_at_most(0.2)),
    Case("statistics_xlsx_big", "statistics report XLSX", "big", export("statistics", "xlsx"),
         ("pandas_statistics_xlsx",), "≤ 0.2× pandas + openpyxl", passes=_ratio_at_most(0.2)),
    Case("statistics_preview_big", "statistics preview, empty caches (in process)", "big", probe("preview", 1),
         ("pandas_preview",), "≤ 0.5 s", passes=_seconds_at_most(0.5)),
    Case("statistics_page_browser", "statistics page in Chromium against the hub (ratio: charts ÷ hub)", "small",
         page_speed(3), (), "headline ≤ hub's job list; charts and each tab ≤ 2× it",
         ratio_of=lambda r: r["ours"]["charts_to_hub"], passes=_page_met),
    Case("job_list_page", "job list page, 10k jobs (count + page, in process)", "small", probe("job_list", 30),
         (), "≤ 50 ms", passes=_seconds_at_most(0.05)),
    Case("cli_help", "exporthub --help", "small", lambda d, s: exporthub("--help"), ("imports",),
         "≤ import duckdb, pyarrow, sqlalchemy", passes=_help_met),
    Case("job_pickup", "job pickup, insert → running (p95, 10 jobs)", "small", probe("job_pickup", 10),
         (), "p95 ≤ 0.5 s", passes=lambda r: r["ours"]["p95"] <= 0.5),
    Case("job_cancel", "cancel a running DuckDB query → cancelled (p95, 5 jobs, in process)", "small",
         probe("job_cancel", 5), (), "p95 ≤ 1 s", passes=lambda r: r["ours"]["p95"] <= 1.0),
)
