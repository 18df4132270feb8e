"""What a running exporter sees: its variables, the lake, progress, log, cancellation and outputs."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from exporthub.errors import Cancelled
from exporthub.export_config import DateWindow, ExportDefinition
from exporthub.lake import LakeSnapshot
from exporthub.lake.incremental import Watermark
from exporthub.settings import Settings
from exporthub.states import LogLevel

if TYPE_CHECKING:
    from exporthub.views import JobView


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    slug: str
    name: str
    timezone: str
    status: str
    currency: str = "EUR"  # what the project's costs are in


@dataclass(frozen=True)
class ExportSessionRecord:
    """One zone an export covered: the scans snapshot it read, its highest scan id, how many scans."""

    zone_id: int
    watermark_scan_id: int
    scan_count: int
    snapshot_id: int | None = None


@dataclass(frozen=True)
class PastExportSession:
    """The newest export session recorded for one zone by one export type (from the metadata DB)."""

    zone_id: int
    export_type: str
    job_id: int
    watermark_scan_id: int
    scan_count: int
    created_at: datetime


@dataclass(frozen=True)
class ChildSpec:
    """A child job a parent export (publish) asks for: its type and variables."""

    export_type: str
    variables: dict[str, Any]


class JobReporter:
    """Persists progress, log lines and the cancel flag; implemented by the runner over the DB."""

    def progress(self, percent: int) -> None: ...
    def log(self, level: LogLevel, message: str) -> None: ...
    def cancel_requested(self) -> bool:
        return False


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class JobContext:
    job_id: int
    export_type: str
    definition: ExportDefinition
    variables: dict[str, Any]
    project: ProjectInfo
    user: str
    settings: Settings
    started_at: datetime
    window: DateWindow | None
    workdir: Path
    reporter: JobReporter
    con: duckdb.DuckDBPyConnection | None = None
    snapshot: LakeSnapshot | None = None
    # zone id -> where its last delivered export of this type stopped ("only new since last export")
    previous_watermarks: dict[int, Watermark] = field(default_factory=dict)
    children: list[JobView] = field(default_factory=list)  # finished children, for parent jobs
    # The newest export session per (zone, export type) of this project, e.g. for the zones export.
    export_session_history: list[PastExportSession] = field(default_factory=list)
    export_sessions: list[ExportSessionRecord] = field(default_factory=list)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    committed: bool = False  # past the point of no return: a cancel is no longer honoured
    publishes: int = 0  # how many times the job asked to mark its project published on completion
    _last_progress: int = -1
    _last_progress_at: float = 0.0

    # ------------------------------------------------------------ progress and cancellation
    def progress(self, percent: float) -> None:
        """Report progress 0-100. Throttled: the DB sees at most a few writes per second."""
        self.check_cancelled()
        value = max(0, min(100, int(percent)))
        now = time.monotonic()
        if value != self._last_progress and (now - self._last_progress_at >= 0.3 or value == 100):
            self.reporter.progress(value)
            self._last_progress, self._last_progress_at = value, now

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the job was cancelled (the watcher thread sets the event)."""
        if self.cancel_event.is_set() and not self.committed:
            raise Cancelled()

    def point_of_no_return(self) -> None:
        """Call just before a side effect outside the job's own files (e.g. marking a project published):
        from here on the job completes or fails, but a cancel request can no longer undo it."""
        self.check_cancelled()
        self.committed = True

    def publish_project_on_completion(self) -> None:
        """Mark the project published in the same transaction that completes this job (refused, and the
        job failed, if the project was reopened meanwhile): published exactly when the job completed."""
        self.publishes = 1

    def info(self, message: str) -> None:
        self.reporter.log(LogLevel.INFO, message)

    def warn(self, message: str) -> None:
        """A warning: the job still completes, shown as "Completed with warnings"."""
        self.reporter.log(LogLevel.WARNING, message)

    # ------------------------------------------------------------ time and names
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.project.timezone)

    def local_stamp(self) -> str:
        return self.started_at.astimezone(self.tz).strftime("%Y%m%d_%H%M%S")

    def output_path(self, ext: str, *, stem: str | None = None) -> Path:
        """A path in the job's private work folder, named ``<type>_export_<YYYYMMDD_HHMMSS>.<ext>``.

        ``stem`` replaces the default stem for exports that write several files.
        """
        base = stem or f"{self.export_type}_export_{self.local_stamp()}"
        name = _SAFE_NAME.sub("_", f"{base}.{ext.lstrip('.')}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir / name

    def open_stored(self, key: str) -> BinaryIO:
        """A file of the file store (e.g. a child job's ``FileView.key``) opened for reading; raises
        ``FileNotFoundError`` when it is gone."""
        from exporthub.storage import get_store

        fh, _ = get_store(self.settings).open(key)
        return fh

    # ------------------------------------------------------------ lake helpers
    def sql(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise RuntimeError("this export type runs without the lake")
        return self.con

    def record_export_sessions(self, records: list[ExportSessionRecord]) -> None:
        """Export sessions to store with the job when it completes (never when it fails)."""
        self.export_sessions.extend(records)

    def on_rows(self, total: int) -> Callable[[int], None]:
        """A writer callback that turns rows written into progress (and checks cancellation)."""

        def _callback(done: int) -> None:
            self.progress(5 + 90 * (done / total) if total else 50)

        return _callback


# The users table handed to DuckDB: (column, DuckDB type); the Arrow schema follows from these.
_USER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("user_id", "INTEGER"),
    ("username", "VARCHAR"),
    ("display_name", "VARCHAR"),
    ("email", "VARCHAR"),
    ("hourly_rate", "DOUBLE"),
    ("active", "BOOLEAN"),
    ("deleted_at", "TIMESTAMP"),  # naive UTC from the metadata DB, made TIMESTAMPTZ below
    ("can_log_in", "BOOLEAN"),
)


def users_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Users as Arrow, for DuckDB joins with the lake.

    Built by DuckDB from one list per column rather than with ``pa.array``: pyarrow's conversion of
    Python values imports pandas (0.9 s) on first use, in every export process, for a few rows.
    """
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        select = ", ".join(
            f"unnest(${i}::{type_}[]) AS {name}" if name != "deleted_at"
            else f"unnest(${i}::{type_}[])::TIMESTAMPTZ AS {name}"
            for i, (name, type_) in enumerate(_USER_COLUMNS, start=1)
        )
        values = [[row.get(name) for row in rows] for name, _ in _USER_COLUMNS]
        return con.sql(f"SELECT {select}", params=values).to_arrow_table()
    finally:
        con.close()


def register_users(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """The ``users`` view on ``con`` over these rows (see :func:`exporthub.access.user_rows`)."""
    con.register("_users_arrow", users_table(rows))
    con.execute("CREATE OR REPLACE VIEW users AS SELECT * FROM _users_arrow")
