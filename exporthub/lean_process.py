"""Processes that run exports (``exporthub worker``, ``exporthub export``) carry no weight they don't use.

Measured on the 10M-scan benchmark data (``benchmarks/RESULTS.md``, 2026-12-01):

* **pandas.** Importing ``pyarrow.dataset`` (pyiceberg's Arrow IO does) loads pandas through
  ``pyarrow.pandas_compat``, only to recognise DataFrames: 41 MiB and ~0.2 s of CPU in every process.
  No export uses pandas, so these processes make it unimportable; pyarrow, DuckDB and pyiceberg treat it as
  not installed. The web app (Streamlit needs pandas) and in-process callers of :func:`cli.main` (the
  tests) are untouched: only the process's entry point calls :func:`prepare`.
* **Arrow's allocator.** Its default pool (mimalloc) keeps freed batch buffers; the system allocator
  returns them, 21-40 MiB less at the peak for the same CPU. ``ARROW_DEFAULT_MEMORY_POOL`` set by the
  operator still wins.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from collections.abc import Sequence

EXPORT_COMMANDS = frozenset({"export", "worker"})
UNUSED_MODULES = ("pandas",)


class _Unimportable(importlib.abc.MetaPathFinder):
    """Refuses to find the listed top-level modules, as if they were not installed."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (not loaded by export processes)",
                                      name=fullname)
        return None


def command_of(argv: Sequence[str]) -> str | None:
    """The sub-command of an ``exporthub`` command line (its first word that is not an option)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def prepare(argv: Sequence[str]) -> bool:
    """Lighten this process if ``argv`` runs exports; call before anything imports pyarrow.

    Returns whether it did. Modules already imported are left alone (never half-unloaded)."""
    if command_of(argv) not in EXPORT_COMMANDS:
        return False
    unused = [name for name in UNUSED_MODULES if name not in sys.modules]
    if unused and not any(isinstance(f, _Unimportable) for f in sys.meta_path):
        sys.meta_path.insert(0, _Unimportable(unused))
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    return True
