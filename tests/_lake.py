"""Independent readers of a project's lake for test assertions: pyiceberg's own scan planning, not
:mod:`exporthub.lake.snapshot`, lists the current files of a table."""

from __future__ import annotations

from pyiceberg.catalog.sql import SqlCatalog

from exporthub.settings import Settings


def lake_files(settings: Settings | str, slug: str, table: str) -> list[str]:
    """Local paths of the table's current data files (empty when the table does not exist).

    ``settings`` may be the metadata database's URL instead (an instance running in another process).
    """
    from urllib.parse import urlparse

    url = settings if isinstance(settings, str) else settings.database_url
    catalog = SqlCatalog("exporthub", uri=url, init_catalog_tables="false")
    try:
        tbl = catalog.load_table((slug, table))
    except Exception:  # noqa: BLE001 - no such table
        return []
    paths = [urlparse(task.file.file_path).path for task in tbl.scan().plan_files()]
    catalog.engine.dispose()
    return sorted(paths)


def lake_sql(settings: Settings, slug: str, table: str) -> str:
    """A DuckDB ``read_parquet([...])`` over the table's current data files."""
    files = lake_files(settings, slug, table)
    assert files, f"{slug}.{table} has no data files"
    return "read_parquet([" + ", ".join(f"'{p}'" for p in files) + "])"
