"""``exporthub up``: one command that runs the web app and a worker together on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from exporthub.db import get_database
from exporthub.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent


def web_command(port: int) -> list[str]:
    """The Streamlit server for the app, with the download routes (``server.py`` wraps ``app.py``)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "server.py"),
        "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]


def up(settings: Settings, *, port: int, demo_scans: int) -> int:
    """Migrate, make the demo on first run, then supervise the worker and the web server.

    Returns when either child exits (and stops the other), or on Ctrl-C / SIGTERM.
    """
    from exporthub.demo import create_demo, demo_exists

    db = get_database(settings)
    if not demo_exists(db):
        print(f"First run: making the demo data ({demo_scans:,} scans)…", flush=True)
        summary = create_demo(db, settings, scans=demo_scans)
        print(f"Demo data ready in {summary.seconds:.1f} s. Log in as analyst / demo "
              "(demo passwords are for local use only).", flush=True)
    settings.resolved_secret_key()  # create the embedded secret before two processes race for it
    env = dict(os.environ, EXPORTHUB_DATA_DIR=str(settings.data_dir))
    children = [
        subprocess.Popen([sys.executable, "-m", "exporthub.cli", "worker"], env=env),
        subprocess.Popen(web_command(port), env=env, cwd=REPO_ROOT),
    ]
    print(f"Exporthub is up on http://localhost:{port}", flush=True)
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
    codes = [c.returncode for c in children]
    return 0 if stopping or all(code in (0, -signal.SIGTERM) for code in codes) else 1
