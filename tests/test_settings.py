"""Settings come from EXPORTHUB_* variables; the data dir alone moves everything it holds."""

from __future__ import annotations

import pytest

from exporthub.settings import SettingsError, reload_settings


def test_data_dir_moves_every_store(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTHUB_DATA_DIR", str(tmp_path / "a"))
    monkeypatch.delenv("EXPORTHUB_DATABASE_URL", raising=False)
    monkeypatch.delenv("EXPORTHUB_REDIS_URL", raising=False)
    s = reload_settings()
    root = (tmp_path / "a").resolve()
    assert s.database_url == f"sqlite:///{root / 'exporthub.db'}"
    for path in (s.huey_path, s.lake_dir, s.files_dir, s.tmp_dir):
        assert root in path.parents
    assert s.is_embedded


def test_typed_values_and_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EXPORTHUB_RETENTION_DAYS", "7")
    monkeypatch.setenv("EXPORTHUB_JOB_LEASE_SECONDS", "90")
    s = reload_settings()
    assert (s.retention_days, s.job_lease_seconds) == (7, 90)
    monkeypatch.setenv("EXPORTHUB_RETENTION_DAYS", "soon")
    with pytest.raises(SettingsError, match="EXPORTHUB_RETENTION_DAYS"):
        reload_settings()
    monkeypatch.delenv("EXPORTHUB_RETENTION_DAYS")
    reload_settings()


def test_embedded_secret_is_made_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTHUB_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EXPORTHUB_SECRET_KEY", raising=False)
    monkeypatch.delenv("EXPORTHUB_DATABASE_URL", raising=False)
    monkeypatch.delenv("EXPORTHUB_REDIS_URL", raising=False)
    s = reload_settings()
    first = s.resolved_secret_key()
    assert len(first) >= 32 and s.resolved_secret_key() == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0


def test_scaled_out_setup_refuses_missing_or_known_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EXPORTHUB_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("EXPORTHUB_SECRET_KEY", raising=False)
    with pytest.raises(SettingsError, match="must be set"):
        reload_settings().resolved_secret_key()
    monkeypatch.setenv("EXPORTHUB_SECRET_KEY", "changeme")
    with pytest.raises(SettingsError, match="known default"):
        reload_settings().resolved_secret_key()
    monkeypatch.delenv("EXPORTHUB_REDIS_URL")
    reload_settings()


def test_files_url_names_the_file_store(tmp_path, monkeypatch):
    from exporthub.storage import ObjectStore, get_store
    from exporthub.storage_local import LocalStore

    monkeypatch.setenv("EXPORTHUB_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EXPORTHUB_FILES_URL", raising=False)
    s = reload_settings()
    assert s.files_url == s.files_dir.as_uri() and isinstance(get_store(s), LocalStore)
    monkeypatch.setenv("EXPORTHUB_FILES_URL", str(tmp_path / "elsewhere"))
    s = reload_settings()
    store = get_store(s)
    assert isinstance(store, LocalStore) and store.root == (tmp_path / "elsewhere").resolve()
    monkeypatch.setenv("EXPORTHUB_FILES_URL", "s3://bucket/files/")
    monkeypatch.setenv("EXPORTHUB_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    s = reload_settings()
    store = get_store(s)
    assert s.files_url == "s3://bucket/files" and isinstance(store, ObjectStore)
    assert store.location("p/t/1/a.csv") == "s3://bucket/files/p/t/1/a.csv"
    assert store.work_root == s.files_dir  # work folders stay on local disk
    monkeypatch.setenv("EXPORTHUB_FILES_URL", "ftp://x/y")
    with pytest.raises(SettingsError, match="EXPORTHUB_FILES_URL"):
        reload_settings()
    for name in ("EXPORTHUB_FILES_URL", "EXPORTHUB_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name)
    reload_settings()
