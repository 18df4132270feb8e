"""The race suite's instances: SQLite with SqliteHuey, and PostgreSQL with a Redis of the test's own."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.races._fleet import Backend, Fleet, PrivateRedis, open_fleet


def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    pg_url = request.getfixturevalue("pg_url")
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        yield Backend("postgres", pg_url, redis, redis.url)
    finally:
        redis.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", None, None, None)
    else:
        yield from _postgres(request, tmp_path)


@pytest.fixture
def pg_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _postgres(request, tmp_path)


@pytest.fixture
def fleet(tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    yield from open_fleet(tmp_path, backend, monkeypatch)


@pytest.fixture
def pg_fleet(tmp_path: Path, pg_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    yield from open_fleet(tmp_path, pg_backend, monkeypatch)


@pytest.fixture
def faketime() -> str:
    path = shutil.which("faketime")
    if path is None:
        pytest.fail("Debian's faketime is missing: install it (make system-deps)")
    return path
