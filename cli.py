"""The ``exporthub`` command's entry point: the edge that hands the domain its plugins and its queue.

:mod:`exporthub.cli` holds the commands; it never imports the exporters or the worker. This module, like
``worker.py`` and ``server.py``, lives outside the domain and wires them in: the exporter registry, the
Huey dispatcher and the worker's consumer. Each is imported when a command needs it, so ``exporthub
--help`` stays light.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from exporthub import cli as commands
from exporthub.lean_process import prepare as prepare_process

if TYPE_CHECKING:
    from exporthub.plugins import ExporterRegistry
    from exporthub.settings import Settings


class Edges:
    """The :class:`exporthub.cli.Edges` of a real installation: ``exporters`` and the Huey queue."""

    def registry(self) -> ExporterRegistry:
        from exporters import REGISTRY

        return REGISTRY

    def queue(self) -> commands.QueueDispatcher:
        import worker

        return worker.HueyDispatcher()

    def run_worker(self, settings: Settings) -> None:
        import worker

        worker.run_consumer(settings)


EDGES = Edges()


def main(argv: Sequence[str] | None = None) -> int:
    return commands.main(argv, edges=EDGES)


# The shell's status for a process whose reader went away (128 + SIGPIPE), as `yes | head` reports.
EXIT_BROKEN_PIPE = 141


def run() -> None:
    """The ``exporthub`` process: a worker or an export drops what no export uses, then the command runs."""
    prepare_process(sys.argv[1:])
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left early (`exporthub jobs --json | head`): no traceback, and nothing more to write.
        # Python would flush stdout again at exit and fail the same way, so stdout goes to /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
