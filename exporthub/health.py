"""Is this instance able to work? The database, the queue and the shared file storage, each checked.

``/healthz`` answers 200 when every part answers and 503 naming the part that does not, so a load
balancer or an orchestrator takes a broken replica out of rotation.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import text

from exporthub.db import Database
from exporthub.settings import Settings


class QueueProbe(Protocol):
    def ping(self) -> None:
        """Raise when the queue cannot be reached."""
        ...

    def pending(self) -> int:
        """Messages waiting in the queue."""
        ...


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    milliseconds: float


@dataclass(frozen=True)
class HealthReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "unhealthy",
            "failing": [c.name for c in self.checks if not c.ok],
            "checks": {c.name: {"ok": c.ok, "detail": c.detail, "ms": round(c.milliseconds, 1)} for c in self.checks},
        }


def _timed(name: str, probe: Callable[[], str]) -> Check:
    started = time.perf_counter()
    try:
        detail, ok = probe(), True
    except Exception as exc:  # any failure of the part is the answer, in words
        detail, ok = f"{type(exc).__name__}: {exc}".strip()[:300], False
    return Check(name, ok, detail, (time.perf_counter() - started) * 1000)


def _database(db: Database) -> str:
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return "reachable"


def _storage(settings: Settings) -> str:
    """The file store must take a verified put of a probe file (removed again), and the local work
    folders must be writable."""
    from exporthub.storage import get_store, sha256_of

    store = get_store(settings)
    name = f".health-{uuid.uuid4().hex}"
    probe = store.work_root / ".health" / name
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_bytes(b"ok")
    with open(probe, "rb") as fh:
        size, digest = sha256_of(fh)
    try:
        store.put(probe, name, size=size, sha256=digest)
    finally:
        probe.unlink(missing_ok=True)
        store.delete(name)
    return "writable"


def check(db: Database, settings: Settings, queue: QueueProbe) -> HealthReport:
    """Check every part; never raises."""

    def queue_probe() -> str:
        queue.ping()
        return "reachable"

    return HealthReport((
        _timed("database", lambda: _database(db)),
        _timed("queue", queue_probe),
        _timed("storage", lambda: _storage(settings)),
    ))
