"""A wheel built from the tree installs into a fresh virtualenv and works there: the CLI answers, the
demo is made, and an export runs to a file that DuckDB reads (a package left out would fail here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parent.parent


# Nothing of the checkout: with PYTHONPATH at the checkout (as the helpers run pytest), the venv's pip
# found the exporthub.egg-info that building the wheel leaves there, took exporthub for installed and
# skipped it (no console script), and the last check imported the checkout. And pip without its
# version check against the index (a network round trip per pip process).
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("EXPORTHUB_", "PYTHONPATH"))}
PIP_ENV = {**CLEAN_ENV, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-4000:])
    return done  # type: ignore[no-any-return]


@pytest.mark.slow
def test_the_built_wheel_installs_and_exports_in_a_fresh_venv(tmp_path):
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(REPO)],
        env=PIP_ENV)
    (wheel,) = (tmp_path / "dist").glob("exporthub-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    # --no-compile: pip would byte-compile every module of every dependency (tens of thousands of files,
    # most never imported here); Python compiles what the test imports on first use.
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile", str(wheel)], env=PIP_ENV)
    exporthub = str(venv / "bin" / "exporthub")
    workdir = tmp_path / "elsewhere"  # not the checkout: nothing may come from the source tree
    workdir.mkdir()
    env = CLEAN_ENV
    help_text = run([exporthub, "--help"], cwd=workdir, env=env).stdout
    assert "export" in help_text and "worker" in help_text and "types" in help_text
    run([exporthub, "demo", "--scans", "2000"], cwd=workdir, env=env)
    assert (workdir / "data" / "exporthub.db").exists()  # ./data of the working directory
    out = run([exporthub, "export", "scans", "--project", "demo-open", "--user", "analyst", "--inline", "--json"],
              cwd=workdir, env=env)
    job = json.loads(out.stdout)["job"]
    assert job["status"] == "completed"
    (csv,) = [f["path"] for f in job["files"] if f["name"].endswith(".csv")]
    rows = duckdb.sql(f"SELECT count(*) FROM read_csv('{csv}')").fetchall()[0][0]
    assert rows > 0
    pdf = run([exporthub, "export", "statistics", "--project", "demo-open", "--user", "analyst", "--var",
               "format=pdf", "--inline", "--json"], cwd=workdir, env=env)
    assert json.loads(pdf.stdout)["job"]["status"] == "completed"  # fonts and charts ship in the wheel
    installed = run([str(venv / "bin" / "python"), "-c",
                     "import exporthub, pathlib; print(pathlib.Path(exporthub.__file__).parent)"], cwd=workdir,
                    env=env).stdout
    assert str(venv) in installed  # the installed copy ran, not the checkout
