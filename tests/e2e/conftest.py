"""Start Exporthub the way the README does (``exporthub demo`` then ``exporthub up``) on a free port
with its own data folder, and drive it with Playwright and Debian's Chromium."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests._lake import lake_files

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DEMO_SCANS = 20_000


@dataclass(frozen=True)
class RunningHub:
    url: str
    data_dir: Path

    def lake(self, slug: str, table: str) -> list[str]:
        """The table's current data files (for ``read_parquet(?)``)."""
        return lake_files(f"sqlite:///{self.data_dir / 'exporthub.db'}", slug, table)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exporthub up exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not become healthy in {timeout} s")


def hub_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a hub's processes: none of ours from outside, its data folder, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTHUB_")}
    env["EXPORTHUB_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


@contextmanager
def start_hub(data_dir: Path, env: dict[str, str], scans: int = DEMO_SCANS) -> Iterator[RunningHub]:
    """``exporthub demo`` then ``exporthub up`` (its worker included) on a free port; stopped on exit."""
    exporthub = [sys.executable, "-m", "cli"]
    subprocess.run([*exporthub, "demo", "--scans", str(scans)], env=env, cwd=REPO, check=True, capture_output=True)
    port = _free_port()
    log = (data_dir / "up.log").open("wb")
    proc = subprocess.Popen(
        [*exporthub, "up", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield RunningHub(url=url, data_dir=data_dir)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the launcher stops its worker and web server
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.fixture(scope="session")
def running_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """``exporthub up`` with a 20,000-scan demo, its worker included; stopped after the session."""
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    with start_hub(data_dir, hub_env(data_dir)) as hub:
        yield hub


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Chromium for one test module. Module-scoped: Playwright's sync API keeps an event loop running
    while it is open, and another module may start its own Playwright afterwards."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make system-deps)")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
