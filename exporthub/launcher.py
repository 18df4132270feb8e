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

# server.py sits next to the exporthub package, in a checkout and in site-packages alike.
APP_ROOT = Path(__file__).resolve().parent.parent
# The app's Streamlit settings (theme, toolbar) ship with the package and are passed as flags, so the
# app looks the same from a checkout and from an installed wheel, whatever the working directory.
STREAMLIT_CONFIG = APP_ROOT / "ui" / "streamlit_config.toml"


def streamlit_flags(config_path: Path = STREAMLIT_CONFIG) -> list[str]:
    """``--section.option value`` flags for every setting in ``config_path`` (lists repeat the flag)."""
    import tomllib

    flags: list[str] = []

    def walk(prefix: str, table: dict[str, object]) -> None:
        for key, value in table.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(name, value)
            elif isinstance(value, list):
                for item in value:
                    flags.extend([f"--{name}", str(item)])
            else:
                flags.extend([f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)])

    walk("", tomllib.loads(config_path.read_text(encoding="utf-8")))
    return flags


def web_command(port: int) -> list[str]:
    """The Streamlit server for the app, with the download routes (``server.py`` wraps ``app.py``)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_ROOT / "server.py"),
        "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        *streamlit_flags(),
    ]


def _migrate_old_lake(settings: Settings) -> None:
    """Convert a part-file lake of an earlier version into Iceberg tables, once (see ``migrate-lake``)."""
    from exporthub.lake.migrate import migrate_all

    for report in migrate_all(settings):
        print(f"Lake migrated to Iceberg: {report.summary()}", flush=True)


def up(settings: Settings, *, port: int, demo_scans: int) -> int:
    """Migrate, make the demo on first run, then supervise the worker and the web server.

    Returns when either child exits (and stops the other), or on Ctrl-C / SIGTERM.
    """
    from exporthub.demo import create_demo, demo_exists

    db = get_database(settings)
    _migrate_old_lake(settings)
    if not demo_exists(db):
        print(f"First run: making the demo data ({demo_scans:,} scans)…", flush=True)
        summary = create_demo(db, settings, scans=demo_scans)
        print(f"Demo data ready in {summary.seconds:.1f} s. Log in as analyst / demo "
              "(demo passwords are for local use only).", flush=True)
    settings.resolved_secret_key()  # create the embedded secret before two processes race for it
    env = dict(os.environ, EXPORTHUB_DATA_DIR=str(settings.data_dir))
    children = [
        subprocess.Popen([sys.executable, "-m", "exporthub.cli", "worker"], env=env),
        subprocess.Popen(web_command(port), env=env),
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
