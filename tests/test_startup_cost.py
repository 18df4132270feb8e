"""Nothing at import that a command does not need: each process pays only for what it uses.

Checked in fresh interpreters (``sys.modules`` of this test process is full of everything already).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from exporthub.cli_data import IMPORT_TABLES
from exporthub.context import users_table

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "duckdb", "pyarrow", "pandas", "polars", "argon2", "reportlab", "alembic", "plotly",
         "xlsxwriter", "numpy")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_building_the_cli_parser_loads_no_heavy_library():
    assert _loaded_after("from exporthub.cli import build_parser; build_parser().format_help()") == []


def test_the_exporter_registry_loads_neither_reportlab_nor_pandas_nor_alembic():
    loaded = _loaded_after("import exporters, exporthub.runner")
    assert not {"reportlab", "pandas", "alembic", "plotly", "argon2"} & set(loaded), loaded


def test_passwords_make_no_hash_at_import():
    code = "import exporthub.passwords as p; print(p._dummy_hash.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "0"


def test_users_table_is_typed_without_pandas():
    rows = [{"user_id": 7, "username": "=cmd", "display_name": "Zoë", "email": None, "hourly_rate": 18.5,
             "active": True, "deleted_at": dt.datetime(2026, 1, 2, 3, 4, 5), "can_log_in": False}]
    table = users_table(rows)
    assert [str(t) for t in table.schema.types] == ["int32", "string", "string", "string", "double", "bool",
                                                    "timestamp[us, tz=UTC]", "bool"]
    assert table.to_pylist()[0]["deleted_at"] == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert table.to_pylist()[0]["username"] == "=cmd"  # raw: neutralised only where a spreadsheet reads it
    assert users_table([]).schema == table.schema and users_table([]).num_rows == 0
    assert _loaded_after("from exporthub.context import users_table; users_table([])").count("pandas") == 0


def test_import_tables_of_the_cli_are_the_importers():
    from exporthub.importer import CONTRACT

    assert sorted(IMPORT_TABLES) == sorted(CONTRACT)
