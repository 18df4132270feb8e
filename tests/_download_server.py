"""A real ``streamlit run server.py`` on a demo instance for the download tests, and their checks."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from exporters import REGISTRY
from exporthub import links, sessions
from exporthub.db import Database, forget_databases, get_database
from exporthub.dispatch import RecordingDispatcher
from exporthub.links import make_token
from exporthub.models import AuditEvent, File, User
from exporthub.settings import Settings, reload_settings

REPO = Path(__file__).resolve().parent.parent
PUBLIC = set(links.PUBLIC_MESSAGES.values())


@dataclass
class Server:
    base_port: int
    settings: Settings
    db: Database
    proc: subprocess.Popen[bytes]

    def get(self, path: str, *, user: str | None = None, cookie: str | None = None, method: str = "GET",
            headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request; ``user`` sends a fresh login session cookie of that user (as their browser would)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.base_port, timeout=60)
        try:
            all_headers = dict(headers or {})
            if user:
                cookie = f"{sessions.SESSION_COOKIE}={self.session(user)}"
            if cookie:
                all_headers["Cookie"] = cookie
            conn.request(method, path, headers=all_headers)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def export(self, user: str, fmt: str, project: str = "demo-open") -> File:
        from exporthub.jobs import JobService
        from exporthub.runner import run_job

        service = JobService(self.db, self.settings, RecordingDispatcher(), registry=REGISTRY)
        job = service.start(user, project, "scans", {"format": fmt})
        run_job(self.db, self.settings, job.id, dispatcher=RecordingDispatcher(), registry=REGISTRY)
        with self.db.read() as s:
            return s.scalars(select(File).where(File.job_id == job.id, File.name.endswith(f".{fmt}"))).one()

    def session(self, username: str) -> str:
        return sessions.start(self.db, self.settings, self.user_id(username))

    def user_id(self, username: str) -> int:
        with self.db.read() as s:
            return s.scalar(select(User.id).where(User.username == username))

    def link(self, file_id: int, username: str, ttl: int = 600) -> str:
        return links.ROUTE_PREFIX + make_token(self.settings, file_id, self.user_id(username), int(time.time()) + ttl)

    def audit(self) -> list[tuple[str, str, str | None, str | None]]:
        with self.db.read() as s:
            rows = s.scalars(select(AuditEvent).where(AuditEvent.action == "download").order_by(AuditEvent.id))
            return [(e.outcome, e.actor, e.target, e.detail) for e in rows]

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from exporthub.demo import create_demo

    data = tmp_path_factory.mktemp("http") / "data"
    mp = pytest.MonkeyPatch()
    mp.setenv("EXPORTHUB_DATA_DIR", str(data))
    for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        mp.delenv(f"EXPORTHUB_{key}", raising=False)
    forget_databases()
    settings = reload_settings()
    db = get_database(settings)
    create_demo(db, settings, scans=3000, seed=5, anchor=date(2026, 11, 20))
    settings.resolved_secret_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env["EXPORTHUB_DATA_DIR"] = str(data)
    port = _free_port()
    log = open(data.parent / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "server.py"), "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    srv = Server(port, settings, db, proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (data.parent / "server.log").read_text()
            try:
                if srv.get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        mp.undo()
        forget_databases()
        reload_settings()


def assert_safe_headers(headers: http.client.HTTPMessage) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "private, no-store"


def assert_refused(server: Server, path: str, status: int, *, user: str | None = None,
                   cookie: str | None = None, headers: dict[str, str] | None = None) -> None:
    got, headers, body = server.get(path, user=user, cookie=cookie, headers=headers)
    assert got == status, body
    assert body.decode().strip() == links.PUBLIC_MESSAGES[status]  # the same fixed sentence, nothing more
    assert_safe_headers(headers)
