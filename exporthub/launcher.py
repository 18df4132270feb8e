"""Starting the processes: ``exporthub web``, ``exporthub worker`` and ``exporthub up`` (both).

A deployment places ``web`` and ``worker`` processes where it likes; ``up`` is the one-machine
command: it supervises one web server and one worker, restarting the worker if it dies (a crashed
worker must not take the web app down with it), and makes the demo only in an empty data folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from exporthub.db import get_database
from exporthub.settings import Settings

# server.py sits next to the exporthub package, in a checkout and in site-packages alike.
APP_ROOT = Path(__file__).resolve().parent.parent
# The app's Streamlit settings (theme, toolbar) ship with the package and are passed as flags, so the
# app looks the same from a checkout and from an installed wheel, whatever the working directory.
STREAMLIT_CONFIG = APP_ROOT / "ui" / "streamlit_config.toml"
WORKER_RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds, then 30 s for every further restart


def streamlit_flags(config_path: Path = STREAMLIT_CONFIG) -> list[str]:
    """``--section.option value`` flags for every setting in ``config_path``.

    A list goes as one JSON value (Streamlit parses theme lists from the command line that way; a
    repeated flag would keep only its last value, e.g. one heading size for every heading).
    """
    import json
    import tomllib

    flags: list[str] = []

    def walk(prefix: str, table: dict[str, object]) -> None:
        for key, value in table.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(name, value)
            elif isinstance(value, list):
                flags.extend([f"--{name}", json.dumps(value)])
            else:
                flags.extend([f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)])

    walk("", tomllib.loads(config_path.read_text(encoding="utf-8")))
    return flags


def web_command(port: int, address: str) -> list[str]:
    """The Streamlit server for the app, with the download routes (``server.py`` wraps ``app.py``)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_ROOT / "server.py"),
        "--server.port", str(port), "--server.address", address, "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        *streamlit_flags(),
    ]


def worker_command() -> list[str]:
    """``exporthub worker`` through the entry point (the top-level ``cli`` module, which wires the worker in)."""
    return [sys.executable, "-m", "cli", "worker"]


def _migrate_old_lake(settings: Settings) -> None:
    """Convert a part-file lake of an earlier version into Iceberg tables, once (see ``migrate-lake``)."""
    from exporthub.lake.migrate import migrate_all

    for report in migrate_all(settings):
        print(f"Lake migrated to Iceberg: {report.summary()}", flush=True)


def local_url(address: str, port: int) -> str:
    host = "127.0.0.1" if address in ("0.0.0.0", "::", "") else address
    return f"http://{host}:{port}"


def wait_until_answering(url: str, alive: Callable[[], bool], timeout: float = 120.0) -> bool:
    """Poll ``url``/healthz until it answers (any HTTP status), ``alive()`` turns false or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # 503 "unhealthy" still means the server answers
        except OSError:
            time.sleep(0.3)
    return False


def _prepare(settings: Settings) -> None:
    """Migrate, and create the embedded secret before two processes race for it."""
    get_database(settings)
    settings.resolved_secret_key()


def web(settings: Settings, *, port: int, address: str) -> int:
    """The web app alone (``exporthub web``): for replicas behind a load balancer."""
    _prepare(settings)
    return subprocess.call(web_command(port, address))


def up(settings: Settings, *, port: int, address: str, demo_scans: int) -> int:
    """Migrate, make the demo in an empty data folder, then supervise a web server and a worker.

    Returns when the web server exits, or on Ctrl-C / SIGTERM (then both children are stopped; the
    worker drains its running jobs as on any SIGTERM). A worker that dies is started again.
    """
    from exporthub.demo import DEMO_PASSWORD, create_demo, demo_exists, instance_is_empty

    db = get_database(settings)
    _migrate_old_lake(settings)
    demo = demo_exists(db)
    if instance_is_empty(db):
        print(f"Empty data folder ({settings.data_dir}): making the demo instance ({demo_scans:,} scans)…",
              flush=True)
        summary = create_demo(db, settings, scans=demo_scans)
        print(f"Demo data ready in {summary.seconds:.1f} s.", flush=True)
        demo = True
    _prepare(settings)
    env = dict(os.environ, EXPORTHUB_DATA_DIR=str(settings.data_dir))
    web_proc = subprocess.Popen(web_command(port, address), env=env)
    worker = subprocess.Popen(worker_command(), env=env)
    url = local_url(address, port)
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    restarts = 0
    try:
        if wait_until_answering(url, lambda: web_proc.poll() is None and not stopping):
            if demo:
                print(f"Demo instance: every demo user (admin, manager, analyst, viewer, outsider) has the "
                      f"password '{DEMO_PASSWORD}'. Keep it on this machine.", flush=True)
                print(f"Exporthub is up: open {url} and log in as analyst / {DEMO_PASSWORD}", flush=True)
            else:
                print(f"Exporthub is up: open {url} and log in with your account", flush=True)
        while not stopping and web_proc.poll() is None:
            if worker.poll() is not None:
                delay = WORKER_RESTART_DELAYS[min(restarts, len(WORKER_RESTART_DELAYS) - 1)]
                print(f"The worker exited with code {worker.returncode}; starting it again in {delay:.0f} s",
                      file=sys.stderr, flush=True)
                _sleep_unless(lambda: stopping, delay)
                if stopping:
                    break
                worker = subprocess.Popen(worker_command(), env=env)
                restarts += 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        stopping = True
    for child in (web_proc, worker):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in (web_proc, worker):
        try:
            child.wait(timeout=settings.shutdown_grace_seconds + 15)
        except subprocess.TimeoutExpired:
            child.kill()
    return 0 if stopping or web_proc.returncode in (0, -signal.SIGTERM) else 1


def _sleep_unless(stop: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop():
        time.sleep(0.2)
