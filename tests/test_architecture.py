"""The domain package stays free of the UI, the queue and its own plugins; the required layout exists."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN = {"streamlit", "huey", "plotly"}
# The domain's plugins and its queue edge: passed in at the edges (cli.py, worker.py, ui/), never imported.
EDGES = {"exporters", "worker", "cli"}
# Calls that import a module named by a string: importlib.import_module, __import__, runpy, spec loaders.
DYNAMIC_IMPORTS = {"import_module", "__import__", "find_spec", "spec_from_file_location", "run_module",
                   "run_path", "load_module", "exec_module", "SourceFileLoader"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def edge_imports(source: str, package: str = "exporthub") -> list[str]:
    """Every route by which ``source`` (a module of ``package``) reaches an edge module: ``import x``,
    ``from x import y``, ``from .. import x`` climbing out of the package, and a dynamic import call
    (``importlib.import_module``, ``__import__``, runpy, spec loaders) naming one in any string argument,
    or naming its module by anything but a literal (which no test could check)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in EDGES]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] in EDGES:
                found.append(node.module)
            elif node.level > package.count(".") + 1 or (node.level and node.module
                                                          and node.module.split(".")[0] in EDGES):
                found.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Call) and _call_name(node) in DYNAMIC_IMPORTS:
            args = [*node.args, *(k.value for k in node.keywords)]
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    if arg.value.split(".")[0] in EDGES or "/" in arg.value:
                        found.append(f"{_call_name(node)}({arg.value!r})")
                else:
                    found.append(f"{_call_name(node)}(<computed>)")
    return found


def test_domain_never_imports_its_plugins_or_the_worker_by_any_route():
    offenders = {
        str(p.relative_to(REPO)): edge_imports(p.read_text(encoding="utf-8"), ".".join(p.relative_to(REPO).parts[:-1]))
        for p in (REPO / "exporthub").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("source", [
    "import exporters",
    "import exporters.registry as r",
    "from exporters import REGISTRY",
    "from exporters.registry import BaseExporter",
    "import worker",
    "from worker import HueyDispatcher",
    "def f():\n    from exporters import REGISTRY\n    return REGISTRY",
    "import importlib\nimportlib.import_module('worker')",
    "from importlib import import_module\nimport_module('exporters.scans')",
    "__import__('exporters')",
    "import importlib\nname = 'work' + 'er'\nimportlib.import_module(name)",
    "import runpy\nrunpy.run_module('worker')",
    "import importlib.util\nimportlib.util.spec_from_file_location('w', 'worker.py')",
    "from ... import exporters",
])
def test_the_checker_catches_a_planted_violation(source):
    assert edge_imports(source) != []


@pytest.mark.parametrize("source", [
    "from exporthub import jobs",
    "from importlib import metadata\nmetadata.version('exporthub')",
    "from . import lake",
    "from .. import lake",
    "from exporthub.plugins import Registry",
    "x = 'exporters/export_config.json'",
])
def test_the_checker_lets_the_domain_import_itself(source):
    assert edge_imports(source, "exporthub.lake") == []


def test_the_checker_finds_what_the_domain_did_before_the_registry_was_passed_in():
    """The routes the domain once used: a lazy ``from exporters import REGISTRY`` and importlib."""
    before = ("def run_job(registry=None):\n"
              "    if registry is None:\n"
              "        from exporters import REGISTRY as registry\n"
              "def queue_dispatcher():\n"
              "    import importlib\n"
              "    return importlib.import_module('worker').HueyDispatcher()\n")
    assert edge_imports(before) == ["exporters", "import_module('worker')"]




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
        f"print(sorted(set(m.split('.')[0] for m in sys.modules) & {FORBIDDEN | EDGES!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_the_plugins_load_no_ui_or_queue():
    code = ("import sys, exporters\n"
            f"print(sorted(set(m.split('.')[0] for m in sys.modules) & {FORBIDDEN | {'worker', 'cli'}!r}))")
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
