"""Helpers shared by the import tests: the hand-made project fixture, importing, reading the lake back."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select

from exporthub.accounts import SystemActor
from exporthub.importer import ImportFile, ImportRefused, import_files
from exporthub.models import AuditEvent
from tests import _handmade as hm
from tests._lake import lake_files

SYSTEM = SystemActor("pytest")


@pytest.fixture
def made(hub, tmp_path):  # type: ignore[no-untyped-def]
    """The hand-made project with zones, sessions and costs imported, and a folder for files."""
    ids = hm.make_project(hub)
    return hub, ids, tmp_path / "files"


def do_import(hub, table: str, *files: Path, **kwargs):  # type: ignore[no-untyped-def]
    return import_files(
        hub.db, hub.settings, SYSTEM, hm.SLUG, table, [ImportFile.from_path(f) for f in files], **kwargs
    )


def lake_rows(hub, table: str, order: str) -> list[tuple]:  # type: ignore[type-arg]
    """An independent read of the table's current data files with DuckDB."""
    files = lake_files(hub.settings, hm.SLUG, table)
    if not files:
        return []
    return duckdb.sql(f"SELECT * FROM read_parquet({files!r}) ORDER BY {order}").fetchall()


def refused(hub, table: str, *files: Path, **kwargs) -> ImportRefused:  # type: ignore[no-untyped-def]
    """Run an import that must be refused, and check that the lake is byte for byte unchanged."""
    before = hm.lake_fingerprint(hub)
    with pytest.raises(ImportRefused) as info:
        do_import(hub, table, *files, **kwargs)
    assert hm.lake_fingerprint(hub) == before
    return info.value


def audit_actions(hub) -> list[tuple[str, str, str | None]]:  # type: ignore[no-untyped-def]
    with hub.db.read() as s:
        return [(e.action, e.outcome, e.actor) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
