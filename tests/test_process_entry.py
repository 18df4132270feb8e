"""The ``exporthub`` process entry point (``cli.run``): export processes leave out what no export uses
(``exporthub.lean_process``), and a reader that leaves early gets no traceback. Checked in fresh
interpreters, since this test process has long imported pandas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exporthub.lean_process import command_of

ROOT = Path(__file__).resolve().parent.parent


def _probe(code: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


_AFTER_LAKE_IMPORTS = """
import json, sys
from exporthub.lean_process import prepare
done = prepare({argv!r})
import duckdb, pyarrow, pyiceberg.io.pyarrow, pyiceberg.catalog.sql
print(json.dumps({{"prepared": done, "pandas": "pandas" in sys.modules,
                  "pool": pyarrow.default_memory_pool().backend_name}}))
"""


@pytest.mark.parametrize("argv", [["worker"], ["export", "scans", "--inline"], ["--json", "export"]])
def test_an_export_process_loads_no_pandas_and_uses_the_system_allocator(argv):
    assert _probe(_AFTER_LAKE_IMPORTS.format(argv=argv)) == {"prepared": True, "pandas": False, "pool": "system"}


@pytest.mark.parametrize("argv", [["web"], ["up"], ["jobs", "--project", "p"], []])
def test_other_commands_are_left_as_they_are(argv):
    # pyarrow.dataset (imported by pyiceberg's Arrow IO) loads pandas when it can: the web app needs it.
    result = _probe(_AFTER_LAKE_IMPORTS.format(argv=argv))
    assert result["prepared"] is False and result["pandas"] is True and result["pool"] != "system"


def test_the_command_is_the_first_word_that_is_not_an_option():
    assert command_of(["--json", "export", "scans"]) == "export"
    assert command_of(["-h"]) is None


_EVERY_EXPORT = """
import json, sys
from exporthub.lean_process import prepare
prepare(["export"])
import cli
runs = [
    ("demo-open", "scans", "format=csv"), ("demo-open", "scans", "format=xlsx"),
    ("demo-open", "scans", "format=parquet"), ("demo-open", "users", "format=xlsx"),
    ("demo-open", "zones", "format=parquet"), ("demo-open", "sessions", "format=csv"),
    ("demo-open", "cost", "format=pdf"), ("demo-open", "statistics", "format=pdf"),
    ("demo-open", "statistics", "format=xlsx"), ("demo-open", "backup", None),
    ("demo-closed", "publish", None),
]
codes = {}
for project, export_type, var in runs:
    args = ["export", export_type, "--project", project, "--user", "admin", "--inline", "--json"]
    codes[f"{export_type} {var}"] = cli.main(args + (["--var", var] if var else []))
print(json.dumps({"codes": codes, "pandas": "pandas" in sys.modules}))
"""


def test_every_export_type_runs_in_a_lean_process(demo_hub):
    result = _probe(_EVERY_EXPORT)  # the demo's settings reach the child through the environment
    codes = result["codes"]
    assert isinstance(codes, dict) and len(codes) == 11
    assert set(codes.values()) == {0}, codes  # 0: the inline job completed
    assert result["pandas"] is False
    rows = demo_hub.db.engine.connect().exec_driver_sql(
        "SELECT count(*) FROM jobs WHERE status = 'completed' AND parent_id IS NULL").scalar()
    assert rows == 11


def test_a_reader_that_leaves_early_gets_no_traceback():
    # `exporthub types --json | head -c 10`: the command's output outlives its reader.
    reader = subprocess.Popen([sys.executable, "-m", "cli", "types", "--json"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # before the command has printed anything
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
