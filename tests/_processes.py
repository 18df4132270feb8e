"""Real processes for tests: the ``exporthub`` CLI and worker, started and stopped the way operators do."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cli(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``exporthub ARGS`` in a fresh process and capture its output."""
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def start_worker(env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``exporthub worker`` in its own session, its output appended to ``log`` (or discarded)."""
    if log is None:
        return subprocess.Popen([sys.executable, "-m", "cli", "worker"], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "cli", "worker"], env=env, cwd=REPO,
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


def run_together(code: str, env: dict[str, str], n: int, args: tuple[str, ...] = (),
                 timeout: float = 180, *, racer_args: list[tuple[str, ...]] | None = None,
                 preload: tuple[str, ...] = ()) -> list[tuple[object, ...]]:
    """Run ``n`` copies of ``python -c code GO READY *args`` that start their real work at one moment
    (``racer_args`` gives each copy its own arguments instead, and ``n`` is ignored).

    Each copy imports what it needs, touches its READY file, waits until the GO file exists, works,
    and prints one JSON list as its last line; that list is its result, in the order of the copies.
    (Plain subprocesses, not multiprocessing: AppTest rewrites ``__main__``, which spawn would run again.)

    With ``preload`` (module names), the copies are forked from one process that imported those
    modules first (:mod:`tests._racers`): still one process, one interpreter and one set of database
    connections per copy, without paying the imports once per copy on a two-core machine.
    """
    racer_args = racer_args if racer_args is not None else [args] * n
    n = len(racer_args)
    import json
    import tempfile
    import time

    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        ready = [Path(tmp) / f"ready-{i}" for i in range(n)]
        if preload:
            launcher = _fork_racers(Path(tmp), code, env, go, ready, racer_args, preload)
            procs = [launcher]
        else:
            procs = [subprocess.Popen([sys.executable, "-c", code, str(go), str(r), *extra], env=env, cwd=REPO,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for r, extra in zip(ready, racer_args, strict=True)]
        try:
            deadline = time.monotonic() + timeout
            while not all(r.exists() for r in ready):
                assert time.monotonic() < deadline, "the racers did not get ready in time"
                if preload:
                    assert launcher.poll() is None, _racer_outputs(Path(tmp), n, launcher)
                else:
                    assert all(p.poll() is None for p in procs), [p.communicate()[1][-800:] for p in procs
                                                                  if p.poll()]
                time.sleep(0.05)
            go.touch()
            results: list[tuple[object, ...]] = []
            if preload:
                launcher.wait(timeout=timeout)
                assert launcher.returncode == 0, _racer_outputs(Path(tmp), n, launcher)
                outputs = [((Path(tmp) / f"out-{i}").read_text(), (Path(tmp) / f"err-{i}").read_text())
                           for i in range(n)]
            else:
                outputs = [p.communicate(timeout=timeout) for p in procs]
            for out, err in outputs:
                lines = out.strip().splitlines()
                results.append(tuple(json.loads(lines[-1])) if lines else ("error", err[-800:]))
            return results
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()


def _fork_racers(tmp: Path, code: str, env: dict[str, str], go: Path, ready: list[Path],
                 racer_args: list[tuple[str, ...]], preload: tuple[str, ...]) -> subprocess.Popen[str]:
    import json

    spec = {"code": code, "preload": list(preload), "go": str(go),
            "racers": [{"argv": [str(go), str(r), *extra], "out": str(tmp / f"out-{i}"), "err": str(tmp / f"err-{i}")}
                       for i, (r, extra) in enumerate(zip(ready, racer_args, strict=True))]}
    (tmp / "spec.json").write_text(json.dumps(spec))
    return subprocess.Popen([sys.executable, "-m", "tests._racers", str(tmp / "spec.json")], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _racer_outputs(tmp: Path, n: int, launcher: subprocess.Popen[str]) -> list[str]:
    """What went wrong: the launcher's stderr, then each racer's."""
    _, err = launcher.communicate()
    errs = [(tmp / f"err-{i}").read_text()[-800:] for i in range(n) if (tmp / f"err-{i}").exists()]
    return [err[-800:], *[e for e in errs if e]]
