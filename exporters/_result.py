"""What every shared writer returns, and the clean-up they share.

Writers write straight to the path they are given. Making the final file appear atomically (temporary
name, fsync, rename) is the storage layer's job, so the writers stay usable on any path, tests included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

RowCallback = Callable[[int], None]
"""Called with the number of rows written so far; raising from it aborts the write."""


@dataclass(frozen=True)
class WriteResult:
    """Files a writer produced (main file first), data rows written, and warnings for the job log."""

    paths: list[Path]
    rows: int
    warnings: list[str] = field(default_factory=list)


@contextlib.contextmanager
def removing_on_error(*paths: Path) -> Iterator[None]:
    """Delete ``paths`` if the block raises, then re-raise.

    A cancelled or failed export must not leave a half-written file that looks complete.
    """
    try:
        yield
    except BaseException:
        for path in paths:
            path.unlink(missing_ok=True)
        raise
