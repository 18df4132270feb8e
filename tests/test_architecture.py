"""The domain package stays free of the UI and the queue; the required layout exists."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN = {"streamlit", "huey", "plotly"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_never_imports_streamlit_or_huey_statically():
    offenders = {
        str(p.relative_to(REPO)): sorted(_imports(p) & FORBIDDEN)
        for p in (REPO / "exporthub").rglob("*.py")
        if _imports(p) & FORBIDDEN
    }
    assert offenders == {}


def test_importing_every_domain_module_loads_neither():
    modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts)
        for p in (REPO / "exporthub").rglob("*.py")
        if "migrations" not in p.parts and p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "import exporters\n"
        f"print(sorted(set(m.split('.')[0] for m in sys.modules) & {FORBIDDEN!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_pages_contain_no_sql_or_file_writers():
    for page in [REPO / "app.py", *(REPO / "pages").glob("*.py")]:
        imported = _imports(page)
        assert not imported & {"duckdb", "sqlalchemy", "xlsxwriter", "reportlab", "polars"}, page


def test_required_top_level_names_exist():
    for name in ("app.py", "pages", "exporters", "worker.py", "data", "tests", "pyproject.toml"):
        assert (REPO / name).exists(), name
    assert "/data/*" in (REPO / ".gitignore").read_text()
