"""Shared fixtures: a fresh instance per test (its own data dir), and the demo data in it.

Settings come from the environment, as in production: fixtures set ``EXPORTHUB_*`` and reload.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from exporthub.db import forget_databases
from tests._hubs import Hub, make_hub
from tests._s3 import S3Server, start_s3_server

ANCHOR = date(2026, 11, 20)
DEMO_SCANS = 20_000


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    """An empty instance: migrated metadata DB, no projects."""
    yield make_hub(tmp_path, monkeypatch)
    forget_databases()


def _demo_instance_root(factory: pytest.TempPathFactory) -> Path:
    return factory.getbasetemp() / "demo-instance"


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo instance's data folder, made once per test session (hashing the demo password and
    writing the lake cost seconds; 150+ tests use it).

    It is made where every copy will live (:func:`demo_hub`) and then put aside: the Iceberg metadata
    records absolute file locations, which stay right in a copy at the same path.
    """
    from exporthub.demo import create_demo

    base = _demo_instance_root(tmp_path_factory)
    shutil.rmtree(base, ignore_errors=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        template = make_hub(base, monkeypatch)
        create_demo(template.db, template.settings, scans=DEMO_SCANS, seed=7, anchor=ANCHOR)
    forget_databases()
    kept = tmp_path_factory.mktemp("demo-template") / "data"
    shutil.move(base / "data", kept)
    return kept


@pytest.fixture
def demo_hub(demo_template: Path, tmp_path_factory: pytest.TempPathFactory,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    """An instance with the demo projects and users, with a small deterministic lake: a fresh copy of
    :func:`demo_template` for each test, at the path the template was made at.
    """
    base = _demo_instance_root(tmp_path_factory)
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(demo_template, base / "data")
    yield make_hub(base, monkeypatch)
    forget_databases()


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throw-away database on the machine's PostgreSQL server, dropped afterwards."""
    import psycopg

    name = f"exporthub_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    forget_databases()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's standalone S3 server, one process for the session (see tests/_s3.py)."""
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh bucket, with the credentials and endpoint in the environment; returns the environment
    (plus ``bucket``) for fixtures that build an instance on it."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return {**s3_server.env, "bucket": s3_server.new_bucket()}
