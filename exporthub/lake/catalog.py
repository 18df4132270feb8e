"""The Iceberg catalog of the lake: pyiceberg's SQL catalog, living in the metadata database.

One namespace per project (its slug), one table per lake table, at ``<warehouse>/<slug>/<table>``.
The catalog's tables (``iceberg_tables``, ``iceberg_namespace_properties``) are made by our Alembic
migration 0005, not by pyiceberg.

The catalog runs on the metadata database's own engine (:class:`exporthub.db.Database`), so on SQLite
a catalog commit begins with ``BEGIN IMMEDIATE`` under the busy timeout like every other write of
ours, and catalog reads (loading a table) stay deferred so they never queue behind a writer.
pyiceberg's own engine would do neither and fail with "database is locked" next to our writers.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
from sqlalchemy import Engine

from exporthub.db import Database, get_database
from exporthub.lake.schemas import SCHEMAS, TABLE_PROPERTIES, TABLES
from exporthub.settings import Settings

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table
    from pyiceberg.typedef import Identifier

CATALOG_NAME = "exporthub"
_reading: contextvars.ContextVar[bool] = contextvars.ContextVar("exporthub_catalog_reading", default=False)


@contextmanager
def _read_only() -> Iterator[None]:
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


def _catalog_class() -> Callable[..., SqlCatalog]:
    """:class:`ExporthubCatalog`, defined on first use (pyiceberg's catalog and table modules are heavy)."""
    global _CATALOG_CLASS
    if _CATALOG_CLASS is None:
        from pyiceberg.catalog import MetastoreCatalog
        from pyiceberg.catalog.sql import SqlCatalog

        class ExporthubCatalog(SqlCatalog):
            """pyiceberg's SQL catalog over our :class:`Database` (see the module docstring)."""

            def __init__(self, db: Database, name: str, **properties: str) -> None:
                # SqlCatalog.__init__ would make an engine of its own and create its tables; we do neither.
                MetastoreCatalog.__init__(self, name, **properties)
                self._db = db
                self._schema_version = "v1"  # the schema migration 0005 creates

            @property
            def engine(self) -> Engine:  # type: ignore[override]  # ours: the read or the write engine
                return self._db.read_engine if _reading.get() else self._db.engine

            def load_table(self, identifier: str | Identifier) -> Table:
                with _read_only():
                    return super().load_table(identifier)

            def namespace_exists(self, identifier: str | Identifier) -> bool:
                with _read_only():
                    return super().namespace_exists(identifier)

            def list_tables(self, namespace: str | Identifier) -> list[Identifier]:
                with _read_only():
                    return super().list_tables(namespace)

            def list_namespaces(self, namespace: str | Identifier = ()) -> list[Identifier]:
                with _read_only():
                    return super().list_namespaces(namespace)

        _CATALOG_CLASS = ExporthubCatalog
    return _CATALOG_CLASS


_CATALOG_CLASS: Callable[..., SqlCatalog] | None = None
_catalogs: weakref.WeakKeyDictionary[Database, dict[str, SqlCatalog]] = weakref.WeakKeyDictionary()
_catalogs_lock = threading.Lock()


def io_properties(settings: Settings) -> dict[str, str]:
    """pyiceberg FileIO properties: pyarrow's file systems, and the S3 endpoint and region if any.

    S3 credentials are not passed: pyarrow takes them from the usual ``AWS_*`` environment variables
    (or the instance's role). A region is always given, so nothing asks AWS where a bucket lives.
    """
    props = {"py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO", "s3.region": settings.s3_region}
    if settings.s3_endpoint_url:
        props["s3.endpoint"] = settings.s3_endpoint_url
    return props


def get_catalog(settings: Settings, db: Database | None = None) -> SqlCatalog:
    """The process-wide catalog for this metadata database and warehouse."""
    db = db or get_database(settings)
    with _catalogs_lock:
        per_db = _catalogs.setdefault(db, {})
        catalog = per_db.get(settings.lake_url)
        if catalog is None:
            catalog = _catalog_class()(db, CATALOG_NAME, warehouse=settings.lake_url, **io_properties(settings))
            per_db[settings.lake_url] = catalog
        return catalog


def filesystem(settings: Settings, url: str | None = None) -> pafs.FileSystem:
    """The pyarrow file system the warehouse (or ``url``, e.g. the file store's) lives on; paths for
    it come from :func:`fs_path`. S3 gets the configured region and endpoint override; credentials
    come from pyarrow's usual ``AWS_*`` environment (or the instance's role)."""
    import pyarrow.fs as pafs

    url = url or settings.lake_url
    scheme = urlparse(url).scheme
    if scheme == "file":
        return pafs.LocalFileSystem()
    if scheme in ("s3", "s3a"):
        return pafs.S3FileSystem(region=settings.s3_region, endpoint_override=settings.s3_endpoint_url)
    fs, _ = pafs.FileSystem.from_uri(url)
    return fs


def fs_path(location: str) -> str:
    """A file location (``file:///a/b``, ``s3://bucket/key``, ``/a/b``) as a path for :func:`filesystem`."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path) if parsed.scheme else location
    return f"{parsed.netloc}{parsed.path}"


def project_location(settings: Settings, slug: str) -> str:
    return f"{settings.lake_url}/{slug}"


def identifier(slug: str, table: str) -> tuple[str, str]:
    if table not in TABLES:
        raise ValueError(f"unknown lake table {table!r}")
    return (slug, table)


def load_table(settings: Settings, slug: str, table: str) -> Table | None:
    """The project's Iceberg table, or None when nothing was ever written to it."""
    try:
        return get_catalog(settings).load_table(identifier(slug, table))
    except NoSuchTableError:
        return None


def ensure_table(settings: Settings, slug: str, table: str) -> Table:
    """The project's table, created (with its namespace) if needed; safe when processes race."""
    existing = load_table(settings, slug, table)
    if existing is not None:
        return existing
    catalog = get_catalog(settings)
    with contextlib.suppress(NamespaceAlreadyExistsError):
        catalog.create_namespace(slug)
    try:
        return catalog.create_table(
            identifier(slug, table), schema=SCHEMAS[table],
            location=f"{project_location(settings, slug)}/{table}", properties=TABLE_PROPERTIES,
        )
    except TableAlreadyExistsError:
        return catalog.load_table(identifier(slug, table))


def project_tables(settings: Settings, slug: str) -> dict[str, Table]:
    """The project's existing tables by name (tables never written to are left out)."""
    catalog = get_catalog(settings)
    if not catalog.namespace_exists(slug):
        return {}
    names = {ident[-1] for ident in catalog.list_tables(slug)}
    return {t: catalog.load_table(identifier(slug, t)) for t in TABLES if t in names}


def project_slugs(settings: Settings) -> list[str]:
    """Every project that has a namespace in the catalog."""
    return sorted(ident[0] for ident in get_catalog(settings).list_namespaces())


def has_data(settings: Settings, slug: str) -> bool:
    """Whether the catalog knows the project (a namespace exists)."""
    return get_catalog(settings).namespace_exists(slug)


def drop_project(settings: Settings, slug: str) -> None:
    """Drop the project's tables and namespace from the catalog and delete its files.

    For the demo (remade from scratch) and a failed restore; never for a project with jobs reading it.
    """
    catalog = get_catalog(settings)
    if catalog.namespace_exists(slug):
        for ident in catalog.list_tables(slug):
            with contextlib.suppress(NoSuchTableError):
                catalog.drop_table(ident)
        catalog.drop_namespace(slug)
    delete_tree(settings, project_location(settings, slug))


def delete_tree(settings: Settings, location: str) -> None:
    import pyarrow.fs as pafs

    fs = filesystem(settings)
    path = fs_path(location)
    info: Any = fs.get_file_info(path)
    if info.type != pafs.FileType.NotFound:
        fs.delete_dir(path)
