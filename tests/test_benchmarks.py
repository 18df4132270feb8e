"""The benchmark harness runs end to end: ``python -m benchmarks --quick`` writes a complete report.

A smoke test of the harness, not of speed: the quick mode runs every case once on tiny data, so its
figures mean nothing; what must hold is that every case and baseline ran and was recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cases import CASES

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_run_records_every_case_with_its_baselines(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--workdir", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True, timeout=1200)
    report = json.loads(out.read_text())
    assert report["quick"] is True and report["repeat"] == 1
    assert [c["case"] for c in report["cases"]] == [c.name for c in CASES]
    for case, record in zip(CASES, report["cases"], strict=True):
        assert record["ours"]["seconds"] > 0 and record["ours"]["peak_rss_mib"] > 0, case.name
        assert sorted(record["baselines"]) == sorted(case.baselines), case.name
        for baseline in record["baselines"].values():
            assert baseline["seconds"] > 0 and baseline["cpu_seconds"] >= 0
        # A ratio needs a baseline, or a case that compares two parts of its own run (the page speed).
        assert (record["ratio"] is None) == (not case.baselines and case.ratio_of is None), case.name
        assert record["met"] in (True, False, None)
    assert {d["name"] for d in report["derived"]} == {"zip_cost", "worker_peak_rss"}
    table = out.with_suffix(".md").read_text()
    assert all(c.name in table for c in CASES)
    assert list(tmp_path.glob("exporthub-bench-*")) == []  # the demo data is cleaned up


def test_the_preview_and_job_list_probes_are_cases():
    names = {c.name for c in CASES}
    assert {"statistics_preview_big", "job_list_page", "cli_help", "job_pickup", "statistics_page_browser"} <= names
