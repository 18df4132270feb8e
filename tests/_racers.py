"""Racers forked from one warmed-up parent: ``python -m tests._racers SPEC.json`` (see
:func:`tests._processes.run_together`).

The parent imports the modules the spec names (the seconds of importing SQLAlchemy, DuckDB and the
exporters, paid once instead of once per racer), then forks one child per racer. Each child is a
separate process with its own interpreter state, database connections and output files, and runs the
racer's code as ``python -c CODE ARGS...`` would: ``sys.argv`` is ``["-c", *args]`` and ``__name__`` is
``"__main__"``. Nothing but imports happens before the fork: no settings are read, no engine or
connection exists yet, no thread is started by this module.

If a child ends before the GO file exists (it crashed while getting ready), the parent kills the others
and exits 1, so the caller fails at once instead of waiting for a READY file that never comes.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import traceback
from pathlib import Path


def _child(code: str, argv: list[str], out: str, err: str) -> None:
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - fresh text streams on the new descriptors
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    sys.argv = ["-c", *argv]
    status = 0
    try:
        exec(compile(code, "<racer>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})  # noqa: S102
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported on the racer's stderr, like an uncaught error
        traceback.print_exc()
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    for module in spec["preload"]:
        importlib.import_module(module)
    go = Path(spec["go"])
    pids: list[int] = []
    for racer in spec["racers"]:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(spec["code"], racer["argv"], racer["out"], racer["err"])
        pids.append(pid)
    failed = False
    for _ in pids:
        pid, status = os.wait()
        if os.waitstatus_to_exitcode(status) != 0 and not go.exists():
            print(f"racer {pids.index(pid)} ended with {os.waitstatus_to_exitcode(status)} before GO",
                  file=sys.stderr)
            failed = True
            break
    if failed:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
