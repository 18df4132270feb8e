"""Typed settings, read once from ``EXPORTHUB_*`` environment variables.

Everything that lives on disk hangs off ``data_dir``: setting ``EXPORTHUB_DATA_DIR`` alone moves the
SQLite metadata DB, the Huey DB, the lake and the files, so two instances never touch each other.
Tests set the environment and call :func:`reload_settings`; nothing else mutates settings.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from exporthub.errors import SettingsError

_PREFIX = "EXPORTHUB_"
_REPO_ROOT = Path(__file__).resolve().parent.parent
_SHIPPED_EXPORT_CONFIG = _REPO_ROOT / "exporters" / "export_config.json"

# A secret that appears in docs or examples is as good as none.
KNOWN_WEAK_SECRETS = frozenset({"", "changeme", "secret", "dev", "exporthub", "please-change-me"})


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(_PREFIX + name)
    return default if value is None or value == "" else value


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{_PREFIX}{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{_PREFIX}{name} must be at least {minimum}, got {value}")
    return value


def _float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{_PREFIX}{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str | None
    queue_name: str
    secret_key: str | None
    retention_days: int
    export_config_path: Path
    public_url: str
    job_lease_seconds: int
    heartbeat_seconds: float
    reaper_interval_seconds: float
    zip_threshold_bytes: int
    link_ttl_seconds: int
    session_idle_seconds: int
    worker_threads: int
    queue_max_delay_seconds: float
    duckdb_threads: int
    duckdb_memory_limit: str
    sqlite_busy_timeout_ms: int
    login_max_failures: int
    login_lockout_seconds: int
    address: str
    shutdown_grace_seconds: float
    retention_interval_seconds: float
    requeue_after_seconds: float
    worker_patience_seconds: float  # how long `export --wait` waits for a worker to report in
    extra_exporters: tuple[str, ...]
    import_max_file_bytes: int
    restore_max_entry_bytes: int
    restore_max_total_bytes: int
    lake_url: str  # the Iceberg warehouse: file:///abs/path, or an object-store URL (s3://bucket/prefix)
    s3_endpoint_url: str | None  # an S3-compatible server other than AWS (MinIO, Ceph, moto)
    s3_region: str
    files_url: str  # the file store: file:///abs/path (default: files_dir), or s3://bucket/prefix
    lake_maintenance_interval_seconds: float

    @property
    def is_embedded(self) -> bool:
        """True for the one-machine default: SQLite metadata and SqliteHuey under ``data_dir``."""
        return self.database_url.startswith("sqlite") and self.redis_url is None

    @property
    def lake_dir(self) -> Path:
        """The local lake folder: the default warehouse, and where a part-file lake of old lies."""
        return self.data_dir / "lake"

    @property
    def lake_is_local(self) -> bool:
        return self.lake_url.startswith("file://")

    @property
    def files_dir(self) -> Path:
        """The local files folder: the default file store, and where jobs' work folders live when the
        store is object storage (see :mod:`exporthub.storage`)."""
        return self.data_dir / "files"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def huey_path(self) -> Path:
        return self.data_dir / "huey.db"

    def resolved_secret_key(self) -> str:
        """The signing key for links and login cookies.

        The embedded default creates a random key once under ``data_dir``. Any other setup must
        configure ``EXPORTHUB_SECRET_KEY``; a missing or known-weak key raises :class:`SettingsError`.
        """
        if self.secret_key is not None:
            if self.secret_key in KNOWN_WEAK_SECRETS or len(self.secret_key) < 16:
                raise SettingsError("EXPORTHUB_SECRET_KEY is a known default or shorter than 16 characters")
            return self.secret_key
        if not self.is_embedded:
            raise SettingsError("EXPORTHUB_SECRET_KEY must be set when PostgreSQL or Redis is configured")
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # first writer wins; a racing process reads the winner's key
            tmp.unlink(missing_ok=True)
        return path.read_text().strip()


def _load() -> Settings:
    # ./data of the working directory, as the README says: the same folder as before for a checkout
    # (make up runs at its root), and never a folder inside site-packages for an installed wheel.
    data_dir = Path(_env("DATA_DIR", "data")).expanduser().resolve()  # type: ignore[arg-type]
    database_url = _env("DATABASE_URL") or f"sqlite:///{data_dir / 'exporthub.db'}"
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=_env("REDIS_URL"),
        queue_name=_env("QUEUE_NAME", "exporthub") or "exporthub",
        secret_key=_env("SECRET_KEY"),
        retention_days=_int("RETENTION_DAYS", 30, minimum=1),
        export_config_path=Path(_env("EXPORT_CONFIG", str(_SHIPPED_EXPORT_CONFIG))),  # type: ignore[arg-type]
        public_url=(_env("PUBLIC_URL", "http://localhost:8501") or "").rstrip("/"),
        job_lease_seconds=_int("JOB_LEASE_SECONDS", 60, minimum=2),
        heartbeat_seconds=_float("HEARTBEAT_SECONDS", 5.0),
        reaper_interval_seconds=_float("REAPER_INTERVAL_SECONDS", 10.0),
        zip_threshold_bytes=_int("ZIP_THRESHOLD_BYTES", 50 * 1024 * 1024, minimum=1),
        link_ttl_seconds=_int("LINK_TTL_SECONDS", 15 * 60, minimum=1),
        session_idle_seconds=_int("SESSION_IDLE_SECONDS", 8 * 3600, minimum=60),
        worker_threads=_int("WORKER_THREADS", 2, minimum=1),
        queue_max_delay_seconds=_float("QUEUE_MAX_DELAY_SECONDS", 0.25),
        duckdb_threads=_int("DUCKDB_THREADS", 2, minimum=1),
        duckdb_memory_limit=_env("DUCKDB_MEMORY_LIMIT", "2GB") or "2GB",
        sqlite_busy_timeout_ms=_int("SQLITE_BUSY_TIMEOUT_MS", 30_000, minimum=0),
        login_max_failures=_int("LOGIN_MAX_FAILURES", 5, minimum=1),
        login_lockout_seconds=_int("LOGIN_LOCKOUT_SECONDS", 300, minimum=1),
        # Only this machine can reach the app unless told otherwise (a demo instance must stay private).
        address=_env("ADDRESS", "127.0.0.1") or "127.0.0.1",
        shutdown_grace_seconds=_float("SHUTDOWN_GRACE_SECONDS", 30.0),
        retention_interval_seconds=_float("RETENTION_INTERVAL_SECONDS", 3600.0),
        requeue_after_seconds=_float("REQUEUE_AFTER_SECONDS", 30.0),
        worker_patience_seconds=_float("WORKER_PATIENCE_SECONDS", 30.0),
        # Modules with an EXPORTER each, registered after the built-ins (a deployment's own export types).
        extra_exporters=tuple(m.strip() for m in (_env("EXTRA_EXPORTERS", "") or "").split(",") if m.strip()),
        import_max_file_bytes=_int("IMPORT_MAX_FILE_BYTES", 2 * 1024**3, minimum=1),
        restore_max_entry_bytes=_int("RESTORE_MAX_ENTRY_BYTES", 4 * 1024**3, minimum=1),
        restore_max_total_bytes=_int("RESTORE_MAX_TOTAL_BYTES", 16 * 1024**3, minimum=1),
        lake_url=_lake_url(data_dir),
        s3_endpoint_url=_env("S3_ENDPOINT_URL"),
        s3_region=_env("S3_REGION", "us-east-1") or "us-east-1",
        files_url=_store_url("FILES_URL", data_dir / "files"),
        lake_maintenance_interval_seconds=_float("LAKE_MAINTENANCE_INTERVAL_SECONDS", 24 * 3600.0),
    )


def _lake_url(data_dir: Path) -> str:
    """``EXPORTHUB_LAKE_URL`` as a URL pyarrow's file systems take; a plain path becomes ``file://``."""
    return _store_url("LAKE_URL", data_dir / "lake")


def _store_url(name: str, default: Path) -> str:
    """A storage location setting as a URL pyarrow's file systems take; a plain path becomes ``file://``."""
    raw = _env(name)
    if raw is None:
        return default.as_uri()
    if "://" not in raw:
        return Path(raw).expanduser().resolve().as_uri()
    scheme = raw.split("://", 1)[0].lower()
    if scheme not in ("file", "s3", "s3a", "gs", "abfs", "abfss", "hdfs"):
        raise SettingsError(f"{_PREFIX}{name} must be a path or a file://, s3://, gs:// … URL, got {raw!r}")
    return raw.rstrip("/")


@cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return _load()


def reload_settings() -> Settings:
    """Re-read the environment (tests set variables first, then call this)."""
    get_settings.cache_clear()
    return get_settings()
