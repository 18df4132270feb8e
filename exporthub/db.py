"""The metadata database: engine, sessions and migrations.

SQLite runs in WAL mode with a busy timeout, and every transaction that may write begins with
``BEGIN IMMEDIATE``: a deferred transaction that later upgrades to a write fails with "database is
locked" whatever the busy timeout, as soon as the web app and several workers write at once.
Read-only work uses :meth:`Database.read`, whose transactions stay deferred so readers never queue.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from exporthub.settings import Settings

_MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_REVISION_LINE = re.compile(r'^(down_revision|revision)\s*=\s*(?:"([^"]*)"|\'([^\']*)\'|None)', re.MULTILINE)
_SQLITE_BEGIN_OPTION = "exporthub_sqlite_begin"


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so our BEGIN is the one used.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")



def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched. ``Session.execute`` is typed for SELECTs; a DML
    statement's result is a ``CursorResult``, which has the count."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)

class Database:
    """One engine per process and URL, with write and read session factories."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 30_000) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
            _configure_sqlite(self.engine, busy_timeout_ms)
            read_engine: Engine = self.engine.execution_options(**{_SQLITE_BEGIN_OPTION: "DEFERRED"})
        else:
            # A short connect timeout: a health check or a page must say "database unreachable" in
            # seconds, not hang on a host that does not answer.
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                                        connect_args={"connect_timeout": 5})
            read_engine = self.engine
        self._read_engine = read_engine
        # Reads that must never queue behind a writer (on SQLite: deferred transactions).
        self.read_engine: Engine = read_engine
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(read_engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only; on SQLite its transaction never blocks writers."""
        with self._read() as session, session.begin():
            yield session

    def current_revision(self) -> str | None:
        """The revision the database is at (its ``alembic_version``), or None before the first migration."""
        from sqlalchemy import inspect

        with self._read_engine.connect() as conn:  # a deferred transaction: takes no write lock
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    def is_current(self) -> bool:
        """True when the schema is at the newest migration: one cheap query, no Alembic.

        False as well when the files do not name a single head (e.g. a merge migration whose
        ``down_revision`` is a tuple): Alembic then decides.
        """
        try:
            head = head_revision()
        except RuntimeError:
            return False
        return self.current_revision() == head

    def migrate(self) -> None:
        """Bring the schema to the newest migration. Safe when several processes start at once."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS_DIR))
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                # Serialise concurrent upgrades (web app and workers starting together).
                conn.exec_driver_sql("SELECT pg_advisory_lock(74201)")
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                if not self.is_sqlite:
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(74201)")
                    conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()


_databases: dict[str, Database] = {}
_lock = threading.Lock()


def head_revision(migrations_dir: Path = _MIGRATIONS_DIR) -> str:
    """The newest migration's revision, read from the migration files' text without loading Alembic.

    Loading Alembic and its script directory costs ~0.3 s, which every process paid at start even
    though the schema changes once per deploy. The head is the one revision no other file names as
    its ``down_revision``. Raises ``RuntimeError`` unless there is exactly one.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (migrations_dir / "versions").glob("*.py"):
        for key, double, single in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            value = double or single
            if value:
                (revisions if key == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"expected one head migration in {migrations_dir}, found {sorted(heads)}")
    return heads.pop()


def get_database(settings: Settings, *, migrate: bool = True) -> Database:
    """The process-wide :class:`Database` for the configured URL, migrated on first use.

    Alembic is loaded only when the database is behind the newest migration (once per deploy);
    otherwise the check is one ``SELECT`` of ``alembic_version``.
    """
    with _lock:
        db = _databases.get(settings.database_url)
        if db is None:
            db = Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
            if migrate and not db.is_current():
                db.migrate()
            _databases[settings.database_url] = db
        return db


def forget_databases() -> None:
    """Dispose every cached engine (tests switch data dirs between cases)."""
    with _lock:
        for db in _databases.values():
            db.dispose()
        _databases.clear()
