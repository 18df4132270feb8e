"""Real processes for tests: the ``exporthub`` CLI and worker, started and stopped the way operators do."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cli(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``exporthub ARGS`` in a fresh process and capture its output."""
    return subprocess.run([sys.executable, "-m", "exporthub.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def start_worker(env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``exporthub worker`` in its own session, its output appended to ``log`` (or discarded)."""
    if log is None:
        return subprocess.Popen([sys.executable, "-m", "exporthub.cli", "worker"], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "exporthub.cli", "worker"], env=env, cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` and wait; kill the process if it has not ended within 30 s."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
