"""Every case of issue 15, paired against its baseline in the same run.

    python -m benchmarks [--scans N] [--repeat R] [--quick] [--only CASE ...] [--out PATH]

What is measured is what a person waits for: a whole process (the CLI's ``export … --inline``, which
runs the job engine end to end, zipping and recording included) or, for a page, the calls of one
refresh inside a running process. Each case runs ``--repeat`` times (at least 3) alternating with its
baseline, so both see the same noise; medians and ratios are reported, with each process's CPU time
and peak RSS (from ``wait4``). Demo data of N, N/10 and N/50 scans is made in a temporary folder.

``--quick`` runs every case once on one tiny dataset (standing in for all three sizes), with the
probes that repeat inside their process running once: a smoke test of the harness itself (the test
suite runs it), whose figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.cases import CASES, Case, Command
from benchmarks.report import derive, render_table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "harness.json"
ANCHOR = date(2026, 11, 20)
PROJECT = "demo-open"
QUICK_SCANS = 2_000


@dataclass
class Sample:
    """One process: wall seconds (or the seconds it reported for itself), CPU seconds, peak RSS."""

    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """A data dir with the demo projects, and the spec the baselines read."""

    scans: int
    data_dir: Path
    spec_path: Path
    quick: bool = False  # --quick: the probes that repeat inside their process run once


def run_process(command: Command, env: dict[str, str], cwd: Path) -> Sample:
    """Run one process to completion; raise ``RuntimeError`` with its stderr if it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command.argv, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command.argv)} exited {proc.returncode}:\n{stderr[-3000:]}")
    detail: dict[str, Any] = {}
    if command.reports_seconds:  # the process timed the part that matters itself
        detail = json.loads(stdout.strip().splitlines()[-1])
        seconds = float(detail.pop("seconds"))
    return Sample(seconds=seconds, cpu_seconds=usage.ru_utime + usage.ru_stime,
                  peak_rss_mib=usage.ru_maxrss / 1024, detail=detail)


def make_dataset(root: Path, scans: int, *, quick: bool = False) -> Dataset:
    """Demo data of ``scans`` scans (``exporthub demo``) and the spec of its lake for the baselines."""
    data_dir = root / f"data-{scans}"
    env = child_env(data_dir)
    subprocess.run([sys.executable, "-m", "cli", "demo", "--scans", str(scans), "--anchor",
                    ANCHOR.isoformat()], env=env, cwd=ROOT, check=True, capture_output=True)
    spec_path = data_dir / "baseline-spec.json"
    subprocess.run([sys.executable, "-m", "benchmarks.spec", str(spec_path), PROJECT], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    return Dataset(scans=scans, data_dir=data_dir, spec_path=spec_path, quick=quick)


def child_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env["EXPORTHUB_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def measure(case: Case, datasets: dict[str, Dataset], repeat: int, scratch: Path) -> dict[str, Any]:
    """Run a case and its baselines alternately ``repeat`` times; return its JSON record."""
    dataset = datasets[case.dataset]
    ours: list[Sample] = []
    baselines: dict[str, list[Sample]] = {b: [] for b in case.baselines}
    for _ in range(repeat):
        ours.append(_run(case.ours(dataset, scratch), dataset, case, scratch))
        for name in case.baselines:
            baselines[name].append(_run(case.baseline(name, dataset, scratch), dataset, case, scratch))
    record: dict[str, Any] = {"case": case.name, "title": case.title, "rows": case.rows(dataset.scans),
                              "target": case.target, "runs": repeat, "ours": _summary(ours)}
    record["baselines"] = {name: _summary(samples) for name, samples in baselines.items()}
    record["ratio"] = case.ratio(record)
    record["met"] = case.met(record)
    return record


def _run(command: Command, dataset: Dataset, case: Case, scratch: Path) -> Sample:
    env = child_env(dataset.data_dir, **command.env)
    try:
        return run_process(command, env, ROOT)
    finally:
        # Outputs are big (a 10M-row CSV is 1.2 GB): keep neither ours nor the baselines'.
        shutil.rmtree(dataset.data_dir / "files", ignore_errors=True)
        for path in scratch.iterdir():
            path.unlink() if path.is_file() else shutil.rmtree(path, ignore_errors=True)


def _summary(samples: list[Sample]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "seconds": round(statistics.median(s.seconds for s in samples), 4),
        "cpu_seconds": round(statistics.median(s.cpu_seconds for s in samples), 3),
        "peak_rss_mib": round(max(s.peak_rss_mib for s in samples), 1),
        "all_seconds": [round(s.seconds, 4) for s in samples],
    }
    for key in samples[0].detail:
        summary[key] = round(statistics.median(float(s.detail[key]) for s in samples), 4)
    return summary


def sizes(scans: int) -> dict[str, int]:
    """The three datasets: the issue's 10M, 1M and 200k at the default ``--scans``."""
    return {"big": scans, "mid": max(scans // 10, 1_000), "small": max(scans // 50, 1_000)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=10_000_000, help="the largest dataset (default 10M)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case and baseline (at least 3)")
    parser.add_argument("--quick", action="store_true", help="tiny data, one run each: tests the harness")
    parser.add_argument("--only", nargs="*", help="run only these cases")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON results (a .md table beside it)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the demo data goes (default a temp dir)")
    args = parser.parse_args(argv)
    scans, repeat = (QUICK_SCANS, 1) if args.quick else (args.scans, max(3, args.repeat))
    cases = [c for c in CASES if not args.only or c.name in args.only]
    unknown = set(args.only or ()) - {c.name for c in CASES}
    if unknown:
        parser.error(f"unknown cases: {sorted(unknown)}; known: {[c.name for c in CASES]}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="exporthub-bench-", dir=args.workdir) as tmp:
        root = Path(tmp)
        scratch = root / "scratch"
        scratch.mkdir()
        wanted = {c.dataset for c in cases}
        if args.quick:  # one tiny dataset serves every size: what is tested is that every case runs
            shared = make_dataset(root, scans, quick=True)
            datasets = {name: shared for name in wanted}
        else:
            datasets = {name: make_dataset(root, n) for name, n in sizes(scans).items() if name in wanted}
        results = []
        for case in cases:
            print(f"… {case.name}", file=sys.stderr, flush=True)
            results.append(measure(case, datasets, repeat, scratch))
    report = {
        "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": _machine(),
        "scans": scans,
        "repeat": repeat,
        "quick": args.quick,
        "total_seconds": round(time.perf_counter() - started, 1),
        "cases": results,
        "derived": derive(results),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    table = render_table(report)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cores": os.cpu_count(), "python": platform.python_version(), "system": platform.platform(),
            "load_average_at_end": [round(x, 2) for x in load]}
