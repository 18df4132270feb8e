"""The registry keeps exporters, config entries, permissions, formats and tests in step."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import openpyxl
import pytest
from pypdf import PdfReader

from exporters import DEFAULT_EXPORTERS, REGISTRY
from exporters.registry import BaseExporter, LazyRegistry, Registry, RegistryError
from exporthub.export_config import load_config
from exporthub.permissions import Permission
from exporthub.settings import get_settings
from exporthub.states import JobStatus

TESTS = Path(__file__).resolve().parent
GROUPS = {"System", "Data Exports", "Financial Reports"}
CONFIG = load_config(get_settings().export_config_path)


def test_every_exporter_has_a_config_entry_and_every_entry_an_exporter():
    assert REGISTRY.types() == set(CONFIG)
    assert len(DEFAULT_EXPORTERS) == len(REGISTRY.types())


@pytest.mark.parametrize("exporter", list(REGISTRY), ids=lambda e: e.export_type)
def test_exporter_declares_a_known_permission_group_and_formats(exporter):
    definition = CONFIG[exporter.export_type]
    assert exporter.permission in set(Permission)
    assert definition.group in GROUPS
    assert exporter.formats, "an exporter must say what it produces"
    fmt = definition.variable("format")
    if fmt is not None:
        assert set(fmt.options) <= set(exporter.formats), "the config offers a format the exporter lacks"


@pytest.mark.parametrize("export_type", sorted(REGISTRY.types()))
def test_every_exporter_has_its_own_test_module(export_type):
    assert (TESTS / f"test_{export_type}.py").is_file()


def test_registry_fails_loudly():
    registry = Registry()

    class Thing(BaseExporter):
        export_type = "thing"
        formats = ("csv",)

    registry.register(Thing())
    with pytest.raises(RegistryError, match="registered twice"):
        registry.register(Thing())
    with pytest.raises(RegistryError, match="no exporter"):
        registry.get("nothing")
    with pytest.raises(RegistryError, match="has no exporter"):
        registry.check_config({"orphan": CONFIG["scans"]})
    with pytest.raises(RegistryError, match="Exporter protocol"):
        registry.register(object())  # type: ignore[arg-type]


def test_the_lazy_registry_imports_a_module_on_first_lookup_and_fails_as_loudly():
    registry = LazyRegistry()
    registry.register_module("scans", "exporters.scans")
    registry.register_module("users", "exporters.zones")  # the wrong module for its type
    assert "scans" in registry and registry.types() == {"scans", "users"} and "nothing" not in registry
    registry.check_config({"scans": CONFIG["scans"]})  # known before its module is imported
    exporter = registry.get("scans")
    assert exporter is importlib.import_module("exporters.scans").EXPORTER
    assert registry.get("scans") is exporter
    with pytest.raises(RegistryError, match="registered twice"):
        registry.register_module("scans", "exporters.scans")
    with pytest.raises(RegistryError, match="registered twice"):
        registry.register(exporter)
    with pytest.raises(RegistryError, match="not the 'users' exporter"):
        registry.get("users")
    with pytest.raises(RegistryError, match="has no exporter"):
        registry.check_config({"orphan": CONFIG["scans"]})


def test_the_lazy_registry_takes_its_lock_only_to_import():
    registry = LazyRegistry()
    registry.register_module("scans", "exporters.scans")
    exporter = registry.get("scans")

    class NoLock:
        def __enter__(self) -> None:
            raise AssertionError("the lookup took the import lock")

        def __exit__(self, *exc: object) -> None:
            return None

    registry._loading = NoLock()  # type: ignore[assignment]
    assert registry.get("scans") is exporter and "scans" in registry and registry.types() == {"scans"}
    with pytest.raises(AssertionError, match="import lock"):
        registry.get("nothing")  # not loaded: goes to the lock, which this test has taken away


def test_importing_the_registry_imports_no_exporter_module():
    probe = "import exporters, sys; print(sorted(m for m in sys.modules if m.startswith('exporters.')))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=TESTS.parent.parent, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "['exporters.registry']"


def _open(path: Path) -> int:
    """Open a file with a real reader; return a size-ish number that must be positive."""
    suffix = path.suffix
    if suffix == ".csv":
        return duckdb.connect().execute(f"SELECT count(*) + 1 FROM read_csv('{path}')").fetchall()[0][0]
    if suffix == ".parquet":
        return duckdb.connect().execute(f"SELECT count(*) + 1 FROM read_parquet('{path}')").fetchall()[0][0]
    if suffix == ".xlsx":
        return len(openpyxl.load_workbook(path, read_only=True).sheetnames)
    if suffix == ".pdf":
        return len(PdfReader(path).pages)
    if suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            assert z.testzip() is None
            return len(z.namelist())
    if suffix == ".json":
        return len(json.loads(path.read_text())) + 1
    raise AssertionError(f"no reader for {path.name}")


CASES = [
    (exporter.export_type, fmt)
    for exporter in REGISTRY
    for fmt in (CONFIG[exporter.export_type].variable("format").options
                if CONFIG[exporter.export_type].variable("format") else (None,))
]


@pytest.mark.parametrize(("export_type", "fmt"), CASES)
def test_each_exporter_produces_the_formats_it_claims(demo_hub, export_type, fmt):
    """Every (type, format) runs on the demo data and its files open in a real reader."""
    service = demo_hub.service()
    variables = {"format": fmt} if fmt else {}
    if export_type == "explore":
        variables.update(measure="scans", dim1="day")
    job = service.start("admin", "demo-closed", export_type, variables)
    demo_hub.run_queued()
    job = service.get("admin", job.id)
    assert job.status is JobStatus.COMPLETED, job.error
    files = [f.path for f in job.files]
    assert files, "a completed job has files"
    if fmt:
        assert any(p.suffix == f".{fmt}" for p in files), [p.name for p in files]
    for path in files:
        assert _open(path) > 0, path.name
